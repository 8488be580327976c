"""A small durable job queue: jobs live in SQLite, worker threads claim and run them."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    callback_url TEXT
)
"""


class JobQueue:
    def __init__(self, db_path: str, handlers: dict[str, Callable[[dict], Any]]) -> None:
        self.db_path = db_path
        self.handlers = handlers
        self._claim_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self.recent = deque(maxlen=100)
        with sqlite3.connect(db_path) as conn:
            conn.execute(SCHEMA)

    def enqueue(self, kind: str, payload: dict, callback_url: str | None = None) -> int:
        with sqlite3.connect(self.db_path) as conn:
            cur = conn.execute(
                "INSERT INTO jobs (kind, payload, callback_url) VALUES (?, ?, ?)",
                (kind, json.dumps(payload), callback_url),
            )
            return cur.lastrowid

    def _claim(self) -> tuple[int, str, dict, str | None] | None:
        conn = sqlite3.connect(self.db_path, timeout=5)
        row = conn.execute(
            "SELECT id, kind, payload, callback_url FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE jobs SET state = 'running', attempts = attempts + 1 WHERE id = ?", (row[0],))
        conn.commit()
        conn.close()
        return row[0], row[1], json.loads(row[2]), row[3]

    def _finish(self, job_id: int, state: str) -> None:
        with sqlite3.connect(self.db_path, timeout=5) as conn:
            conn.execute("UPDATE jobs SET state = ? WHERE id = ?", (state, job_id))

    def _notify(self, url: str, job_id: int, state: str) -> None:
        body = json.dumps({"job": job_id, "state": state}).encode()
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=10).close()

    def run_one(self) -> bool:
        with self._claim_lock:
            claimed = self._claim()
            if claimed is None:
                return False
            job_id, kind, payload, callback_url = claimed
            if callback_url:
                self._notify(callback_url, job_id, "running")
        try:
            self.handlers[kind](payload)
            state = "done"
        except Exception:
            log.exception("job %s (%s) failed", job_id, kind)
            state = "failed"
        self._finish(job_id, state)
        with self._stats_lock:
            self.recent.append((job_id, state, time.time()))
        return True

    def worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self.run_one():
                stop.wait(0.5)


def start_workers(queue: JobQueue, count: int = 4) -> tuple[threading.Event, list[threading.Thread]]:
    stop = threading.Event()
    threads = [threading.Thread(target=queue.worker, args=(stop,), daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    return stop, threads
