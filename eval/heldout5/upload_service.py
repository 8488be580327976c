"""Document upload service for the customer portal.

Customers attach contracts, scans and spreadsheets to their cases. Each upload
is checked by the malware scanning service, stored once under a
content-addressed path on the shared blob volume (identical files share one
blob) and recorded in the catalogue database so the case view can list it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import asyncpg
import httpx
from fastapi import FastAPI, HTTPException, UploadFile
from fastapi.responses import FileResponse

log = logging.getLogger("uploads")

BLOB_ROOT = Path(os.environ.get("BLOB_ROOT", "/mnt/blobs"))
INCOMING = Path(os.environ.get("UPLOAD_INCOMING", "/var/tmp/uploads"))
SCAN_URL = os.environ.get("SCAN_URL", "http://scanner.internal/v1/scan")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://uploads@db/catalogue")
MAX_BYTES = 50 * 1024 * 1024
ALLOWED_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".docx", ".xlsx", ".csv"}

app = FastAPI(title="uploads")
scan_slots = asyncio.Semaphore(4)


def _safe_name(filename: str | None) -> str:
    """The bare file name, with any directory parts the client sent dropped."""
    name = Path(filename or "upload").name
    if Path(name).suffix.lower() not in ALLOWED_SUFFIXES:
        raise HTTPException(status_code=415, detail=f"unsupported file type: {name}")
    return name


def _blob_path(digest: str) -> Path:
    return BLOB_ROOT / digest[:2] / digest[2:4] / digest


def _write_incoming(data: bytes) -> tuple[str, str]:
    """Write the upload to a temporary file; returns (path, sha256 hex digest)."""
    INCOMING.mkdir(parents=True, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=INCOMING, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return tmp_path, hashlib.sha256(data).hexdigest()


def _store_blob(tmp_path: str, digest: str) -> Path:
    """Copy a scanned temporary file to its content-addressed place on the blob volume."""
    target = _blob_path(digest)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(target.name + ".copying")
        shutil.copyfile(tmp_path, staging)
        with open(staging, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(staging, 0o640)
        os.replace(staging, target)
    os.unlink(tmp_path)
    return target


async def _scan(client: httpx.AsyncClient, name: str, data: bytes) -> bool:
    """Ask the scanning service whether the file is clean."""
    async with scan_slots:
        resp = await client.post(SCAN_URL, files={"file": (name, data)})
    resp.raise_for_status()
    verdict = resp.json()
    if verdict.get("status") != "clean":
        log.warning("scanner rejected %s: %s", name, verdict.get("signature"))
        return False
    return True


@app.on_event("startup")
async def _open_pool() -> None:
    app.state.pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=10, command_timeout=15)
    app.state.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))


@app.on_event("shutdown")
async def _close_pool() -> None:
    await app.state.http.aclose()
    await app.state.pool.close()


@app.post("/cases/{case_id}/documents", status_code=201)
async def upload_document(case_id: int, upload: UploadFile) -> dict:
    """Scan, store and catalogue one uploaded document."""
    name = _safe_name(upload.filename)
    data = await upload.read()
    if len(data) > MAX_BYTES:
        raise HTTPException(status_code=413, detail=f"{name} is larger than {MAX_BYTES // 2**20} MiB")
    if not data:
        raise HTTPException(status_code=400, detail="empty upload")

    tmp_path, digest = await asyncio.to_thread(_write_incoming, data)
    if not await _scan(app.state.http, name, data):
        raise HTTPException(status_code=422, detail=f"{name} was rejected by the malware scanner")
    target = _store_blob(tmp_path, digest)

    async with app.state.pool.acquire() as conn:
        doc_id = await conn.fetchval(
            """
            INSERT INTO documents (case_id, name, sha256, size, content_type)
            VALUES ($1, $2, $3, $4, $5)
            RETURNING id
            """,
            case_id,
            name,
            digest,
            len(data),
            upload.content_type,
        )
    log.info("stored %s for case %s as %s", name, case_id, target)
    return {"id": doc_id, "name": name, "sha256": digest, "size": len(data)}


@app.get("/cases/{case_id}/documents/{doc_id}")
async def download_document(case_id: int, doc_id: int) -> FileResponse:
    """Stream a stored document back to the portal."""
    async with app.state.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT name, sha256, content_type FROM documents WHERE id = $1 AND case_id = $2",
            doc_id,
            case_id,
        )
    if row is None:
        raise HTTPException(status_code=404, detail="no such document")
    return FileResponse(
        _blob_path(row["sha256"]),
        media_type=row["content_type"] or "application/octet-stream",
        filename=row["name"],
    )
