"""Live dashboard fan-out.

Browsers connect over WebSocket and join one or more rooms ("orders",
"inventory", "alerts:<team>"). Producers publish events into Redis pub/sub;
this process relays every event to all sockets in the matching room and
replays the room's recent events to late joiners.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import defaultdict

import redis.asyncio as aioredis
import websockets
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("fanout")

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
AUDIT_KEY = "fanout:audit"
JOIN_TIMEOUT = 10.0


class Hub:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.rooms: dict[str, set] = defaultdict(set)
        self.recent: dict[str, list[str]] = defaultdict(list)

    async def join(self, ws, room: str) -> None:
        self.rooms[room].add(ws)
        for payload in self.recent[room]:
            await ws.send(payload)

    def leave(self, ws) -> None:
        for room, members in list(self.rooms.items()):
            members.discard(ws)
            if not members:
                del self.rooms[room]

    async def _audit(self, room: str, payload: str) -> None:
        await self.redis.xadd(AUDIT_KEY, {"room": room, "payload": payload}, maxlen=100_000, approximate=True)

    async def publish(self, room: str, payload: str) -> None:
        self.recent[room].append(payload)
        asyncio.create_task(self._audit(room, payload))
        for ws in list(self.rooms.get(room, ())):
            try:
                await ws.send(payload)
            except ConnectionClosed:
                self.rooms[room].discard(ws)

    async def relay(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.psubscribe("events:*")
        try:
            async for message in pubsub.listen():
                if message["type"] != "pmessage":
                    continue
                channel = message["channel"].decode()
                room = channel.split(":", 1)[1]
                await self.publish(room, message["data"].decode())
        finally:
            await pubsub.aclose()


async def client_session(hub: Hub, ws) -> None:
    try:
        hello = json.loads(await asyncio.wait_for(ws.recv(), JOIN_TIMEOUT))
    except (asyncio.TimeoutError, ValueError):
        await ws.close(code=4000, reason="expected join message")
        return
    rooms = [r for r in hello.get("rooms", []) if isinstance(r, str)][:20]
    try:
        for room in rooms:
            await hub.join(ws, room)
        async for raw in ws:
            msg = json.loads(raw)
            if msg.get("op") == "join" and isinstance(msg.get("room"), str):
                await hub.join(ws, msg["room"])
            elif msg.get("op") == "ping":
                await ws.send(json.dumps({"op": "pong"}))
    except (ConnectionClosed, ValueError):
        pass
    finally:
        hub.leave(ws)


async def main() -> None:
    logging.basicConfig(level=logging.INFO)
    redis = aioredis.from_url(REDIS_URL, socket_connect_timeout=5, health_check_interval=30)
    hub = Hub(redis)
    relay = asyncio.create_task(hub.relay())

    async def handler(ws):
        await client_session(hub, ws)

    async with websockets.serve(handler, "0.0.0.0", int(os.environ.get("PORT", "8765")), ping_interval=20, max_size=64 * 1024):
        await relay


if __name__ == "__main__":
    asyncio.run(main())
