"""Per-client request limits for the public API.

Two limiters share one interface: a Redis-backed fixed window used in
production (so every API replica sees the same counts) and an in-process
sliding window used by single-node deployments and the test suite.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import redis

log = logging.getLogger("ratelimit")

WINDOW_SCRIPT = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {current, redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: float


class RedisLimiter:
    def __init__(self, client: redis.Redis, limit: int, window_s: float, prefix: str = "rl"):
        self.client = client
        self.limit = limit
        self.window_ms = int(window_s * 1000)
        self.prefix = prefix
        self._script = client.register_script(WINDOW_SCRIPT)

    def _key(self, client_id: str) -> str:
        bucket = int(time.time() * 1000) // self.window_ms
        return f"{self.prefix}:{client_id}:{bucket}"

    def hit(self, client_id: str) -> Decision:
        key = self._key(client_id)
        while True:
            try:
                count, ttl_ms = self._script(keys=[key], args=[self.window_ms])
                break
            except redis.ConnectionError as exc:
                log.warning("rate limit store unavailable, retrying: %s", exc)
        count = int(count)
        if count > self.limit:
            return Decision(False, 0, max(ttl_ms, 0) / 1000)
        return Decision(True, self.limit - count, 0.0)


class LocalLimiter:
    """Sliding window over the timestamps of the last `limit` hits."""

    def __init__(self, limit: int, window_s: float, idle_evict_s: float = 600.0):
        self.limit = limit
        self.window_s = window_s
        self.idle_evict_s = idle_evict_s
        self._hits: dict[str, list[float]] = {}
        self._lock = threading.Lock()
        self._last_sweep = time.monotonic()

    def _sweep(self, now: float) -> None:
        cutoff = now - self.idle_evict_s
        stale = [cid for cid, hits in self._hits.items() if not hits or hits[-1] < cutoff]
        for cid in stale:
            del self._hits[cid]
        self._last_sweep = now

    def hit(self, client_id: str) -> Decision:
        now = time.monotonic()
        with self._lock:
            if now - self._last_sweep > self.idle_evict_s:
                self._sweep(now)
            window = self._hits.setdefault(client_id, [])
            cutoff = now - self.window_s
            while window and window[0] <= cutoff:
                window.pop(0)
            if len(window) >= self.limit:
                return Decision(False, 0, window[0] + self.window_s - now)
            window.append(now)
            return Decision(True, self.limit - len(window), 0.0)


def make_limiter(redis_url: str | None, limit: int, window_s: float):
    if redis_url:
        client = redis.Redis.from_url(redis_url, socket_timeout=0.25, socket_connect_timeout=0.25)
        return RedisLimiter(client, limit, window_s)
    return LocalLimiter(limit, window_s)


def limit_requests(limiter, get_client_id):
    """Decorator for Flask views."""
    from functools import wraps

    from flask import jsonify

    def decorate(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            decision = limiter.hit(get_client_id())
            if not decision.allowed:
                resp = jsonify(error="rate limit exceeded")
                resp.status_code = 429
                resp.headers["Retry-After"] = str(max(1, round(decision.retry_after)))
                return resp
            return view(*args, **kwargs)

        return wrapper

    return decorate
