"""Video poster-frame and preview-strip generator fed by the media ingest queue."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("thumbs")

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
OUTPUT_ROOT = Path(os.environ.get("THUMB_OUTPUT", "/srv/media/thumbs"))
STRIP_FRAMES = 12


@dataclass
class Job:
    asset_id: str
    source: Path


def probe_duration(source: Path) -> float:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_entries", "format=duration", "-of", "json", str(source)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def content_key(source: Path) -> str:
    return hashlib.blake2b(source.read_bytes(), digest_size=16).hexdigest()


def _render(args: list[str], limit: float) -> None:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        log.warning("ffmpeg timed out after %.0fs: %s", limit, args[-1])
        raise
    if proc.returncode != 0:
        raise RuntimeError(err.decode(errors="replace")[-500:])


def render_job(job: Job) -> Path:
    duration = probe_duration(job.source)
    key = content_key(job.source)
    final_dir = OUTPUT_ROOT / key[:2] / key
    if (final_dir / "poster.jpg").exists():
        return final_dir

    work = Path(tempfile.mkdtemp(prefix=f"thumb-{job.asset_id}-"))
    os.chdir(work)
    _render(
        [FFMPEG, "-y", "-ss", f"{duration * 0.1:.2f}", "-i", str(job.source),
         "-frames:v", "1", "-vf", "scale=640:-2", "poster.jpg"],
        limit=60,
    )
    step = max(duration / STRIP_FRAMES, 0.5)
    _render(
        [FFMPEG, "-y", "-i", str(job.source), "-vf",
         f"fps=1/{step:.2f},scale=160:-2,tile={STRIP_FRAMES}x1", "-frames:v", "1", "strip.jpg"],
        limit=180,
    )
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    staged = final_dir.with_name(final_dir.name + ".tmp")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(work, staged)
    os.replace(staged, final_dir)
    shutil.rmtree(work)
    return final_dir


class WorkerPool:
    def __init__(self, size: int = 4, backlog: int = 64) -> None:
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=backlog)
        self.results: dict[str, str] = {}
        self._results_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, name=f"thumb-{i}", daemon=True) for i in range(size)
        ]

    def _loop(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                self.jobs.task_done()
                return
            try:
                out = render_job(job)
                status = str(out)
            except (subprocess.SubprocessError, RuntimeError, OSError, ValueError) as exc:
                log.error("asset %s failed: %s", job.asset_id, exc)
                status = "failed"
            with self._results_lock:
                self.results[job.asset_id] = status
            self.jobs.task_done()

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def submit(self, job: Job) -> None:
        self.jobs.put(job, timeout=30)

    def close(self) -> None:
        for _ in self._threads:
            self.jobs.put(None)
        for t in self._threads:
            t.join(timeout=600)


def main(manifest: Path) -> None:
    logging.basicConfig(level=logging.INFO)
    pool = WorkerPool(size=int(os.environ.get("THUMB_WORKERS", "4")))
    pool.start()
    with manifest.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            pool.submit(Job(asset_id=rec["asset_id"], source=Path(rec["path"])))
    pool.close()
    failed = [a for a, s in pool.results.items() if s == "failed"]
    log.info("%d done, %d failed", len(pool.results), len(failed))


if __name__ == "__main__":
    import sys

    main(Path(sys.argv[1]))
