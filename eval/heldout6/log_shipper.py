"""Tails application log files and forwards them to the central collector over TCP."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path

import requests

log = logging.getLogger("shipper")

BATCH_LINES = 500
FLUSH_SECONDS = 2.0


class Follower(threading.Thread):
    def __init__(self, path: Path, sink: "Shipper", stop: threading.Event) -> None:
        super().__init__(name=f"follow-{path.name}")
        self.path = path
        self.sink = sink
        self.stop = stop

    def run(self) -> None:
        inode = None
        fh = None
        try:
            while not self.stop.is_set():
                try:
                    st = os.stat(self.path)
                except FileNotFoundError:
                    time.sleep(1)
                    continue
                if st.st_ino != inode:
                    if fh:
                        fh.close()
                    fh = open(self.path, "r", encoding="utf-8", errors="replace")
                    if inode is None:
                        fh.seek(0, os.SEEK_END)
                    inode = st.st_ino
                line = fh.readline()
                if not line:
                    time.sleep(0.2)
                    continue
                self.sink.add(self.path.name, line.rstrip("\n"))
        finally:
            if fh:
                fh.close()


class Shipper:
    def __init__(self, host: str, port: int, health_url: str) -> None:
        self.host = host
        self.port = port
        self.health_url = health_url
        self.buffer: list[dict] = []
        self.sock: socket.socket | None = None
        self.stop = threading.Event()
        self.sent = 0
        self._send_lock = threading.Lock()
        self._last_flush = time.monotonic()

    def add(self, source: str, line: str) -> None:
        self.buffer.append({"src": source, "msg": line, "ts": time.time()})
        if len(self.buffer) >= BATCH_LINES:
            batch, self.buffer = self.buffer, []
            self._send(batch)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock

    def _send(self, batch: list[dict]) -> None:
        if not batch:
            return
        payload = "".join(json.dumps(rec) + "\n" for rec in batch).encode()
        with self._send_lock:
            for attempt in range(3):
                try:
                    if self.sock is None:
                        self.sock = self._connect()
                    self.sock.sendall(payload)
                    self.sent += len(batch)
                    self._last_flush = time.monotonic()
                    return
                except OSError as exc:
                    log.warning("send failed (attempt %d): %s", attempt + 1, exc)
                    if self.sock is not None:
                        self.sock.close()
                        self.sock = None
                    time.sleep(2 ** attempt)
            log.error("dropping %d lines", len(batch))

    def collector_healthy(self) -> bool:
        try:
            return requests.get(self.health_url, timeout=5).ok
        except requests.RequestException:
            return False

    def _ticker(self) -> None:
        while not self.stop.wait(FLUSH_SECONDS):
            if time.monotonic() - self._last_flush >= FLUSH_SECONDS:
                batch, self.buffer = self.buffer, []
                self._send(batch)

    def run(self, paths: list[Path]) -> list[threading.Thread]:
        threads: list[threading.Thread] = [Follower(p, self, self.stop) for p in paths]
        threads.append(threading.Thread(target=self._ticker, name="ticker"))
        for t in threads:
            t.start()
        return threads

    def shutdown(self) -> None:
        self.stop.set()
        batch, self.buffer = self.buffer, []
        self._send(batch)
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    host = os.environ.get("COLLECTOR_HOST", "collector.internal")
    port = int(os.environ.get("COLLECTOR_PORT", "5170"))
    shipper = Shipper(host, port, f"http://{host}:8080/healthz")
    paths = [Path(p) for p in os.environ.get("SHIP_PATHS", "/var/log/app/app.log").split(",")]
    shipper.run(paths)
    try:
        while True:
            time.sleep(30)
            if not shipper.collector_healthy():
                log.warning("collector unhealthy, %d lines sent so far", shipper.sent)
    except KeyboardInterrupt:
        shipper.shutdown()


if __name__ == "__main__":
    main()
