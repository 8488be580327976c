"""HTTP handlers for the customer account area (dashboard, avatars, previews)."""
from __future__ import annotations

import functools
import hashlib
import logging
import subprocess
import tempfile
from pathlib import Path

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Response, UploadFile
from starlette.concurrency import run_in_threadpool

log = logging.getLogger("account_api")
router = APIRouter(prefix="/account")

USERS_URL = "http://users.internal"
ORDERS_URL = "http://orders.internal"
ALERTS_URL = "http://alerts.internal"
MEDIA_URL = "http://media.internal"
UPLOAD_ROOT = Path("/srv/uploads")

PLAN_LIMITS = {
    "free": {"previews_per_day": 5, "max_upload_mb": 10},
    "team": {"previews_per_day": 200, "max_upload_mb": 100},
    "enterprise": {"previews_per_day": 5000, "max_upload_mb": 1000},
}


def make_client(base_url: str, timeout: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout, connect=1.0))


users = make_client(USERS_URL, timeout=2.0)
orders = make_client(ORDERS_URL, timeout=3.0)
alerts = make_client(ALERTS_URL, timeout=2.0)
media = make_client(MEDIA_URL, timeout=5.0)

_avatars: dict[tuple[int, int], bytes] = {}


async def current_user_id(x_user_id: int = Header(...)) -> int:
    return x_user_id


@functools.lru_cache(maxsize=64)
def plan_limits(plan: str) -> dict:
    limits = PLAN_LIMITS.get(plan, PLAN_LIMITS["free"])
    return {**limits, "max_upload_bytes": limits["max_upload_mb"] * 1024 * 1024}


async def _get(client: httpx.AsyncClient, path: str) -> dict:
    resp = await client.get(path)
    if resp.status_code == 404:
        raise HTTPException(404)
    resp.raise_for_status()
    return resp.json()


@router.get("/dashboard")
async def dashboard(uid: int = Depends(current_user_id)) -> dict:
    profile = await _get(users, f"/users/{uid}")
    recent = await _get(orders, f"/users/{uid}/orders?limit=5")
    notices = await _get(alerts, f"/users/{uid}/alerts?unread=1")
    return {
        "name": profile["display_name"],
        "plan": profile["plan"],
        "limits": plan_limits(profile["plan"]),
        "orders": recent["items"],
        "alerts": notices["items"],
    }


@router.get("/avatar/{uid}")
async def avatar(uid: int, size: int = 128) -> Response:
    if size not in (32, 64, 128, 256):
        raise HTTPException(400, "unsupported size")
    key = (uid, size)
    body = _avatars.get(key)
    if body is None:
        resp = await media.get(f"/avatars/{uid}", params={"w": size, "h": size})
        if resp.status_code != 200:
            raise HTTPException(resp.status_code)
        body = resp.content
        _avatars[key] = body
    return Response(body, media_type="image/png", headers={"Cache-Control": "max-age=300"})


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 16):
            h.update(chunk)
    return h.hexdigest()


@router.post("/documents/preview")
async def preview(upload: UploadFile, uid: int = Depends(current_user_id)) -> dict:
    with tempfile.TemporaryDirectory(prefix="preview-") as tmp:
        src = Path(tmp) / "input.pdf"
        with src.open("wb") as out:
            while chunk := await upload.read(1 << 16):
                out.write(chunk)
        digest = await run_in_threadpool(_sha256, src)
        try:
            subprocess.run(
                ["pdftoppm", "-png", "-r", "72", "-f", "1", "-l", "1", str(src), f"{tmp}/page"],
                check=True,
                capture_output=True,
                timeout=30,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            log.warning("preview failed for %s: %s", uid, exc)
            raise HTTPException(422, "could not render document")
        rendered = next(Path(tmp).glob("page*.png"))
        target = UPLOAD_ROOT / str(uid) / f"{digest}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rendered.read_bytes())
    return {"preview": f"/media/{uid}/{digest}.png", "sha256": digest}
