"""Per-run FASTA statistics for the sequencing core's QC dashboard.

Each sequencing run drops one or more gzipped FASTA files into its run
directory. The summariser computes length and GC statistics per file, flags
sequences already seen in earlier runs, and keeps the summaries so the
dashboard can fetch them by run id.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

log = logging.getLogger("seqcore.fasta")

DIGEST_INDEX = Path("/srv/seqcore/known_digests.jsonl")
MAX_WORKERS = 8

_run_summaries: dict[str, "RunSummary"] = {}


@dataclass
class FileStats:
    path: str
    sequences: int = 0
    total_bases: int = 0
    gc_fraction: float = 0.0
    n50: int = 0
    repeats: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    run_id: str
    files: list[FileStats]

    @property
    def total_bases(self) -> int:
        return sum(f.total_bases for f in self.files)


def read_fasta(path: Path) -> Iterator[tuple[str, str]]:
    """Yield (header, sequence) pairs from a gzipped FASTA file."""
    with gzip.open(path, "rt", encoding="ascii") as handle:
        header: str | None = None
        chunks: list[str] = []
        for line in handle:
            line = line.rstrip()
            if line.startswith(">"):
                if header is not None:
                    yield header, "".join(chunks)
                header, chunks = line[1:], []
            elif line:
                chunks.append(line)
        if header is not None:
            yield header, "".join(chunks)


def n50(lengths: list[int]) -> int:
    """Length L such that sequences of length >= L cover half of all bases."""
    half = sum(lengths) / 2
    running = 0
    for length in sorted(lengths, reverse=True):
        running += length
        if running >= half:
            return length
    return 0


def _known_digests() -> list[str]:
    if not DIGEST_INDEX.exists():
        return []
    with DIGEST_INDEX.open(encoding="utf-8") as fh:
        return [json.loads(row)["sha1"] for row in fh if row.strip()]


def _seen_before(sequence: str) -> bool:
    digest = hashlib.sha1(sequence.upper().encode("ascii")).hexdigest()
    return digest in _known_digests()


class RunSummariser:
    """Summarises the FASTA files of a run on a shared thread pool."""

    def __init__(self, workers: int = MAX_WORKERS) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fasta")
        self._lock = threading.Lock()
        self.files_done = 0

    def _file_stats(self, path: Path) -> FileStats:
        stats = FileStats(path=str(path))
        lengths: list[int] = []
        gc = 0
        with self._lock:
            for header, seq in read_fasta(path):
                lengths.append(len(seq))
                gc += sum(seq.count(base) for base in "GCgc")
                if _seen_before(seq):
                    stats.repeats.append(header.split()[0])
            self.files_done += 1
        stats.sequences = len(lengths)
        stats.total_bases = sum(lengths)
        stats.gc_fraction = gc / stats.total_bases if stats.total_bases else 0.0
        stats.n50 = n50(lengths)
        return stats

    def summarise(self, run_id: str, run_dir: Path) -> RunSummary:
        paths = sorted(run_dir.glob("*.fa.gz"))
        futures = [self._pool.submit(self._file_stats, p) for p in paths]
        summary = RunSummary(run_id=run_id, files=[f.result() for f in futures])
        _run_summaries[run_id] = summary
        log.info("run %s: %d files, %d bases", run_id, len(paths), summary.total_bases)
        return summary

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def get_summary(run_id: str) -> dict | None:
    """The dashboard's view of a run, or None if it was never summarised."""
    summary = _run_summaries.get(run_id)
    if summary is None:
        return None
    return {
        "run_id": summary.run_id,
        "total_bases": summary.total_bases,
        "files": [
            {
                "path": f.path,
                "sequences": f.sequences,
                "gc": round(f.gc_fraction, 4),
                "n50": f.n50,
                "repeats": f.repeats[:50],
            }
            for f in summary.files
        ],
    }
