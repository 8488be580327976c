"""Rolls raw samples up into one-minute aggregates for the dashboards.

The rollup thread runs every minute; operators can also trigger a backfill for
a time range through the admin API, which calls :meth:`Rollup.backfill` from
the request thread.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time

log = logging.getLogger("rollup")

PERCENTILES = (50, 90, 99)
SMOOTHING_WINDOW = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS rollups (
    name TEXT NOT NULL, ts INTEGER NOT NULL, count INTEGER NOT NULL, mean REAL NOT NULL,
    p50 REAL, p90 REAL, p99 REAL, PRIMARY KEY (name, ts)
)
"""


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return math.nan
    k = (len(sorted_values) - 1) * p / 100
    lo, hi = math.floor(k), math.ceil(k)
    if lo == hi:
        return sorted_values[int(k)]
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


class Rollup:
    def __init__(self, db_path: str) -> None:
        self._conn = sqlite3.connect(db_path, timeout=10, check_same_thread=False)
        self._conn.execute(SCHEMA)
        self._run_lock = threading.Lock()
        self._stop = threading.Event()

    def metric_names(self, start: int, end: int) -> list[str]:
        cur = self._conn.execute("SELECT DISTINCT name FROM samples WHERE ts >= ? AND ts < ?", (start, end))
        return [r[0] for r in cur]

    def rollup_minute(self, minute: int) -> int:
        self._run_lock.acquire()
        names = self.metric_names(minute, minute + 60)
        if not names:
            log.debug("no samples in minute %d", minute)
            return 0
        rows = []
        for name in names:
            cur = self._conn.execute(
                "SELECT value FROM samples WHERE name = ? AND ts >= ? AND ts < ?",
                (name, minute, minute + 60),
            )
            values = sorted(v for (v,) in cur)
            rows.append(
                (name, minute, len(values), sum(values) / len(values), *(percentile(values, p) for p in PERCENTILES))
            )
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO rollups VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self._run_lock.release()
        return len(rows)

    def backfill(self, start: int, end: int) -> int:
        total = 0
        for minute in range(start - start % 60, end, 60):
            total += self.rollup_minute(minute)
        return total

    def smoothed(self, name: str, start: int, end: int) -> list[tuple[int, float]]:
        cur = self._conn.execute(
            "SELECT ts, mean FROM rollups WHERE name = ? AND ts BETWEEN ? AND ? ORDER BY ts",
            (name, start, end),
        )
        window: list[float] = []
        out = []
        for ts, mean in cur:
            window.append(mean)
            if len(window) > SMOOTHING_WINDOW:
                window.pop(0)
            out.append((ts, sum(window) / len(window)))
        return out

    def aligned(self, names: list[str], start: int, end: int) -> list[dict]:
        """Several series on one shared time axis; missing points are None."""
        series = {name: self.smoothed(name, start, end) for name in names}
        axis = sorted({ts for points in series.values() for ts, _ in points})
        table = []
        for ts in axis:
            row: dict = {"ts": ts}
            for name, points in series.items():
                row[name] = next((v for t, v in points if t == ts), None)
            table.append(row)
        return table

    def run_forever(self) -> None:
        while not self._stop.is_set():
            minute = int(time.time()) // 60 * 60 - 60
            try:
                n = self.rollup_minute(minute)
                log.info("rolled up %d metrics for minute %d", n, minute)
            except sqlite3.Error:
                log.exception("rollup of minute %d failed", minute)
            self._stop.wait(60 - time.time() % 60 + 1)

    def stop(self) -> None:
        self._stop.set()
