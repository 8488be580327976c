"""Audit log archiver for the admin console.

Admin actions are written to the `audit_events` table in the console's SQLite
database. Once a day the archiver moves every event older than the retention
window into a gzipped JSONL file per day, then deletes it from the live table.
The admin UI asks `was_archived` when showing old event links, and `/healthz`
reads `stats()`.
"""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

log = logging.getLogger("console.audit")

RETENTION_DAYS = 90
EXPORT_COLUMNS = ("id", "occurred_at", "actor", "action", "target", "details")


@dataclass
class ArchiveStats:
    runs: int = 0
    events_archived: int = 0
    last_run_at: float = 0.0
    last_error: str | None = None
    days: list[str] = field(default_factory=list)


class AuditArchiver:
    def __init__(self, db_path: Path, archive_dir: Path) -> None:
        self.db_path = db_path
        self.archive_dir = archive_dir
        self.archive_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._stats = ArchiveStats()
        self._archived_ids: set[int] = set()
        self._timer: threading.Timer | None = None

    def _day_file(self, day: date) -> Path:
        return self.archive_dir / f"audit-{day.isoformat()}.jsonl.gz"

    def archive_day(self, day: date) -> int:
        with self._lock:
            conn = sqlite3.connect(self.db_path, timeout=30)
            rows = conn.execute(
                f"SELECT {', '.join(EXPORT_COLUMNS)} FROM audit_events WHERE date(occurred_at) = ? ORDER BY id",
                (day.isoformat(),),
            ).fetchall()
            if not rows:
                return 0
            path = self._day_file(day)
            with gzip.open(path, "at", encoding="utf-8") as gz:
                for row in rows:
                    record = dict(zip(EXPORT_COLUMNS, row))
                    record["details"] = json.loads(record["details"] or "{}")
                    gz.write(json.dumps(record, separators=(",", ":")) + "\n")
                    self._archived_ids.add(record["id"])
            conn.execute("DELETE FROM audit_events WHERE date(occurred_at) = ?", (day.isoformat(),))
            conn.commit()
            conn.close()
            self._stats.events_archived += len(rows)
            self._stats.days = (self._stats.days + [day.isoformat()])[-30:]
            return len(rows)

    def run_once(self) -> int:
        cutoff = date.today() - timedelta(days=RETENTION_DAYS)
        total = 0
        try:
            for offset in range(7):
                total += self.archive_day(cutoff - timedelta(days=offset))
        except (sqlite3.Error, OSError) as exc:
            log.exception("audit archive failed")
            with self._lock:
                self._stats.last_error = str(exc)
        with self._lock:
            self._stats.runs += 1
            self._stats.last_run_at = time.time()
        log.info("archived %d audit events", total)
        return total

    def was_archived(self, event_id: int) -> bool:
        with self._lock:
            return event_id in self._archived_ids

    def stats(self) -> dict[str, object]:
        with self._lock:
            s = self._stats
            return {
                "runs": s.runs,
                "events_archived": s.events_archived,
                "last_run_at": s.last_run_at,
                "last_error": s.last_error,
                "recent_days": list(s.days),
            }

    def _schedule(self, delay: float) -> None:
        self._timer = threading.Timer(delay, self._tick)
        self._timer.daemon = True
        self._timer.start()

    def _tick(self) -> None:
        try:
            self.run_once()
        finally:
            self._schedule(24 * 3600)

    def start(self) -> None:
        self._schedule(60)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
