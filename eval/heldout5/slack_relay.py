"""Alert relay: receives alerting webhooks and forwards them to Slack.

Routes are configured per service in routes.json; every alert goes to each
channel its service (and its severity) is routed to. The alerting system
redelivers webhooks it did not see acknowledged, so duplicates are dropped by
alert id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import deque
from pathlib import Path

import aiohttp
from aiohttp import web

log = logging.getLogger("slack-relay")

SLACK_POST = "https://slack.com/api/chat.postMessage"
ROUTES_FILE = Path(os.environ.get("RELAY_ROUTES", "/etc/slack-relay/routes.json"))
SEVERITY_EMOJI = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


class Relay:
    """Formats alerts and posts them to the channels they are routed to."""

    def __init__(self, token: str, routes: dict[str, dict[str, list[str]]]) -> None:
        self._token = token
        self._routes = routes
        self._delivered: set[str] = set()
        self._recent_errors: deque[tuple[str, str]] = deque(maxlen=50)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=10),
            headers={"Authorization": f"Bearer {self._token}"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _channels_for(self, alert: dict) -> list[str]:
        service = self._routes.get(alert.get("service", ""), self._routes.get("default", {}))
        severity = alert.get("severity", "info")
        return service.get(severity, []) + service.get("all", [])

    @staticmethod
    def _format(alert: dict) -> dict:
        emoji = SEVERITY_EMOJI.get(alert.get("severity", "info"), "")
        title = f"{emoji} *{alert.get('service', '?')}*: {alert.get('summary', 'alert')}"
        fields = [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in sorted(alert.get("labels", {}).items())]
        blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": title}}]
        if fields:
            blocks.append({"type": "section", "fields": fields[:10]})
        if alert.get("runbook"):
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{alert['runbook']}|runbook>"}]})
        return {"text": title, "blocks": blocks}

    async def _post(self, channel: str, payload: dict) -> None:
        assert self._session is not None
        for attempt in range(2):
            async with self._session.post(SLACK_POST, json={**payload, "channel": channel}) as resp:
                if resp.status == 429 and attempt == 0:
                    await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                    continue
                body = await resp.json()
            if not body.get("ok"):
                self._recent_errors.append((channel, body.get("error", "unknown")))
                log.warning("slack refused message for %s: %s", channel, body.get("error"))
            return

    async def deliver(self, alert: dict) -> bool:
        """Post one alert to all its channels; False when it was already delivered."""
        alert_id = str(alert.get("id") or alert.get("fingerprint"))
        if alert_id in self._delivered:
            return False
        self._delivered.add(alert_id)
        payload = self._format(alert)
        for channel in self._channels_for(alert):
            await self._post(channel, payload)
        return True

    def health(self) -> dict:
        return {"recent_errors": list(self._recent_errors)}


async def handle_webhook(request: web.Request) -> web.Response:
    relay: Relay = request.app["relay"]
    try:
        body = await request.json()
    except json.JSONDecodeError:
        return web.json_response({"error": "body is not JSON"}, status=400)
    alerts = body.get("alerts", [])
    for alert in alerts:
        asyncio.create_task(relay.deliver(alert))
    return web.json_response({"accepted": len(alerts)}, status=202)


async def handle_health(request: web.Request) -> web.Response:
    return web.json_response(request.app["relay"].health())


async def _on_startup(app: web.Application) -> None:
    await app["relay"].start()


async def _on_cleanup(app: web.Application) -> None:
    await app["relay"].close()


def make_app() -> web.Application:
    routes = json.loads(ROUTES_FILE.read_text())
    app = web.Application(client_max_size=1024**2)
    app["relay"] = Relay(os.environ["SLACK_BOT_TOKEN"], routes)
    app.router.add_post("/alerts", handle_webhook)
    app.router.add_get("/health", handle_health)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8080")))
