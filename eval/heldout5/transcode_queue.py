"""Video transcoding queue.

Uploaded videos are queued here and transcoded by a small pool of worker
threads into the renditions the web player needs. Each job is probed with
ffprobe first so that a 480p upload is not blown up into a 1080p rendition,
then ffmpeg runs once per rendition. Finished jobs are reported to the media
API through the `on_done` callback.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("transcode")


@dataclass(frozen=True)
class Rendition:
    name: str
    height: int
    video_bitrate: str
    audio_bitrate: str


RENDITIONS = (
    Rendition("1080p", 1080, "5000k", "192k"),
    Rendition("720p", 720, "2800k", "128k"),
    Rendition("480p", 480, "1400k", "128k"),
    Rendition("240p", 240, "400k", "64k"),
)


@dataclass
class Job:
    video_id: str
    source: Path
    plan: list[Rendition] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)


def _probe(source: Path) -> dict:
    """Stream metadata of `source` as ffprobe reports it."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams", str(source)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(proc.stdout)


def _encode(source: Path, rendition: Rendition, target: Path) -> None:
    cmd = [
        "ffmpeg", "-hide_banner", "-y", "-i", str(source),
        "-vf", f"scale=-2:{rendition.height}",
        "-c:v", "libx264", "-preset", "medium", "-b:v", rendition.video_bitrate,
        "-c:a", "aac", "-b:a", rendition.audio_bitrate,
        "-movflags", "+faststart", "-f", "mp4", str(target),
    ]
    subprocess.run(cmd, check=True, capture_output=True)


class TranscodeQueue:
    """A FIFO of transcoding jobs worked by `workers` threads."""

    def __init__(self, output_root: Path, on_done: Callable[[Job, str | None], None], workers: int = 3) -> None:
        self._root = output_root
        self._on_done = on_done
        self._jobs: list[Job] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"transcode-{i}") for i in range(workers)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def submit(self, video_id: str, source: Path) -> None:
        with self._cond:
            self._jobs.append(Job(video_id, source))
            self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._jobs)

    def shutdown(self) -> None:
        """Stop taking jobs and wait for the running ones to finish."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()

    def _next(self) -> Job | None:
        with self._cond:
            while not self._jobs and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            job = self._jobs.pop(0)
            job.plan = self._plan(job)
            return job

    def _plan(self, job: Job) -> list[Rendition]:
        info = _probe(job.source)
        heights = [s.get("height", 0) for s in info.get("streams", []) if s.get("codec_type") == "video"]
        source_height = max(heights, default=0)
        plan = [r for r in RENDITIONS if r.height <= source_height]
        return plan or [RENDITIONS[-1]]

    def _work(self) -> None:
        while True:
            try:
                job = self._next()
            except (subprocess.SubprocessError, ValueError) as exc:
                log.error("could not probe a queued video: %s", exc)
                continue
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        out_dir = self._root / job.video_id
        out_dir.mkdir(parents=True, exist_ok=True)
        error = None
        for rendition in job.plan:
            target = out_dir / f"{rendition.name}.mp4"
            partial = target.with_suffix(".part")
            try:
                _encode(job.source, rendition, partial)
                partial.replace(target)
                job.outputs[rendition.name] = target
            except subprocess.CalledProcessError as exc:
                error = exc.stderr.decode(errors="replace")[-500:]
                log.error("%s %s failed: %s", job.video_id, rendition.name, error)
                break
            finally:
                partial.unlink(missing_ok=True)
        try:
            self._on_done(job, error)
        except Exception:
            log.exception("reporting %s to the media API failed", job.video_id)
