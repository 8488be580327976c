"""HTTP API in front of the school timetable solver.

Clients POST a problem (teachers, groups, rooms, requirements, pinned
lessons), get a job id back, and poll for the result. The solver itself is
the `ttsolve` constraint-programming CLI.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

SOLVER = "/opt/timetable/bin/ttsolve"
SOLVE_TIMEOUT = 300
JOB_TTL = 3600


class SolverError(Exception):
    pass


@dataclass
class Lesson:
    id: str
    teacher: str
    group: str
    room: str
    slot: int
    subject: str


@dataclass
class Job:
    job_id: str
    state: str = "queued"
    created: float = field(default_factory=time.monotonic)
    result: list[dict] | None = None
    clashes: list[tuple[str, str, str]] = field(default_factory=list)
    error: str | None = None
    task: asyncio.Task | None = None


def find_clashes(lessons: list[Lesson]) -> list[tuple[str, str, str]]:
    """Pairs of lessons in the same slot that share a teacher, room or group."""
    clashes = []
    for i, a in enumerate(lessons):
        for b in lessons[i + 1:]:
            if a.slot != b.slot:
                continue
            for attr in ("teacher", "room", "group"):
                if getattr(a, attr) == getattr(b, attr):
                    clashes.append((a.id, b.id, attr))
    return clashes


def _run_solver(spec: dict) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="tt-") as tmp:
        problem = Path(tmp) / "problem.json"
        problem.write_text(json.dumps(spec))
        proc = subprocess.run([SOLVER, "--input", str(problem), "--format", "json"],
                              capture_output=True, timeout=SOLVE_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise SolverError(proc.stderr.decode(errors="replace")[-500:])
    return json.loads(proc.stdout)["lessons"]


class TimetableService:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}

    def _prune(self) -> None:
        cutoff = time.monotonic() - JOB_TTL
        for job_id in [j.job_id for j in self.jobs.values() if j.created < cutoff]:
            del self.jobs[job_id]

    async def _solve(self, job: Job, spec: dict) -> None:
        job.state = "running"
        try:
            lessons = _run_solver(spec)
        except (SolverError, subprocess.TimeoutExpired) as exc:
            job.state, job.error = "failed", str(exc)
            return
        job.result = lessons
        job.clashes = find_clashes([Lesson(**lesson) for lesson in lessons])
        job.state = "done"

    async def submit(self, request: web.Request) -> web.Response:
        spec = await request.json()
        pinned = [Lesson(**lesson) for lesson in spec.get("pinned", [])]
        clashes = find_clashes(pinned)
        if clashes:
            return web.json_response({"error": "pinned lessons clash", "clashes": clashes},
                                     status=422)
        self._prune()
        job = Job(uuid.uuid4().hex)
        self.jobs[job.job_id] = job
        job.task = asyncio.create_task(self._solve(job, spec))
        return web.json_response({"job": job.job_id}, status=202)

    def _job(self, request: web.Request) -> Job:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            raise web.HTTPNotFound()
        return job

    async def status(self, request: web.Request) -> web.Response:
        job = self._job(request)
        body = {"job": job.job_id, "state": job.state, "error": job.error}
        if job.state == "done":
            body.update(lessons=job.result, clashes=job.clashes)
        return web.json_response(body)

    async def cancel(self, request: web.Request) -> web.Response:
        job = self._job(request)
        if job.state in ("queued", "running"):
            job.state = "cancelled"
        return web.json_response({"job": job.job_id, "state": job.state})


def make_app() -> web.Application:
    service = TimetableService()
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.add_routes([
        web.post("/jobs", service.submit),
        web.get("/jobs/{job_id}", service.status),
        web.delete("/jobs/{job_id}", service.cancel),
    ])
    return app


if __name__ == "__main__":
    web.run_app(make_app(), port=8080)
