"""Slack slash-command handler for the platform team.

`/oncall [team]` shows who is on call, `/ping <host>` resolves and probes a host
from inside the VPC, `/runbook <topic>` links the runbook page. Slack needs an
answer within three seconds, so slow work is acknowledged immediately and the
real reply is posted to `response_url` from a background task.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import socket
import time

import aiohttp
from aiohttp import web

log = logging.getLogger("platform.slack")

SIGNING_SECRET = os.environ.get("SLACK_SIGNING_SECRET", "").encode()
SLACK_TOKEN = os.environ.get("SLACK_BOT_TOKEN", "")
ONCALL_API = os.environ.get("ONCALL_API", "http://oncall.internal/api/v1")
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=5)
KNOWN_COMMANDS = ("/oncall", "/ping", "/runbook")
RUNBOOKS = {"db": "https://wiki.internal/runbooks/postgres", "queue": "https://wiki.internal/runbooks/kafka"}


def verify_signature(headers, body: bytes) -> bool:
    ts = headers.get("X-Slack-Request-Timestamp", "0")
    if abs(time.time() - int(ts)) > 300:
        return False
    base = b"v0:" + ts.encode() + b":" + body
    expected = "v0=" + hmac.new(SIGNING_SECRET, base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("X-Slack-Signature", ""))


class CommandBot:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reply(self, response_url: str, text: str) -> None:
        payload = {"response_type": "in_channel", "text": text}
        for attempt in range(3):
            try:
                async with self.session.post(response_url, json=payload, timeout=HTTP_TIMEOUT) as resp:
                    if resp.status < 500:
                        return
                    log.warning("response_url returned %s", resp.status)
            except aiohttp.ClientError as exc:
                log.warning("reply attempt %d failed: %s", attempt + 1, exc)
            time.sleep(0.5 * 2**attempt)

    async def _slack_user(self, email: str) -> str:
        async with self.session.get(
            "https://slack.com/api/users.lookupByEmail",
            params={"email": email},
            headers={"Authorization": f"Bearer {SLACK_TOKEN}"},
            timeout=HTTP_TIMEOUT,
        ) as resp:
            data = await resp.json()
        return f"<@{data['user']['id']}>" if data.get("ok") else email

    async def oncall(self, team: str, response_url: str) -> None:
        async with self.session.get(f"{ONCALL_API}/shifts/current", params={"team": team or "all"}, timeout=HTTP_TIMEOUT) as resp:
            shifts = (await resp.json())["shifts"]
        lines = []
        for shift in shifts:
            who = await self._slack_user(shift["email"])
            lines.append(f"*{shift['schedule']}* ({shift['level']}): {who} until {shift['ends_at'][:16]}")
        await self._reply(response_url, "\n".join(lines) or "Nobody is on call?!")

    async def ping(self, host: str, response_url: str) -> None:
        try:
            addr = socket.gethostbyname(host)
        except socket.gaierror:
            await self._reply(response_url, f"`{host}` does not resolve")
            return
        started = time.monotonic()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(addr, 443), timeout=3)
            writer.close()
            await writer.wait_closed()
            rtt = (time.monotonic() - started) * 1000
            await self._reply(response_url, f"`{host}` ({addr}) accepted TCP/443 in {rtt:.0f} ms")
        except (OSError, asyncio.TimeoutError) as exc:
            await self._reply(response_url, f"`{host}` ({addr}) is not answering on 443: {exc}")


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    if not verify_signature(request.headers, body):
        raise web.HTTPUnauthorized()
    form = await request.post()
    command, text, response_url = form["command"], form.get("text", "").strip(), form["response_url"]
    if command not in KNOWN_COMMANDS:
        return web.json_response({"text": f"Unknown command {command}"})
    bot: CommandBot = request.app["bot"]
    if command == "/runbook":
        return web.json_response({"text": RUNBOOKS.get(text, "Topics: " + ", ".join(sorted(RUNBOOKS)))})
    if command == "/oncall":
        bot.spawn(bot.oncall(text, response_url))
    else:
        bot.spawn(bot.ping(text, response_url))
    return web.json_response({"response_type": "ephemeral", "text": "On it…"})


async def _lifecycle(app: web.Application):
    session = aiohttp.ClientSession()
    app["bot"] = CommandBot(session)
    yield
    await session.close()


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/slack/commands", handle)
    return app
