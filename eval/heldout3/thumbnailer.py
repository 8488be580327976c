"""Thumbnail service.

POST /thumbnails     {"id": "...", "url": "...", "sizes": ["small", "large"]}
POST /thumbnails/batch {"items": [{...}, {...}]}

Fetches the original image, renders the requested sizes as WebP and uploads
them to the CDN bucket under thumbs/<id>/<size>.webp.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import tempfile
from functools import partial

import aiohttp
import boto3
from aiohttp import web
from PIL import Image, ImageOps

log = logging.getLogger("thumbnailer")

SIZES = {"small": (160, 160), "medium": (480, 480), "large": (1024, 1024)}
BUCKET = os.environ.get("THUMB_BUCKET", "cdn-thumbs")
MAX_SOURCE_BYTES = 25 * 1024 * 1024
FETCH_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)

s3 = boto3.client("s3")
fetch_limit = asyncio.Semaphore(8)


async def fetch_original(session: aiohttp.ClientSession, url: str) -> bytes:
    async with fetch_limit:
        async with session.get(url) as resp:
            resp.raise_for_status()
            if resp.content_length and resp.content_length > MAX_SOURCE_BYTES:
                raise web.HTTPRequestEntityTooLarge(max_size=MAX_SOURCE_BYTES, actual_size=resp.content_length)
            return await resp.read()


async def upload(path: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    extra = {"ContentType": "image/webp", "CacheControl": "public, max-age=31536000, immutable"}
    await loop.run_in_executor(None, partial(s3.upload_file, path, BUCKET, key, ExtraArgs=extra))


async def render_and_upload(data: bytes, image_id: str, sizes: list[str]) -> dict[str, str]:
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise web.HTTPBadRequest(text=f"unknown sizes: {', '.join(unknown)}")

    original = Image.open(io.BytesIO(data))
    original = ImageOps.exif_transpose(original).convert("RGB")

    rendered: dict[str, str] = {}
    for name in sizes:
        thumb = original.copy()
        thumb.thumbnail(SIZES[name], Image.LANCZOS)
        fd, tmp_path = tempfile.mkstemp(prefix=f"{image_id}-{name}-", suffix=".webp")
        with os.fdopen(fd, "wb") as fh:
            thumb.save(fh, "WEBP", quality=82, method=6)
        rendered[name] = tmp_path

    keys = {name: f"thumbs/{image_id}/{name}.webp" for name in rendered}
    await asyncio.gather(*(upload(rendered[name], keys[name]) for name in rendered))
    for tmp_path in rendered.values():
        os.unlink(tmp_path)
    return keys


async def handle_single(request: web.Request) -> web.Response:
    body = await request.json()
    session: aiohttp.ClientSession = request.app["http"]
    data = await fetch_original(session, body["url"])
    keys = await render_and_upload(data, body["id"], body.get("sizes", list(SIZES)))
    return web.json_response({"id": body["id"], "keys": keys})


async def handle_batch(request: web.Request) -> web.Response:
    body = await request.json()
    session: aiohttp.ClientSession = request.app["http"]
    results: dict[str, dict] = {}
    for item in body["items"]:
        try:
            data = await fetch_original(session, item["url"])
            keys = await render_and_upload(data, item["id"], item.get("sizes", list(SIZES)))
            results[item["id"]] = {"ok": True, "keys": keys}
        except (aiohttp.ClientError, web.HTTPException, OSError) as exc:
            log.warning("thumbnail %s failed: %s", item["id"], exc)
            results[item["id"]] = {"ok": False, "error": str(exc)}
    return web.json_response(results)


async def on_startup(app: web.Application) -> None:
    app["http"] = aiohttp.ClientSession(timeout=FETCH_TIMEOUT)


async def on_cleanup(app: web.Application) -> None:
    await app["http"].close()


def make_app() -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/thumbnails", handle_single)
    app.router.add_post("/thumbnails/batch", handle_batch)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8080")))
