"""Session replay uploader.

The browser SDK posts batches of DOM mutation events to the ingest endpoint,
which puts `(session_id, chunk)` pairs on an asyncio queue. This worker groups
chunks per session and, once a session goes quiet, writes a gzipped JSONL
recording to S3 for the replay player.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import os
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field

import boto3
from botocore.config import Config

log = logging.getLogger("replay.uploader")

IDLE_SECONDS = 30.0
MAX_CHUNKS_PER_SESSION = 20_000


@dataclass
class PendingSession:
    session_id: str
    chunks: list[bytes] = field(default_factory=list)
    first_seen: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)


class ReplayUploader:
    def __init__(self, bucket: str, prefix: str = "replays/", queue_size: int = 5000) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=queue_size)
        self.s3 = boto3.client("s3", config=Config(retries={"max_attempts": 4}, connect_timeout=5, read_timeout=30))
        self.pending: dict[str, PendingSession] = {}
        self.recent_uploads: deque[str] = deque(maxlen=1000)
        self._stopping = asyncio.Event()

    async def submit(self, session_id: str, chunk: bytes) -> None:
        await self.queue.put((session_id, chunk))

    def _encode(self, pending: PendingSession) -> bytes:
        body = b""
        for chunk in pending.chunks:
            body += chunk.rstrip(b"\n") + b"\n"
        return body

    def _write_temp(self, body: bytes) -> str:
        fd, path = tempfile.mkstemp(prefix="replay-", suffix=".jsonl.gz")
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz:
            gz.write(body)
        return path

    async def _upload(self, pending: PendingSession) -> None:
        body = self._encode(pending)
        path = self._write_temp(body)
        key = f"{self.prefix}{pending.session_id[:2]}/{pending.session_id}.jsonl.gz"
        self.s3.upload_file(
            path,
            self.bucket,
            key,
            ExtraArgs={"ContentType": "application/x-ndjson", "ContentEncoding": "gzip"},
        )
        os.unlink(path)
        self.recent_uploads.append(key)
        log.info("uploaded %s (%d chunks, %d bytes raw)", key, len(pending.chunks), len(body))

    async def _flush_idle(self, force: bool = False) -> None:
        now = time.monotonic()
        idle = [
            sid
            for sid, p in self.pending.items()
            if force or now - p.last_seen > IDLE_SECONDS or len(p.chunks) >= MAX_CHUNKS_PER_SESSION
        ]
        for sid in idle:
            pending = self.pending.pop(sid)
            try:
                await self._upload(pending)
            except Exception:
                log.exception("upload failed for session %s", sid)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                session_id, chunk = await asyncio.wait_for(self.queue.get(), timeout=5.0)
            except asyncio.TimeoutError:
                await self._flush_idle()
                continue
            pending = self.pending.get(session_id)
            if pending is None:
                pending = self.pending[session_id] = PendingSession(session_id)
            pending.chunks.append(chunk)
            pending.last_seen = time.monotonic()
            self.queue.task_done()
            if len(pending.chunks) % 500 == 0:
                await self._flush_idle()
        await self._flush_idle(force=True)

    def stop(self) -> None:
        self._stopping.set()
