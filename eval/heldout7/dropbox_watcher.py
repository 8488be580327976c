"""Watch the scanner drop folder and forward new or changed files.

A background thread polls the folder, compares each file with what it saw on
the previous pass and calls the registered handlers for every change. The
status endpoint of the ingest daemon calls `snapshot()` to report progress.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

log = logging.getLogger("dropbox_watcher")


@dataclass
class Change:
    path: Path
    kind: str
    digest: str
    seen_at: float = field(default_factory=time.time)


Handler = Callable[[Change], None]


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=20)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(256 * 1024), b""):
            h.update(block)
    return h.hexdigest()


class DropWatcher:
    def __init__(self, root: Path, interval: float = 2.0):
        self.root = root
        self.interval = interval
        self._known: dict[Path, str] = {}
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.history: list[Change] = []
        self.errors: deque[str] = deque(maxlen=200)

    def on_change(self, handler: Handler) -> None:
        with self._lock:
            self._handlers.append(handler)

    def _scan(self) -> list[Change]:
        current: dict[Path, str] = {}
        for entry in os.scandir(self.root):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                current[path] = file_digest(path)
            except FileNotFoundError:
                continue
        changes = [
            Change(p, "created" if p not in self._known else "modified", d)
            for p, d in current.items()
            if self._known.get(p) != d
        ]
        changes += [Change(p, "deleted", "") for p in self._known.keys() - current.keys()]
        self._known = current
        return changes

    def poll_once(self) -> int:
        changes = self._scan()
        with self._lock:
            for change in changes:
                self.history.append(change)
                for handler in self._handlers:
                    try:
                        handler(change)
                    except Exception as exc:
                        self.errors.append(f"{change.path.name}: {exc!r}")
                        log.exception("handler failed for %s", change.path)
        return len(changes)

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "tracked": len(self._known),
                "changes": len(self.history),
                "last": [str(c.path.name) for c in self.history[-10:]],
                "errors": list(self.errors)[-10:],
            }

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except OSError as exc:
                self.errors.append(repr(exc))
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drop-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval * 2)


def uploader(host: str, timeout: float = 15.0) -> Handler:
    def upload(change: Change) -> None:
        if change.kind == "deleted":
            return
        conn = http.client.HTTPConnection(host, timeout=timeout)
        try:
            with change.path.open("rb") as body:
                conn.request(
                    "PUT",
                    f"/ingest/{change.path.name}",
                    body=body,
                    headers={"X-Digest": change.digest},
                )
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 400:
                raise RuntimeError(f"ingest answered {resp.status}")
        finally:
            conn.close()

    return upload
