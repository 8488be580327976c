"""Relay the market-data ticker feed to browser clients over websockets.

The relay keeps one TCP connection to the upstream feed (newline-delimited
JSON) and fans every tick out to the connected websocket clients. A client
that connects late first receives the ticks of the current session so that
its charts can be drawn.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time

import websockets
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("ticker_relay")

FEED = ("feed.internal", 7070)
AUTH_TIMEOUT = 5.0
FEED_IDLE_TIMEOUT = 30.0


class Relay:
    def __init__(self) -> None:
        self.clients: set = set()
        self.session_ticks: list[str] = []
        self._lock = asyncio.Lock()
        self.stats = {"ticks": 0, "reconnects": 0}

    async def broadcast(self, raw: str) -> None:
        self.session_ticks.append(raw)
        self.stats["ticks"] += 1
        async with self._lock:
            for ws in list(self.clients):
                try:
                    await ws.send(raw)
                except ConnectionClosed:
                    continue

    async def _authenticate(self, ws) -> str | None:
        try:
            hello = json.loads(await asyncio.wait_for(ws.recv(), timeout=AUTH_TIMEOUT))
        except (asyncio.TimeoutError, ValueError):
            return None
        token = hello.get("token")
        if not isinstance(token, str) or len(token) < 20:
            return None
        return token[:8]

    async def handle_client(self, ws) -> None:
        who = await self._authenticate(ws)
        if who is None:
            await ws.close(code=4401, reason="unauthorised")
            return
        log.info("client %s connected", who)
        async with self._lock:
            for raw in self.session_ticks:
                await ws.send(raw)
            self.clients.add(ws)
        async for message in ws:
            if message == "ping":
                await ws.send(json.dumps({"pong": time.time()}))
        self.clients.discard(ws)
        log.info("client %s left", who)

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout=FEED_IDLE_TIMEOUT)
            if not line:
                raise ConnectionError("feed closed the connection")
            raw = line.decode().strip()
            if raw:
                await self.broadcast(raw)

    async def follow_feed(self) -> None:
        backoff = 1.0
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(*FEED), timeout=10
                )
            except (OSError, asyncio.TimeoutError) as exc:
                log.warning("feed connect failed: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            try:
                await self._pump(reader)
            except (ConnectionError, asyncio.TimeoutError) as exc:
                log.warning("feed lost: %s", exc)
                self.stats["reconnects"] += 1
            finally:
                writer.close()
                await writer.wait_closed()


async def main(host: str = "0.0.0.0", port: int = 8765) -> None:
    relay = Relay()
    feed = asyncio.create_task(relay.follow_feed())
    async with websockets.serve(relay.handle_client, host, port, max_queue=64):
        try:
            await feed
        finally:
            feed.cancel()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
