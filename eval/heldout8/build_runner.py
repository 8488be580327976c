"""Build runner: executes jobs from the coordinator on a pool of worker threads.

Jobs arrive two ways: the poll loop claims queued jobs from the coordinator, and
the coordinator pushes urgent jobs to the runner's small HTTP endpoint.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shlex
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("runner")

WORK_ROOT = "/var/lib/runner/work"
MIRROR_ROOT = "/var/lib/runner/mirrors"
GIT_BASE = "https://git.internal"
MAX_LOG_BYTES = 5 * 1024 * 1024


@dataclass
class Job:
    id: str
    repo: str
    ref: str
    command: str
    timeout: float = 1800.0
    env: dict = field(default_factory=dict)


class Runner:
    def __init__(self, coordinator, workers: int = 4) -> None:
        self.coordinator = coordinator
        self.workers = workers
        self._queue: queue.Queue[Job] = queue.Queue(maxsize=100)
        self._active: dict[str, Job] = {}
        self._git_lock = threading.Lock()
        self._stop = threading.Event()

    def submit(self, job: Job) -> bool:
        """Queue a job unless it is already queued or running."""
        if job.id in self._active:
            log.info("job %s is already active", job.id)
            return False
        self._active[job.id] = job
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self._active.pop(job.id, None)
            return False
        return True

    def _checkout(self, job: Job, path: str) -> None:
        mirror = os.path.join(MIRROR_ROOT, job.repo.replace("/", "_") + ".git")
        with self._git_lock:
            if not os.path.isdir(mirror):
                subprocess.run(
                    ["git", "clone", "--mirror", f"{GIT_BASE}/{job.repo}.git", mirror],
                    check=True, capture_output=True, timeout=900,
                )
            else:
                subprocess.run(
                    ["git", "-C", mirror, "fetch", "--prune", "origin"],
                    check=True, capture_output=True, timeout=900,
                )
        subprocess.run(["git", "clone", "--shared", mirror, path], check=True, capture_output=True, timeout=120)
        subprocess.run(["git", "-C", path, "checkout", "--detach", job.ref], check=True, capture_output=True, timeout=60)

    def _execute(self, job: Job, cwd: str) -> tuple[int | None, bytes]:
        proc = subprocess.Popen(
            shlex.split(job.command),
            cwd=cwd,
            env={**os.environ, **job.env, "CI": "1", "JOB_ID": job.id},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            out, _ = proc.communicate(timeout=job.timeout)
        except subprocess.TimeoutExpired:
            log.warning("job %s exceeded %.0fs", job.id, job.timeout)
            return None, b"timed out\n"
        return proc.returncode, out[-MAX_LOG_BYTES:]

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            path = os.path.join(WORK_ROOT, job.id)
            try:
                self._checkout(job, path)
                code, output = self._execute(job, path)
                self.coordinator.report(job.id, code, output)
            except Exception as exc:
                log.exception("job %s failed in the runner", job.id)
                self.coordinator.report(job.id, -1, f"runner error: {exc}\n".encode())
            finally:
                self._active.pop(job.id, None)
                shutil.rmtree(path, ignore_errors=True)
                self._queue.task_done()

    def poll(self) -> None:
        while not self._stop.is_set():
            try:
                for spec in self.coordinator.claim(limit=self.workers):
                    self.submit(Job(**spec))
            except Exception:
                log.exception("claiming jobs failed")
            self._stop.wait(5)

    def start(self) -> None:
        for i in range(self.workers):
            threading.Thread(target=self._work, name=f"worker-{i}", daemon=True).start()
        threading.Thread(target=self.poll, name="poll", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def serve(runner: Runner, port: int = 8091) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/jobs":
                self.send_error(404)
                return
            length = int(self.headers.get("Content-Length", "0"))
            spec = json.loads(self.rfile.read(min(length, 64 * 1024)))
            accepted = runner.submit(Job(**spec))
            self.send_response(202 if accepted else 409)
            self.end_headers()

        def log_message(self, fmt, *args) -> None:
            log.debug(fmt, *args)

    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()
