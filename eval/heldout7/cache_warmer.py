"""Warm the product-page cache ahead of traffic peaks.

The warmer reads the hot paths from the analytics export, renders each one
through the origin and stores the body in the in-process cache that the edge
handler serves from.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

log = logging.getLogger("cache_warmer")

ORIGIN = "http://origin.internal:8080"
USER_AGENT = "cache-warmer/2.3"
HEALTH_TIMEOUT = 3.0


@dataclass
class Entry:
    body: bytes
    etag: str | None
    stored_at: float


def _open(path: str, method: str = "GET", timeout: float | None = None):
    req = urllib.request.Request(
        ORIGIN + path,
        method=method,
        headers={"User-Agent": USER_AGENT, "X-Cache-Warm": "1"},
    )
    return urllib.request.urlopen(req, timeout=timeout)


def origin_healthy() -> bool:
    try:
        with _open("/healthz", timeout=HEALTH_TIMEOUT) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def render(path: str) -> tuple[bytes, str | None]:
    with _open(path) as resp:
        return resp.read(), resp.headers.get("ETag")


class PageCache:
    def __init__(self, capacity: int = 5000, ttl: float = 600.0):
        self._data: OrderedDict[str, Entry] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._lock = threading.Lock()

    def _store(self, path: str, entry: Entry) -> None:
        self._data[path] = entry
        self._data.move_to_end(path)
        while len(self._data) > self._capacity:
            self._data.popitem(last=False)

    def put(self, path: str, body: bytes, etag: str | None) -> None:
        with self._lock:
            self._store(path, Entry(body, etag, time.monotonic()))

    def get_or_render(self, path: str) -> bytes:
        with self._lock:
            entry = self._data.get(path)
            if entry is not None and time.monotonic() - entry.stored_at < self._ttl:
                self._data.move_to_end(path)
                return entry.body
            body, etag = render(path)
            self._store(path, Entry(body, etag, time.monotonic()))
            return body

    def stats(self) -> dict:
        with self._lock:
            return {"entries": len(self._data), "capacity": self._capacity}


def load_hot_paths(export_file: str, limit: int = 2000) -> list[str]:
    paths: list[str] = []
    with open(export_file, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if rec.get("status") != 200:
                continue
            path = rec["path"].split("?", 1)[0]
            if path not in paths:
                paths.append(path)
    return paths[:limit]


def warm(cache: PageCache, paths: list[str], workers: int = 8) -> int:
    def one(path: str) -> bool:
        try:
            body, etag = render(path)
        except (urllib.error.URLError, OSError) as exc:
            log.warning("warm %s failed: %s", path, exc)
            return False
        cache.put(path, body, etag)
        return True

    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = sum(pool.map(one, paths))
    log.info("warmed %d/%d paths", done, len(paths))
    return done


def main(export_file: str) -> int:
    if not origin_healthy():
        log.error("origin unhealthy, not warming")
        return 1
    cache = PageCache()
    paths = load_hot_paths(export_file)
    warm(cache, paths)
    log.info("cache stats: %s", cache.stats())
    return 0
