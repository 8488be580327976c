"""Ship application log lines to a central collector over TCP.

Application threads call `LogShipper.emit`; a background thread drains the local queue,
frames lines into batches and writes them to the collector. When the collector is down,
batches are spooled to disk and replayed on reconnect.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("shipper")

FORWARD_LEVELS = ("ERROR", "WARNING", "CRITICAL")


@dataclass(frozen=True)
class CollectorConfig:
    host: str
    port: int
    spool_dir: Path
    batch_size: int = 500
    flush_interval: float = 2.0


class LogShipper:
    def __init__(self, config: CollectorConfig, service: str) -> None:
        self.config = config
        self.service = service
        self._queue: queue.Queue[dict] = queue.Queue(maxsize=50_000)
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._dropped = 0
        self._thread = threading.Thread(target=self._drain, name="log-shipper", daemon=True)

    def start(self) -> None:
        self.config.spool_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def emit(self, level: str, message: str, **fields: object) -> None:
        record = {"ts": time.time(), "svc": self.service, "lvl": level, "msg": message, **fields}
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._dropped += 1
        if level in FORWARD_LEVELS:
            self.send_now([record])

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection((self.config.host, self.config.port))
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return self._sock

    def _frame(self, records: list[dict]) -> bytes:
        payload = b""
        for rec in records:
            line = json.dumps(rec, separators=(",", ":")).encode()
            payload += len(line).to_bytes(4, "big") + line
        return payload

    def send_now(self, records: list[dict]) -> None:
        """Write a batch to the collector, spooling it to disk on failure."""
        frame = self._frame(records)
        with self._send_lock:
            try:
                self._connect().sendall(frame)
            except OSError as exc:
                log.warning("collector unavailable (%s); spooling %d records", exc, len(records))
                self._reset()
                self._spool(frame)

    def _reset(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _spool(self, frame: bytes) -> None:
        path = self.config.spool_dir / f"{time.time_ns()}.bin"
        with open(path, "wb") as fh:
            fh.write(frame)

    def _replay_spool(self) -> None:
        for path in sorted(self.config.spool_dir.glob("*.bin")):
            with open(path, "rb") as fh:
                frame = fh.read()
            with self._send_lock:
                try:
                    self._connect().sendall(frame)
                except OSError:
                    self._reset()
                    return
            os.unlink(path)

    def _drain(self) -> None:
        batch: list[dict] = []
        deadline = time.monotonic() + self.config.flush_interval
        while not self._stop.is_set():
            try:
                batch.append(self._queue.get(timeout=0.5))
            except queue.Empty:
                pass
            if len(batch) >= self.config.batch_size or (batch and time.monotonic() >= deadline):
                self.send_now(batch)
                batch = []
                deadline = time.monotonic() + self.config.flush_interval
                self._replay_spool()
        if batch:
            self.send_now(batch)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._reset()
        if self._dropped:
            log.warning("dropped %d log records while the queue was full", self._dropped)
