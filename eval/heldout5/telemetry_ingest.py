"""IoT telemetry ingester for the edge gateway.

Subscribes to the devices' telemetry topics on the site's MQTT broker,
validates each reading against the JSON schema of its device type and stores
the metrics in the gateway's local SQLite database, which the uplink service
ships upstream every hour.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import aiomqtt
from jsonschema import Draft7Validator

log = logging.getLogger("telemetry")

BROKER = os.environ.get("MQTT_BROKER", "localhost")
BROKER_PORT = int(os.environ.get("MQTT_PORT", "1883"))
TOPIC = "sites/+/devices/+/telemetry"
SCHEMA_DIR = Path(os.environ.get("TELEMETRY_SCHEMAS", "/etc/telemetry/schemas"))
DB_PATH = Path(os.environ.get("TELEMETRY_DB", "/var/lib/telemetry/readings.db"))


class ReadingStore:
    """Readings table in the gateway's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(path)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            """
            CREATE TABLE IF NOT EXISTS readings (
                device_id TEXT NOT NULL,
                ts TEXT NOT NULL,
                metric TEXT NOT NULL,
                value REAL NOT NULL
            )
            """
        )
        self._conn.execute("CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts)")

    def insert(self, device_id: str, ts: str, metrics: dict[str, float]) -> None:
        rows = [(device_id, ts, name, float(value)) for name, value in metrics.items()]
        with self._conn:
            self._conn.executemany("INSERT INTO readings VALUES (?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._conn.close()


def validator_for(device_type: str) -> Draft7Validator:
    """The schema validator for a device type (e.g. `thermo-v2`)."""
    path = SCHEMA_DIR / f"{Path(device_type).name}.json"
    with path.open(encoding="utf-8") as fh:
        return Draft7Validator(json.load(fh))


class Ingester:
    def __init__(self, store: ReadingStore) -> None:
        self._store = store
        self.accepted = 0
        self.rejected = 0

    def _parse(self, topic: str, payload: bytes) -> tuple[str, str, dict[str, float]] | None:
        parts = topic.split("/")
        device_id = f"{parts[1]}/{parts[3]}"
        try:
            message = json.loads(payload)
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("dropping non-JSON message from %s", device_id)
            return None
        try:
            validator = validator_for(message.get("type", "unknown"))
        except FileNotFoundError:
            log.warning("no schema for device type %r (%s)", message.get("type"), device_id)
            return None
        error = next(iter(validator.iter_errors(message)), None)
        if error is not None:
            log.warning("invalid reading from %s: %s", device_id, error.message)
            return None
        ts = message.get("ts") or datetime.now(timezone.utc).isoformat()
        return device_id, ts, message["metrics"]

    async def handle(self, message: aiomqtt.Message) -> None:
        parsed = self._parse(str(message.topic), message.payload)
        if parsed is None:
            self.rejected += 1
            return
        self._store.insert(*parsed)
        self.accepted += 1

    async def run(self) -> None:
        """Consume telemetry for as long as the process lives, reconnecting when the broker drops us."""
        while True:
            try:
                async with aiomqtt.Client(BROKER, port=BROKER_PORT, keepalive=30, timeout=10) as client:
                    await client.subscribe(TOPIC, qos=1)
                    log.info("subscribed to %s on %s:%d", TOPIC, BROKER, BROKER_PORT)
                    async for message in client.messages:
                        await self.handle(message)
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost (%s); reconnecting", exc)


async def main() -> None:
    store = ReadingStore(DB_PATH)
    ingester = Ingester(store)
    consumer = asyncio.create_task(ingester.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        store.close()
        log.info("stopped: %d readings stored, %d rejected", ingester.accepted, ingester.rejected)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
