"""Interval job runner for the ops box.

Jobs are declared in a JSON file and executed as plain commands (no shell).
The last result of every job is written to a status file that the dashboard
reads, and optionally pushed to the status service.
"""
from __future__ import annotations

import heapq
import json
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import requests

log = logging.getLogger("scheduler")

OUTPUT_TAIL = 4000


@dataclass(order=True)
class ScheduledJob:
    next_run: float
    name: str = field(compare=False)
    command: str = field(compare=False)
    interval: float = field(compare=False)
    cwd: str | None = field(default=None, compare=False)


@dataclass
class JobResult:
    name: str
    returncode: int
    started: float
    finished: float
    output: str


class Scheduler:
    def __init__(self, jobs_file: Path, status_path: Path, status_url: str | None = None):
        self.jobs_file = jobs_file
        self.status_path = status_path
        self.status_url = status_url
        self._heap: list[ScheduledJob] = []
        self._lock = threading.Lock()
        self._results: dict[str, JobResult] = {}
        self._running: set[str] = set()
        self._stop = threading.Event()

    def load(self) -> None:
        spec = json.loads(self.jobs_file.read_text())
        now = time.time()
        jobs = [
            ScheduledJob(now + j.get("delay", 0), j["name"], j["command"], float(j["interval"]), j.get("cwd"))
            for j in spec["jobs"]
        ]
        heapq.heapify(jobs)
        with self._lock:
            self._heap = jobs

    def _execute(self, job: ScheduledJob) -> JobResult:
        started = time.time()
        env = dict(os.environ, JOB_NAME=job.name)
        proc = subprocess.run(
            shlex.split(job.command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=job.cwd,
            env=env,
        )
        return JobResult(job.name, proc.returncode, started, time.time(), proc.stdout[-OUTPUT_TAIL:])

    def _run_job(self, job: ScheduledJob) -> None:
        with self._lock:
            if job.name in self._running:
                log.info("skipping %s: previous run still active", job.name)
                return
            self._running.add(job.name)
        try:
            result = self._execute(job)
        except OSError as exc:
            now = time.time()
            result = JobResult(job.name, -1, now, now, f"could not start: {exc}")
        finally:
            with self._lock:
                self._running.discard(job.name)

        if result.returncode != 0:
            log.warning("job %s exited with %s", job.name, result.returncode)
        with self._lock:
            self._results[job.name] = result
            self._publish_status()

    def _publish_status(self) -> None:
        payload = {name: asdict(r) for name, r in self._results.items()}
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, indent=2))
        tmp.replace(self.status_path)
        if self.status_url:
            try:
                requests.post(self.status_url, json=payload, timeout=10)
            except requests.RequestException as exc:
                log.warning("status push failed: %s", exc)

    def _due_jobs(self, now: float) -> tuple[list[ScheduledJob], float]:
        due: list[ScheduledJob] = []
        with self._lock:
            while self._heap and self._heap[0].next_run <= now:
                job = heapq.heappop(self._heap)
                due.append(job)
            for job in due:
                heapq.heappush(self._heap, replace(job, next_run=now + job.interval))
            wait = self._heap[0].next_run - now if self._heap else 1.0
        return due, wait

    def run_forever(self) -> None:
        self.load()
        log.info("scheduler started with %d jobs", len(self._heap))
        while not self._stop.is_set():
            due, wait = self._due_jobs(time.time())
            for job in due:
                worker = threading.Thread(target=self._run_job, args=(job,), name=f"job-{job.name}", daemon=True)
                worker.start()
            self._stop.wait(max(0.05, min(wait, 1.0)))
        log.info("scheduler stopped")

    def stop(self) -> None:
        self._stop.set()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    base = Path(os.environ.get("SCHEDULER_HOME", "/etc/opsjobs"))
    sched = Scheduler(base / "jobs.json", base / "status.json", os.environ.get("STATUS_URL"))
    signal.signal(signal.SIGTERM, lambda *_: sched.stop())
    signal.signal(signal.SIGINT, lambda *_: sched.stop())
    sched.run_forever()


if __name__ == "__main__":
    main()
