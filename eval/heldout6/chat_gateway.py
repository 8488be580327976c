"""Websocket gateway for the support-desk live chat: agents and customers share rooms."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import defaultdict, deque

from aiohttp import WSMsgType, web

log = logging.getLogger("chat")

PBKDF2_ROUNDS = 310_000
MAX_MESSAGE = 4096


class Rooms:
    def __init__(self) -> None:
        self.members: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self.transcripts: dict[str, list[dict]] = defaultdict(list)
        self.typing: dict[str, deque[tuple[str, float]]] = defaultdict(lambda: deque(maxlen=20))

    def join(self, room: str, ws: web.WebSocketResponse) -> None:
        self.members[room].add(ws)

    def leave(self, room: str, ws: web.WebSocketResponse) -> None:
        peers = self.members.get(room)
        if peers is not None:
            peers.discard(ws)
            if not peers:
                del self.members[room]
                self.typing.pop(room, None)

    async def broadcast(self, room: str, message: dict) -> None:
        self.transcripts[room].append(message)
        data = json.dumps(message)
        for ws in self.members.get(room, ()):
            if ws.closed:
                continue
            try:
                await ws.send_str(data)
            except ConnectionResetError:
                log.info("peer vanished in %s", room)


class AgentDirectory:
    def __init__(self, records: dict[str, tuple[bytes, bytes]]) -> None:
        self._records = records

    def verify(self, agent: str, password: str) -> bool:
        salt, expected = self._records.get(agent, (b"\0" * 16, b"\0" * 32))
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ROUNDS)
        return hmac.compare_digest(digest, expected) and agent in self._records


class Sessions:
    def __init__(self, ttl: float = 8 * 3600) -> None:
        self._ttl = ttl
        self._tokens: dict[str, tuple[str, float]] = {}

    def issue(self, agent: str) -> str:
        self._sweep()
        token = secrets.token_urlsafe(24)
        self._tokens[token] = (agent, time.monotonic() + self._ttl)
        return token

    def agent_for(self, token: str) -> str | None:
        entry = self._tokens.get(token)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def _sweep(self) -> None:
        now = time.monotonic()
        for tok in [t for t, (_, exp) in self._tokens.items() if exp < now]:
            del self._tokens[tok]


async def login(request: web.Request) -> web.Response:
    body = await request.json()
    directory: AgentDirectory = request.app["directory"]
    if not directory.verify(body.get("agent", ""), body.get("password", "")):
        await asyncio.sleep(0.5)
        raise web.HTTPUnauthorized()
    token = request.app["sessions"].issue(body["agent"])
    return web.json_response({"token": token})


async def chat(request: web.Request) -> web.WebSocketResponse:
    room = request.match_info["room"]
    agent = request.app["sessions"].agent_for(request.query.get("token", ""))
    sender = agent or f"customer-{request.remote}"
    rooms: Rooms = request.app["rooms"]
    ws = web.WebSocketResponse(heartbeat=25, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    rooms.join(room, ws)
    try:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                if msg.type == WSMsgType.ERROR:
                    break
                continue
            payload = json.loads(msg.data)
            if payload.get("kind") == "typing":
                rooms.typing[room].append((sender, time.time()))
                continue
            await rooms.broadcast(
                room, {"from": sender, "text": str(payload.get("text", ""))[:2000], "at": time.time()}
            )
    finally:
        rooms.leave(room, ws)
    return ws


async def transcript(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    if request.app["sessions"].agent_for(request.headers.get("x-token", "")) is None:
        raise web.HTTPForbidden()
    return web.json_response(request.app["rooms"].transcripts.get(room, [])[-200:])


def make_app(records: dict[str, tuple[bytes, bytes]]) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app["rooms"] = Rooms()
    app["directory"] = AgentDirectory(records)
    app["sessions"] = Sessions()
    app.router.add_post("/login", login)
    app.router.add_get("/rooms/{room}/ws", chat)
    app.router.add_get("/rooms/{room}/transcript", transcript)
    return app


if __name__ == "__main__":
    web.run_app(make_app({}), port=8088)
