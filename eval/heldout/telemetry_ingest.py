"""Telemetry ingester for field sensors.

Sensors open a TCP connection and stream newline-delimited JSON readings. Each reading is
validated, kept in a short per-device window for the live dashboard, and persisted to the
`readings` table in TimescaleDB.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import asyncpg

log = logging.getLogger("telemetry")

WINDOW = 120
DB_RETRY_DELAYS = (0.5, 1, 2, 5, 10)


@dataclass(frozen=True)
class Reading:
    device_id: str
    metric: str
    value: float
    ts: float


def parse(line: bytes) -> list[Reading]:
    msg = json.loads(line)
    device = str(msg["device"])
    ts = float(msg.get("ts", time.time()))
    return [Reading(device, metric, float(v), ts) for metric, v in msg["metrics"].items()]


class Ingester:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.pool: asyncpg.Pool | None = None
        self.live: dict[str, deque[Reading]] = defaultdict(lambda: deque(maxlen=WINDOW))
        self.rejected = 0

    async def connect_db(self) -> asyncpg.Pool:
        for attempt, delay in enumerate(DB_RETRY_DELAYS, start=1):
            try:
                self.pool = await asyncpg.create_pool(self.dsn, min_size=2, max_size=10, timeout=5)
                return self.pool
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("database unavailable (attempt %d): %s", attempt, exc)
                await asyncio.sleep(delay)
        raise RuntimeError("could not reach the telemetry database")

    async def _insert(self, readings: list[Reading]) -> None:
        assert self.pool is not None
        conn = await asyncio.wait_for(self.pool.acquire(), timeout=5)
        try:
            async with conn.transaction():
                for r in readings:
                    await conn.execute(
                        "INSERT INTO readings (device_id, metric, value, ts) "
                        "VALUES ($1, $2, $3, to_timestamp($4))",
                        r.device_id, r.metric, r.value, r.ts,
                    )
        finally:
            await self.pool.release(conn)

    async def store(self, readings: list[Reading]) -> None:
        for delay in DB_RETRY_DELAYS:
            try:
                await self._insert(readings)
                return
            except (OSError, asyncio.TimeoutError, asyncpg.InterfaceError) as exc:
                log.warning("insert of %d readings failed, retrying in %ss: %s", len(readings), delay, exc)
                time.sleep(delay)
        log.error("dropping %d readings after repeated database errors", len(readings))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        log.info("sensor connected from %s", peer)
        pending: list[Reading] = []
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    batch = parse(line)
                except (ValueError, KeyError, TypeError):
                    self.rejected += 1
                    continue
                for r in batch:
                    self.live[r.device_id].append(r)
                pending.extend(batch)
                if len(pending) >= 200:
                    await self.store(pending)
                    pending = []
            if pending:
                await self.store(pending)
        finally:
            writer.close()
            await writer.wait_closed()
            log.info("sensor %s disconnected", peer)

    async def serve(self, host: str = "0.0.0.0", port: int = 7300) -> None:
        if self.pool is None:
            await self.connect_db()
        server = await asyncio.start_server(self.handle, host, port)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(Ingester("postgresql://telemetry@localhost/telemetry").serve())
