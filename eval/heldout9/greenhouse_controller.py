"""Irrigation controller for the greenhouse zones.

Soil probes report in batches through the gateway. For each reading the
controller compares moisture with the zone's settings (kept in Redis so the
growers can change them from the dashboard), waters dry zones, keeps the
daily water total for the site and raises alerts for out-of-range readings.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis

log = logging.getLogger("greenhouse")

ALERT_CHANNEL = "gh:alerts"
DEFAULTS = {"min_moisture": 28.0, "max_temp_c": 34.0, "water_lpm": 6.0, "run_seconds": 90.0}


@dataclass
class SoilReading:
    zone: str
    probe: str
    moisture: float
    temp_c: float
    at: float


class Valves(Protocol):
    async def open(self, zone: str) -> None: ...
    async def close(self, zone: str) -> None: ...


class IrrigationController:
    def __init__(self, r: redis.Redis, valves: Valves) -> None:
        self.r = r
        self.valves = valves
        self._watering: set[str] = set()
        self._alert_tasks: list[asyncio.Task] = []

    async def zone_settings(self, zone: str) -> dict[str, float]:
        raw = await self.r.hgetall(f"gh:zone:{zone}")
        settings = dict(DEFAULTS)
        settings.update({k.decode(): float(v) for k, v in raw.items()})
        return settings

    async def _add_site_water(self, litres: float) -> None:
        key = f"gh:water:{time.strftime('%Y-%m-%d')}"
        current = await self.r.get(key)
        total = float(current or 0.0) + litres
        await self.r.set(key, f"{total:.2f}", ex=40 * 86400)

    async def _publish_alert(self, reading: SoilReading, text: str) -> None:
        payload = {"zone": reading.zone, "probe": reading.probe, "text": text, "at": reading.at}
        try:
            await self.r.publish(ALERT_CHANNEL, json.dumps(payload))
        except redis.RedisError:
            log.exception("could not publish alert for %s", reading.zone)

    def _alert(self, reading: SoilReading, text: str) -> None:
        self._alert_tasks.append(asyncio.create_task(self._publish_alert(reading, text)))

    async def _irrigate(self, zone: str, settings: dict[str, float]) -> None:
        if zone in self._watering:
            return
        self._watering.add(zone)
        try:
            await self.valves.open(zone)
            try:
                await asyncio.sleep(settings["run_seconds"])
            finally:
                await self.valves.close(zone)
            await self._add_site_water(settings["water_lpm"] * settings["run_seconds"] / 60.0)
        finally:
            self._watering.discard(zone)

    async def handle_batch(self, readings: list[SoilReading]) -> list[str]:
        """Check one batch from the gateway; the zones that were watered."""
        dry: dict[str, dict[str, float]] = {}
        for reading in readings:
            settings = await self.zone_settings(reading.zone)
            if reading.temp_c > settings["max_temp_c"]:
                self._alert(reading, f"temperature {reading.temp_c:.1f} C")
            if not 0.0 <= reading.moisture <= 100.0:
                self._alert(reading, f"probe fault, moisture {reading.moisture}")
            elif reading.moisture < settings["min_moisture"]:
                dry[reading.zone] = settings
        await asyncio.gather(*(self._irrigate(zone, s) for zone, s in dry.items()))
        return sorted(dry)

    async def handle_batch_logged(self, readings: list[SoilReading]) -> None:
        try:
            watered = await self.handle_batch(readings)
        except (redis.RedisError, OSError, ValueError):
            log.exception("batch of %d readings failed", len(readings))
        else:
            log.info("batch of %d readings, watered %s", len(readings), watered or "none")

    async def water_now(self, zone: str) -> None:
        """Manual watering from the dashboard."""
        await self._irrigate(zone, await self.zone_settings(zone))

    async def site_water_today(self) -> float:
        value = await self.r.get(f"gh:water:{time.strftime('%Y-%m-%d')}")
        return float(value or 0.0)


async def serve(gateway_batches: asyncio.Queue[list[SoilReading]], valves: Valves) -> None:
    r = redis.Redis(host="redis.greenhouse.lan", socket_timeout=5, socket_connect_timeout=5)
    controller = IrrigationController(r, valves)
    try:
        async with asyncio.TaskGroup() as group:
            while True:
                batch = await gateway_batches.get()
                group.create_task(controller.handle_batch_logged(batch))
    finally:
        await r.aclose()
