"""Outbound webhook dispatcher.

Events arrive from the internal bus and are delivered to every subscriber endpoint
registered for the event type, signed with the subscriber's shared secret.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger("webhooks")

DELIVERY_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=3)
MAX_ATTEMPTS = 5


@dataclass
class Subscriber:
    id: str
    url: str
    secret: bytes
    event_types: frozenset[str]


@dataclass
class DeliveryRecord:
    delivery_id: str
    subscriber_id: str
    attempts: int = 0
    last_status: int | None = None
    history: list[float] = field(default_factory=list)


class WebhookDispatcher:
    """Delivers bus events to HTTP subscribers with retries and signing."""

    def __init__(self, subscribers: list[Subscriber]) -> None:
        self._subscribers = subscribers
        self._session: aiohttp.ClientSession | None = None
        self._seq = 0
        self._seq_lock = asyncio.Lock()
        self._records: dict[str, DeliveryRecord] = {}
        self.recent_failures: deque[tuple[str, int]] = deque(maxlen=200)

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=DELIVERY_TIMEOUT)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _next_id(self) -> str:
        async with self._seq_lock:
            self._seq += 1
            return f"dlv-{int(time.time())}-{self._seq}"

    def _sign(self, secret: bytes, body: bytes, ts: str) -> str:
        mac = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256)
        return "v1=" + mac.hexdigest()

    def _record(self, delivery_id: str, subscriber_id: str) -> DeliveryRecord:
        rec = self._records.get(delivery_id)
        if rec is None:
            rec = DeliveryRecord(delivery_id, subscriber_id)
            self._records[delivery_id] = rec
        return rec

    def _encode(self, event: dict[str, Any]) -> bytes:
        envelope = {
            "type": event["type"],
            "created": event.get("created", time.time()),
            "data": event["data"],
        }
        return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()

    async def _post(self, sub: Subscriber, delivery_id: str, body: bytes) -> int:
        assert self._session is not None
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Id": delivery_id,
            "X-Webhook-Timestamp": ts,
            "X-Webhook-Signature": self._sign(sub.secret, body, ts),
        }
        async with self._session.post(sub.url, data=body, headers=headers) as resp:
            return resp.status

    async def _deliver(self, sub: Subscriber, event: dict[str, Any]) -> bool:
        delivery_id = await self._next_id()
        rec = self._record(delivery_id, sub.id)
        body = self._encode(event)
        delay = 0.5
        while rec.attempts < MAX_ATTEMPTS:
            rec.attempts += 1
            rec.history.append(time.time())
            try:
                status = await self._post(sub, delivery_id, body)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                log.warning("delivery %s to %s failed: %s", delivery_id, sub.url, exc)
                status = 0
            rec.last_status = status
            if 200 <= status < 300:
                return True
            if status in (400, 401, 403, 404, 410):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        self.recent_failures.append((sub.id, rec.last_status or 0))
        return False

    async def dispatch(self, event: dict[str, Any]) -> dict[str, bool]:
        """Deliver one event to every subscriber of its type; returns success per subscriber."""
        results: dict[str, bool] = {}
        for sub in self._subscribers:
            if event["type"] not in sub.event_types:
                continue
            results[sub.id] = await self._deliver(sub, event)
        return results

    async def run(self, bus: asyncio.Queue[dict[str, Any]]) -> None:
        await self.start()
        try:
            while True:
                event = await bus.get()
                try:
                    outcome = await self.dispatch(event)
                    failed = [sid for sid, ok in outcome.items() if not ok]
                    if failed:
                        log.error("event %s undelivered to %s", event.get("id"), failed)
                finally:
                    bus.task_done()
        finally:
            await self.close()
