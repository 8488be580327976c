"""Receive signed webhooks from the payment provider and forward them to internal services.

The provider signs every delivery with HMAC-SHA256 over the raw body and retries a delivery
on any non-2xx answer, so the same event id can arrive more than once; a duplicate is
acknowledged without being forwarded again. Events are acknowledged as soon as they are
verified and forwarded in the background, so the provider never waits on our services.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections import deque
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

log = logging.getLogger("webhooks")

SIGNATURE_HEADER = "X-Provider-Signature"
DOWNSTREAM: dict[str, list[str]] = {
    "payment.succeeded": ["http://billing.internal/hooks/payment", "http://ledger.internal/events"],
    "payment.refunded": ["http://billing.internal/hooks/refund", "http://ledger.internal/events"],
    "customer.updated": ["http://crm.internal/hooks/customer"],
}


class WebhookReceiver:
    """Verifies, de-duplicates and forwards provider events, in arrival order."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self._seen: set[str] = set()
        self._recent_failures: deque[dict[str, Any]] = deque(maxlen=200)
        self._order = asyncio.Lock()
        self._session: ClientSession | None = None
        self.accepted = 0

    async def on_startup(self, app: web.Application) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=10))

    async def on_cleanup(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _verify(self, body: bytes, signature: str) -> bool:
        expected = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self._verify(body, request.headers.get(SIGNATURE_HEADER, "")):
            return web.json_response({"error": "bad signature"}, status=401)
        try:
            event = json.loads(body)
            event_id = str(event["id"])
            event_type = str(event["type"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "malformed event"}, status=400)
        if event_id in self._seen:
            return web.json_response({"status": "duplicate"})
        self._seen.add(event_id)
        self.accepted += 1
        asyncio.create_task(self._dispatch(event_type, event))
        return web.json_response({"status": "accepted"}, status=202)

    async def _dispatch(self, event_type: str, event: dict[str, Any]) -> None:
        targets = DOWNSTREAM.get(event_type)
        if not targets:
            log.debug("no subscriber for %s", event_type)
            return
        async with self._order:
            for url in targets:
                await self._deliver(url, event)

    async def _deliver(self, url: str, event: dict[str, Any]) -> None:
        assert self._session is not None
        try:
            async with self._session.post(url, json=event) as resp:
                if resp.status >= 400:
                    text = await resp.text()
                    raise ClientError(f"{url} answered {resp.status}: {text[:200]}")
        except (ClientError, asyncio.TimeoutError) as exc:
            log.warning("delivery of %s to %s failed: %s", event["id"], url, exc)
            self._recent_failures.append({"id": event["id"], "url": url, "error": str(exc)})

    async def failures(self, request: web.Request) -> web.Response:
        return web.json_response(list(self._recent_failures))

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"accepted": self.accepted, "failures": len(self._recent_failures)})


def create_app() -> web.Application:
    receiver = WebhookReceiver(os.environ["WEBHOOK_SECRET"].encode())
    app = web.Application(client_max_size=256 * 1024)
    app.on_startup.append(receiver.on_startup)
    app.on_cleanup.append(receiver.on_cleanup)
    app.router.add_post("/webhooks/provider", receiver.handle)
    app.router.add_get("/webhooks/failures", receiver.failures)
    app.router.add_get("/healthz", receiver.health)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(create_app(), port=int(os.environ.get("PORT", "8080")))
