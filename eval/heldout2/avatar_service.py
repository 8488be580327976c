"""User avatar service.

Accepts avatar uploads, renders the fixed set of square thumbnails as WebP and
stores them in the object store behind `AVATAR_BUCKET_URL`. Serving falls back to
rendering from the original when a size is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os

import aiohttp
from aiohttp import web
from PIL import Image, ImageOps

log = logging.getLogger("avatars")

SIZES = (32, 64, 128, 256)
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
STORE_TIMEOUT = aiohttp.ClientTimeout(total=15, connect=3)


def render(original: bytes, size: int) -> bytes:
    with Image.open(io.BytesIO(original)) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
        img = ImageOps.fit(img, (size, size), Image.LANCZOS)
        out = io.BytesIO()
        img.save(out, format="WEBP", quality=82, method=6)
        return out.getvalue()


def render_all(original: bytes) -> dict[int, bytes]:
    return {size: render(original, size) for size in SIZES}


class AvatarStore:
    def __init__(self, session: aiohttp.ClientSession, bucket_url: str) -> None:
        self.session = session
        self.bucket_url = bucket_url.rstrip("/")
        self._rendered: dict[tuple[str, int], bytes] = {}
        self._slots = asyncio.Semaphore(16)

    def _url(self, key: str) -> str:
        return f"{self.bucket_url}/{key}"

    async def put(self, key: str, data: bytes, content_type: str = "image/webp") -> None:
        async with self._slots:
            async with self.session.put(
                self._url(key), data=data, headers={"Content-Type": content_type}, timeout=STORE_TIMEOUT
            ) as resp:
                resp.raise_for_status()

    async def get(self, key: str) -> bytes | None:
        async with self._slots:
            async with self.session.get(self._url(key), timeout=STORE_TIMEOUT) as resp:
                if resp.status == 404:
                    return None
                resp.raise_for_status()
                return await resp.read()

    def remember(self, user_id: str, size: int, data: bytes) -> None:
        self._rendered[(user_id, size)] = data

    def cached(self, user_id: str, size: int) -> bytes | None:
        return self._rendered.get((user_id, size))


async def handle_upload(request: web.Request) -> web.Response:
    store: AvatarStore = request.app["store"]
    user_id = request.match_info["user_id"]
    if request.content_length and request.content_length > MAX_UPLOAD_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=request.content_length)
    original = await request.read()
    digest = hashlib.sha256(original).hexdigest()[:16]

    await store.put(f"originals/{user_id}", original, content_type="application/octet-stream")
    variants = render_all(original)
    for size, data in variants.items():
        await store.put(f"avatars/{user_id}/{size}.webp", data)
        store.remember(user_id, size, data)

    log.info("avatar updated user=%s digest=%s", user_id, digest)
    return web.json_response({"user_id": user_id, "version": digest, "sizes": list(SIZES)})


async def handle_get(request: web.Request) -> web.Response:
    store: AvatarStore = request.app["store"]
    user_id = request.match_info["user_id"]
    try:
        size = int(request.query.get("size", "128"))
    except ValueError:
        raise web.HTTPBadRequest(text="size must be an integer")
    if size not in SIZES:
        raise web.HTTPBadRequest(text=f"size must be one of {SIZES}")

    data = store.cached(user_id, size)
    if data is None:
        data = await store.get(f"avatars/{user_id}/{size}.webp")
    if data is None:
        original = await store.get(f"originals/{user_id}")
        if original is None:
            raise web.HTTPNotFound()
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, render, original, size)
        await store.put(f"avatars/{user_id}/{size}.webp", data)
    store.remember(user_id, size, data)
    return web.Response(body=data, content_type="image/webp", headers={"Cache-Control": "public, max-age=3600"})


async def _session_ctx(app: web.Application):
    session = aiohttp.ClientSession()
    app["store"] = AvatarStore(session, os.environ["AVATAR_BUCKET_URL"])
    yield
    await session.close()


def make_app() -> web.Application:
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app.cleanup_ctx.append(_session_ctx)
    app.router.add_put("/avatars/{user_id}", handle_upload)
    app.router.add_get("/avatars/{user_id}", handle_get)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(), port=8081)
