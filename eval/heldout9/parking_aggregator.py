"""Aggregates parking-bay sensor packets into per-zone occupancy.

Bay sensors send a small JSON datagram on every change and a heartbeat every
60 seconds. The aggregator keeps the latest reading per bay, stores every
reading for the planning team, and publishes zone occupancy to the street
signs every 15 seconds.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

log = logging.getLogger("parking")

LISTEN_ADDR = ("0.0.0.0", 5684)
REPORT_EVERY = 15.0
LOW_BATTERY_MV = 2600


@dataclass
class Zone:
    zone_id: str
    name: str
    sensors: list[str]
    capacity: int


@dataclass
class Reading:
    sensor_id: str
    occupied: bool
    battery_mv: int
    at: float


class ReadingStore(Protocol):
    Error: type[Exception]

    def insert_reading(self, reading: Reading) -> None: ...


def parse_packet(data: bytes) -> Reading | None:
    try:
        doc = json.loads(data)
        return Reading(str(doc["id"]), bool(doc["occ"]), int(doc.get("bat", 0)),
                       float(doc.get("ts") or time.time()))
    except (ValueError, KeyError, TypeError):
        return None


class OccupancyAggregator:
    def __init__(self, zones: list[Zone], store: ReadingStore) -> None:
        self.zones = zones
        self.store = store
        self.bays: dict[str, Reading] = {}
        self.pending: queue.Queue[Reading] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.settimeout(1.0)

    def zone_of(self, sensor_id: str) -> Zone | None:
        for zone in self.zones:
            if sensor_id in zone.sensors:
                return zone
        return None

    def _receive_loop(self) -> None:
        self._sock.bind(LISTEN_ADDR)
        while not self._stop.is_set():
            try:
                data, _addr = self._sock.recvfrom(2048)
            except socket.timeout:
                continue
            reading = parse_packet(data)
            if reading is None or self.zone_of(reading.sensor_id) is None:
                continue
            self.bays[reading.sensor_id] = reading
            self.pending.put(reading)

    def _writer_loop(self) -> None:
        while not self._stop.is_set() or not self.pending.empty():
            try:
                reading = self.pending.get(timeout=1.0)
            except queue.Empty:
                continue
            try:
                self.store.insert_reading(reading)
            except self.store.Error as exc:
                log.warning("store unavailable (%s), will retry", exc)
                self.pending.put(reading)
                time.sleep(1.0)

    def snapshot(self) -> dict[str, dict[str, object]]:
        occupied: dict[str, int] = {z.zone_id: 0 for z in self.zones}
        low_battery: dict[str, list[str]] = {z.zone_id: [] for z in self.zones}
        for sensor_id, reading in self.bays.items():
            zone = self.zone_of(sensor_id)
            if zone is None:
                continue
            if reading.occupied:
                occupied[zone.zone_id] += 1
            if 0 < reading.battery_mv < LOW_BATTERY_MV:
                low_battery[zone.zone_id].append(sensor_id)
        return {
            z.zone_id: {"name": z.name, "free": max(0, z.capacity - occupied[z.zone_id]),
                        "low_battery": low_battery[z.zone_id]}
            for z in self.zones
        }

    def _report_loop(self, publish: Callable[[dict], None]) -> None:
        while not self._stop.wait(REPORT_EVERY):
            publish(self.snapshot())

    def start(self, publish: Callable[[dict], None]) -> None:
        targets = [(self._receive_loop, ()), (self._writer_loop, ()), (self._report_loop, (publish,))]
        for target, args in targets:
            thread = threading.Thread(target=target, args=args, name=target.__name__, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._sock.close()
