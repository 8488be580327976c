"""Load files and folders into the index: upsert by stable id, prune what is gone."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retrieval import KINDS
from retrieval.chunking import INDEXABLE, Unreadable, chunk_text, read_text
from retrieval.store import Index

SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
                       ".pytest_cache", ".ruff_cache", ".tox", "dist", "build", ".idea", ".vscode"})  # fmt: skip


# How the indexer goes through the files it will read: given all of them, in order, it yields
# each one back as its turn comes (a progress bar that moves on a file at a time; the CLI's is
# on rich). The indexer itself draws nothing.
Progress = Callable[[Sequence[Path]], Iterable[Path]]


@dataclass
class Summary:
    files: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.files} files: {self.added} chunks added, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.removed} removed, {len(self.skipped)} files skipped "
            f"in {self.seconds:.1f} s"
        )


def _walk(root: Path, summary: Summary) -> Iterator[Path]:
    """Files to index under root: explicit files always; in folders, known text types."""
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*")):
        if any(part in SKIP_DIRS or part.startswith(".") for part in path.relative_to(root).parts[:-1]):
            continue
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() not in INDEXABLE:
            summary.skipped.append((str(path), f"not a text, code or PDF file ({path.suffix})"))
            continue
        yield path


def index_paths(
    paths: list[str | Path], *, kind: str, index: Index, progress: Progress | None = None
) -> Summary:
    """Index files and folders as `kind`. Re-indexing the same tree changes nothing; a changed
    file's chunks are replaced; chunks of files deleted under an indexed folder are pruned.

    `progress` walks the files to read (see Progress); None: no progress shown."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (choose from {', '.join(KINDS)})")
    roots = [Path(p).resolve() for p in paths]
    for root in roots:
        if not root.exists():
            raise ValueError(f"path not found: {root}")
    start = time.perf_counter()
    summary = Summary()
    files = [f for root in roots for f in _walk(root, summary)]
    seen: set[str] = set()
    for path in progress(files) if progress else files:
        summary.files += 1
        source = str(path)
        seen.add(source)
        try:
            chunks = chunk_text(read_text(path), source, kind)
        except (Unreadable, OSError) as exc:
            summary.skipped.append((source, str(exc)))
            if isinstance(exc, Unreadable):  # what it held before no longer stands
                summary.removed += index.replace_source(source, kind, [])["removed"]
            continue
        for key, n in index.replace_source(source, kind, chunks).items():
            setattr(summary, key, getattr(summary, key) + n)
    for source in index.sources(kind) - seen:
        gone = not Path(source).exists()
        if gone and any(Path(source).is_relative_to(root) for root in roots if root.is_dir()):
            summary.removed += index.replace_source(source, kind, [])["removed"]
    summary.seconds = time.perf_counter() - start
    return summary
