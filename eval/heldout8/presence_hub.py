"""Presence service: tracks who is online in each workspace and fans out status changes.

Clients hold a websocket open, send ``ping`` every few seconds and optionally
``status`` messages; everyone in the workspace receives presence events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque

from aiohttp import WSMsgType, web

log = logging.getLogger("presence")

IDLE_AFTER = 120.0
CHECK_EVERY = 30.0
RECENT_EVENTS = 200
USER_STATUSES = ("online", "away", "dnd")


class PresenceHub:
    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = defaultdict(set)
        self._status: dict[str, dict[str, str]] = defaultdict(dict)
        self._last_seen: dict[tuple[str, str], float] = {}
        self._idle_checks: dict[int, asyncio.Task] = {}
        self._recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=RECENT_EVENTS))
        self._lock = asyncio.Lock()

    async def join(self, workspace: str, user: str, ws: web.WebSocketResponse) -> None:
        async with self._lock:
            self._sockets[workspace].add(ws)
            self._status[workspace][user] = "online"
            self._last_seen[(workspace, user)] = time.monotonic()
        self._idle_checks[id(ws)] = asyncio.create_task(self._idle_check(workspace, user))
        await self.publish(workspace, {"type": "presence", "user": user, "status": "online"})

    async def leave(self, workspace: str, user: str, ws: web.WebSocketResponse) -> None:
        async with self._lock:
            self._sockets[workspace].discard(ws)
            self._status[workspace].pop(user, None)
        await self.publish(workspace, {"type": "presence", "user": user, "status": "offline"})

    def touch(self, workspace: str, user: str) -> None:
        self._last_seen[(workspace, user)] = time.monotonic()

    async def set_status(self, workspace: str, user: str, status: str) -> None:
        async with self._lock:
            self._status[workspace][user] = status
        await self.publish(workspace, {"type": "presence", "user": user, "status": status})

    async def _idle_check(self, workspace: str, user: str) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY)
            seen = self._last_seen.get((workspace, user), 0.0)
            if time.monotonic() - seen < IDLE_AFTER:
                continue
            if self._status[workspace].get(user) == "online":
                self._status[workspace][user] = "away"
                await self.publish(workspace, {"type": "presence", "user": user, "status": "away"})

    async def publish(self, workspace: str, event: dict) -> None:
        event["ts"] = time.time()
        self._recent[workspace].append(event)
        payload = json.dumps(event)
        async with self._lock:
            for ws in list(self._sockets[workspace]):
                try:
                    await ws.send_str(payload)
                except ConnectionResetError:
                    self._sockets[workspace].discard(ws)

    def snapshot(self, workspace: str) -> dict:
        return {
            "members": dict(self._status.get(workspace, {})),
            "recent": list(self._recent.get(workspace, ())),
        }


async def ws_handler(request: web.Request) -> web.WebSocketResponse:
    hub: PresenceHub = request.app["hub"]
    workspace = request.match_info["workspace"]
    user = request["user_id"]
    ws = web.WebSocketResponse(heartbeat=CHECK_EVERY, receive_timeout=IDLE_AFTER * 2)
    await ws.prepare(request)
    await hub.join(workspace, user, ws)
    try:
        await ws.send_json({"type": "snapshot", **hub.snapshot(workspace)})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                kind = data.get("type")
                if kind == "ping":
                    hub.touch(workspace, user)
                elif kind == "status" and data.get("status") in USER_STATUSES:
                    await hub.set_status(workspace, user, data["status"])
            elif msg.type == WSMsgType.ERROR:
                log.info("socket error for %s/%s: %s", workspace, user, ws.exception())
                break
    finally:
        await hub.leave(workspace, user, ws)
    return ws


@web.middleware
async def auth(request: web.Request, handler):
    token = request.headers.get("Authorization", "").removeprefix("Bearer ")
    user = request.app["tokens"].get(token)
    if user is None:
        raise web.HTTPUnauthorized()
    request["user_id"] = user
    return await handler(request)


def make_app(tokens: dict[str, str]) -> web.Application:
    app = web.Application(middlewares=[auth])
    app["hub"] = PresenceHub()
    app["tokens"] = tokens
    app.router.add_get("/ws/{workspace}", ws_handler)
    return app
