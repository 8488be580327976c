"""Delivers partner webhooks for order events pulled from the outbox queue."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

log = logging.getLogger("webhooks")

MAX_ATTEMPTS = 5
DELIVERY_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass
class Subscription:
    id: str
    url: str
    secret: bytes
    events: frozenset[str]


@dataclass
class Event:
    id: str
    type: str
    payload: dict
    created_at: float = field(default_factory=time.time)


class EndpointRejected(Exception):
    pass


def _sign(secret: bytes, body: bytes, ts: int) -> str:
    mac = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256)
    return f"t={ts},v1={mac.hexdigest()}"


def _assert_public(url: str) -> None:
    host = urlsplit(url).hostname or ""
    for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP):
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local:
            raise EndpointRejected(f"{host} resolves to {addr}")


class Dispatcher:
    def __init__(self, store, outbox: asyncio.Queue, concurrency: int = 8) -> None:
        self._store = store
        self._outbox = outbox
        self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT, follow_redirects=False)
        self._slots = asyncio.Semaphore(concurrency)
        self._workers: list[asyncio.Task] = []

    async def _post(self, sub: Subscription, event: Event) -> int:
        body = json.dumps({"id": event.id, "type": event.type, "data": event.payload}).encode()
        headers = {
            "content-type": "application/json",
            "x-signature": _sign(sub.secret, body, int(time.time())),
            "x-event-id": event.id,
        }
        resp = await self._client.post(sub.url, content=body, headers=headers)
        return resp.status_code

    async def _deliver(self, sub: Subscription, event: Event) -> bool:
        _assert_public(sub.url)
        delay = 1.0
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                status = await self._post(sub, event)
            except httpx.TransportError as exc:
                log.info("delivery %s -> %s failed: %s", event.id, sub.id, exc)
                status = 0
            if 200 <= status < 300:
                return True
            if 400 <= status < 500 and status not in (408, 429):
                return False
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        return False

    async def _record(self, sub: Subscription, event: Event, ok: bool) -> None:
        await self._store.insert_attempt(
            subscription_id=sub.id, event_id=event.id, ok=ok, at=time.time()
        )
        if not ok:
            await self._store.bump_failures(sub.id)

    async def handle(self, event: Event) -> None:
        subs = await self._store.subscriptions_for(event.type)
        async with self._slots:
            for sub in subs:
                try:
                    ok = await self._deliver(sub, event)
                except EndpointRejected as exc:
                    log.warning("skipping %s: %s", sub.id, exc)
                    ok = False
                asyncio.create_task(self._record(sub, event, ok))

    async def _worker(self) -> None:
        while True:
            event = await self._outbox.get()
            try:
                await self.handle(event)
            except Exception:
                log.exception("event %s failed", event.id)
            finally:
                self._outbox.task_done()

    def start(self, workers: int = 4) -> None:
        for _ in range(workers):
            self._workers.append(asyncio.create_task(self._worker()))

    async def drain_and_stop(self) -> None:
        await self._outbox.join()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._client.aclose()


async def replay(store, event_ids: list[str]) -> None:
    outbox: asyncio.Queue = asyncio.Queue(maxsize=100)
    dispatcher = Dispatcher(store, outbox)
    dispatcher.start()
    try:
        for event_id in event_ids:
            row = await store.load_event(event_id)
            await outbox.put(Event(id=row["id"], type=row["type"], payload=row["payload"]))
    finally:
        await dispatcher.drain_and_stop()
