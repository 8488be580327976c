"""Team chat bot: answers !status, !whois and !deploy commands in the ops channel."""

from __future__ import annotations

import asyncio
import logging
import shlex
import sqlite3
from dataclasses import dataclass

import aiohttp

log = logging.getLogger(__name__)

ALLOWED_ENVIRONMENTS = ("staging", "canary", "production")
PROFILE_URL = "https://directory.internal/api/people/{user_id}"


@dataclass
class Message:
    channel: str
    author_id: str
    text: str


class OpsBot:
    def __init__(self, session: aiohttp.ClientSession, db_path: str, send) -> None:
        self.session = session
        self.db_path = db_path
        self.send = send

    async def profile(self, user_id: str) -> dict:
        url = PROFILE_URL.format(user_id=user_id)
        async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def on_message(self, msg: Message) -> None:
        if not msg.text.startswith("!"):
            return
        command, _, rest = msg.text[1:].partition(" ")
        handler = getattr(self, f"cmd_{command}", None)
        if handler is None:
            await self.send(msg.channel, f"unknown command {command!r}")
            return
        try:
            await handler(msg, rest.strip())
        except Exception as exc:
            log.exception("command %s failed", command)
            await self.send(msg.channel, f"{command} failed: {exc}")

    async def cmd_status(self, msg: Message, rest: str) -> None:
        conn = sqlite3.connect(self.db_path)
        try:
            rows = conn.execute(
                "SELECT service, state, updated_at FROM service_status ORDER BY service"
            ).fetchall()
        finally:
            conn.close()
        lines = [f"{service}: {state} (since {updated})" for service, state, updated in rows]
        await self.send(msg.channel, "\n".join(lines) or "no services registered")

    async def cmd_whois(self, msg: Message, rest: str) -> None:
        user_ids = rest.split()[:25]
        found = []
        for user_id in user_ids:
            person = await self.profile(user_id)
            found.append(f"{person['name']} — {person['team']} ({person.get('timezone', '?')})")
        await self.send(msg.channel, "\n".join(found) or "usage: !whois <id> [<id> ...]")

    async def cmd_deploy(self, msg: Message, rest: str) -> None:
        args = shlex.split(rest)
        if len(args) != 2 or args[1] not in ALLOWED_ENVIRONMENTS:
            await self.send(msg.channel, "usage: !deploy <service> <staging|canary|production>")
            return
        requester = await self.profile(msg.author_id)
        if "deployers" not in requester.get("groups", []):
            await self.send(msg.channel, "you are not in the deployers group")
            return
        proc = await asyncio.create_subprocess_exec(
            "./deploy.sh",
            args[0],
            args[1],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await proc.communicate()
        tail = output.decode(errors="replace").splitlines()[-5:]
        verdict = "succeeded" if proc.returncode == 0 else f"failed ({proc.returncode})"
        await self.send(msg.channel, f"deploy of {args[0]} to {args[1]} {verdict}\n" + "\n".join(tail))
