"""Per-client token-bucket rate limiting for the public API gateway."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

EXEMPT_ROLES = ("admin", "internal", "healthcheck")


@dataclass
class Bucket:
    capacity: float
    refill_per_s: float
    tokens: float = 0.0
    updated: float = field(default_factory=time.monotonic)

    def refill(self, now: float) -> None:
        elapsed = now - self.updated
        self.tokens = min(self.capacity, self.tokens + elapsed * self.refill_per_s)
        self.updated = now

    def seconds_until(self, cost: float) -> float:
        missing = cost - self.tokens
        return 0.0 if missing <= 0 else missing / self.refill_per_s


class RateLimiter:
    """Hands out request tokens per API key; callers await `acquire` before doing work."""

    def __init__(self, capacity: float = 20, refill_per_s: float = 5, max_wait_s: float = 2.0) -> None:
        self.capacity = capacity
        self.refill_per_s = refill_per_s
        self.max_wait_s = max_wait_s
        self._buckets: dict[str, Bucket] = {}
        self._lock = asyncio.Lock()
        self.rejected = 0

    def _bucket(self, api_key: str) -> Bucket:
        bucket = self._buckets.get(api_key)
        if bucket is None:
            bucket = Bucket(self.capacity, self.refill_per_s, tokens=self.capacity)
            self._buckets[api_key] = bucket
        return bucket

    async def acquire(self, api_key: str, role: str = "user", cost: float = 1.0) -> bool:
        if role in EXEMPT_ROLES:
            return True
        async with self._lock:
            bucket = self._bucket(api_key)
            bucket.refill(time.monotonic())
            wait = bucket.seconds_until(cost)
            if wait > self.max_wait_s:
                self.rejected += 1
                log.info("rejecting %s: would wait %.2fs", api_key, wait)
                return False
            if wait > 0:
                time.sleep(wait)
                bucket.refill(time.monotonic())
            bucket.tokens -= cost
            return True

    def remaining(self, api_key: str) -> float:
        bucket = self._buckets.get(api_key)
        if bucket is None:
            return self.capacity
        bucket.refill(time.monotonic())
        return bucket.tokens

    def stats(self) -> dict[str, float]:
        return {"clients": len(self._buckets), "rejected": self.rejected}


async def handle_request(limiter: RateLimiter, request: dict) -> dict:
    if not await limiter.acquire(request["api_key"], request.get("role", "user")):
        return {"status": 429, "body": "slow down"}
    await asyncio.sleep(0)  # yield to other handlers before the real work
    return {"status": 200, "body": f"hello {request['api_key'][:6]}"}


async def main() -> None:
    limiter = RateLimiter()
    requests = [{"api_key": f"key-{i % 7}"} for i in range(50)]
    results = await asyncio.gather(*(handle_request(limiter, r) for r in requests))
    print(sum(r["status"] == 200 for r in results), limiter.stats())


if __name__ == "__main__":
    asyncio.run(main())
