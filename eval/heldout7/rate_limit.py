"""Sliding-window rate limiting for the public API gateway.

Counts are kept in Redis so that every gateway replica sees the same window;
when Redis is unreachable the limiter falls back to a per-process window so
that the gateway keeps serving.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.responses import JSONResponse

log = logging.getLogger("rate_limit")

WINDOW_SCRIPT = """
local key, now, span, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, 0, now - span)
local n = redis.call('ZCARD', key)
if n >= limit then return 0 end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, span)
return 1
"""


@dataclass(frozen=True)
class Rule:
    scope: str
    limit: int
    span_ms: int


RULES = (
    Rule("ip", 300, 60_000),
    Rule("token", 1_000, 60_000),
    Rule("route", 50_000, 60_000),
)


class SlidingWindowLimiter:
    def __init__(self, url: str, redis_timeout: float = 0.05):
        self._redis = aioredis.from_url(url, socket_timeout=redis_timeout)
        self._script = self._redis.register_script(WINDOW_SCRIPT)
        self._redis_timeout = redis_timeout
        self._local: dict[str, deque[float]] = {}
        self._seq = 0
        self._seq_lock = threading.Lock()
        self.rejections: deque[tuple[float, str]] = deque(maxlen=1000)

    def _local_allow(self, key: str, rule: Rule, now_ms: int) -> bool:
        window = self._local.setdefault(key, deque())
        horizon = now_ms - rule.span_ms
        while window and window[0] <= horizon:
            window.popleft()
        if len(window) >= rule.limit:
            return False
        window.append(now_ms)
        return True

    async def allow(self, rule: Rule, ident: str) -> bool:
        key = f"rl:{rule.scope}:{ident}"
        now_ms = int(time.time() * 1000)
        with self._seq_lock:
            self._seq += 1
            member = f"{now_ms}-{self._seq}"
            try:
                ok = await asyncio.wait_for(
                    self._script(keys=[key], args=[now_ms, rule.span_ms, rule.limit, member]),
                    timeout=self._redis_timeout * 2,
                )
            except (RedisError, asyncio.TimeoutError) as exc:
                log.debug("redis unavailable (%s), local window for %s", exc, key)
                return self._local_allow(key, rule, now_ms)
        return bool(ok)

    async def close(self) -> None:
        await self._redis.aclose()


def identities(request) -> dict[str, str]:
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return {
        "ip": request.client.host if request.client else "unknown",
        "token": token[-16:] or "anonymous",
        "route": request.url.path,
    }


def rate_limit_middleware(limiter: SlidingWindowLimiter):
    async def middleware(request, call_next):
        idents = identities(request)
        for rule in RULES:
            if not await limiter.allow(rule, idents[rule.scope]):
                limiter.rejections.append((time.time(), f"{rule.scope}:{idents[rule.scope]}"))
                return JSONResponse(
                    {"error": "rate limited", "scope": rule.scope},
                    status_code=429,
                    headers={"Retry-After": str(rule.span_ms // 1000)},
                )
        return await call_next(request)

    return middleware
