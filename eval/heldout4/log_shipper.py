"""Follow application log files and ship new lines to the central collector over TCP.

Lines are sent as newline-delimited JSON records in batches. Files are followed across
logrotate's rename-and-create: when the path starts pointing at a new inode, the rest of the
old file is read and the new file is followed from its start.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any, TextIO

log = logging.getLogger("shipper")

POLL_INTERVAL_S = 0.5
FLUSH_INTERVAL_S = 2.0
BATCH_SIZE = 500


class FileFollower:
    """Returns the complete lines appended to `path` since the last call."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fh: TextIO | None = None
        self._inode: int | None = None
        self._partial = ""

    def _open(self) -> None:
        self._fh = open(self.path, encoding="utf-8", errors="replace")
        self._inode = os.fstat(self._fh.fileno()).st_ino

    def _complete_lines(self, text: str) -> list[str]:
        text = self._partial + text
        lines = text.split("\n")
        self._partial = lines.pop()
        return lines

    def read_new_lines(self) -> list[str]:
        if self._fh is None:
            try:
                self._open()
            except FileNotFoundError:
                return []
            self._fh.seek(0, os.SEEK_END)
        lines = self._complete_lines(self._fh.read())
        try:
            rotated = os.stat(self.path).st_ino != self._inode
        except FileNotFoundError:
            rotated = False
        if rotated:
            self._open()
            lines += self._complete_lines(self._fh.read())
        return lines

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class Shipper:
    """One follower thread per file, plus a flusher that sends the shared buffer."""

    def __init__(self, host: str, port: int, paths: list[str], hostname: str | None = None) -> None:
        self.address = (host, port)
        self.paths = paths
        self.hostname = hostname or socket.gethostname()
        self._buffer: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def _follow(self, path: str) -> None:
        follower = FileFollower(path)
        try:
            while not self._stop.is_set():
                lines = follower.read_new_lines()
                if lines:
                    records = [{"host": self.hostname, "file": path, "ts": time.time(), "line": ln} for ln in lines]
                    with self._lock:
                        self._buffer.extend(records)
                else:
                    time.sleep(POLL_INTERVAL_S)
        finally:
            follower.close()

    def _send(self, batch: list[dict[str, Any]]) -> None:
        if self._sock is None:
            self._sock = socket.create_connection(self.address, timeout=5)
        payload = "".join(json.dumps(record) + "\n" for record in batch).encode("utf-8")
        try:
            self._sock.sendall(payload)
        except OSError:
            self._sock.close()
            self._sock = None
            raise

    def flush(self) -> bool:
        """Send one batch; True when a full batch went out and more may be waiting."""
        with self._lock:
            batch, self._buffer = self._buffer[:BATCH_SIZE], self._buffer[BATCH_SIZE:]
            if not batch:
                return False
            try:
                self._send(batch)
            except OSError as exc:
                log.warning("collector %s:%d unavailable (%s), keeping %d records", *self.address, exc, len(batch))
                self._buffer[:0] = batch
                return False
        return len(batch) == BATCH_SIZE

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_INTERVAL_S):
            while self.flush():
                pass
        self.flush()

    def start(self) -> None:
        for path in self.paths:
            t = threading.Thread(target=self._follow, args=(path,), name=f"follow:{path}", daemon=True)
            t.start()
            self._threads.append(t)
        flusher = threading.Thread(target=self._flush_loop, name="flusher", daemon=True)
        flusher.start()
        self._threads.append(flusher)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        if self._sock is not None:
            self._sock.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    paths = os.environ.get("SHIP_FILES", "/var/log/app/app.log:/var/log/app/worker.log").split(":")
    shipper = Shipper(os.environ.get("COLLECTOR_HOST", "logs.internal"), 5170, paths)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    shipper.start()
    stopping.wait()
    shipper.stop()


if __name__ == "__main__":
    main()
