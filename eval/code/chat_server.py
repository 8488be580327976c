"""A line-based chat server: clients join a room, every message is relayed to the room."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_LINE = 4096


@dataclass
class Client:
    name: str
    room: str
    writer: asyncio.StreamWriter


@dataclass
class Room:
    name: str
    members: dict[str, Client] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


class ChatServer:
    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}
        self._rooms_lock = threading.Lock()

    def room(self, name: str) -> Room:
        with self._rooms_lock:
            return self.rooms.setdefault(name, Room(name))

    async def _send(self, client: Client, message: dict) -> None:
        client.writer.write((json.dumps(message) + "\n").encode())
        await client.writer.drain()

    async def broadcast(self, room: Room, message: dict) -> None:
        room.history.append(message)
        with self._rooms_lock:
            for client in list(room.members.values()):
                try:
                    await self._send(client, message)
                except ConnectionError:
                    room.members.pop(client.name, None)

    async def handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Client:
        writer.write(b'{"hello": "name?"}\n')
        await writer.drain()
        name = (await reader.readline()).decode().strip()[:32]
        writer.write(b'{"hello": "room?"}\n')
        await writer.drain()
        room = (await reader.readline()).decode().strip()[:32] or "lobby"
        return Client(name or f"guest-{id(writer) % 10000}", room, writer)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = await self.handshake(reader, writer)
        room = self.room(client.room)
        room.members[client.name] = client
        for past in room.history[-20:]:
            await self._send(client, past)
        await self.broadcast(room, {"from": "server", "text": f"{client.name} joined", "ts": time.time()})
        try:
            while line := await reader.readline():
                if len(line) > MAX_LINE:
                    continue
                text = line.decode(errors="replace").strip()
                if text:
                    await self.broadcast(room, {"from": client.name, "text": text, "ts": time.time()})
        finally:
            room.members.pop(client.name, None)
            writer.close()
            await writer.wait_closed()
            await self.broadcast(room, {"from": "server", "text": f"{client.name} left", "ts": time.time()})


async def main(host: str = "127.0.0.1", port: int = 7000) -> None:
    server = ChatServer()
    srv = await asyncio.start_server(server.handle, host, port)
    log.info("chat on %s:%s", host, port)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
