"""`mirador index`: files and folders into the index (a folder, or a Chroma server).

On a terminal a rich progress bar on stderr follows the files (uncoloured under `NO_COLOR`);
piped, nothing is drawn and only the skipped files and the summary are printed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from graph.cli.parser import fail

if TYPE_CHECKING:
    from retrieval.indexer import Progress


@contextmanager
def file_bar(console: Console, kind: str) -> Iterator[Progress | None]:
    """The indexer's progress (retrieval.indexer.Progress): a bar on `console` that moves on a
    file at a time and names the file being read, when `console` is a terminal; None when it
    is not (piped: no bar). The bar stops when the block ends, also on an error."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bar

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.fields[file]}"))  # fmt: skip
    with Bar(*columns, console=console) as bar:

        def track(files: Sequence[Path]) -> Iterator[Path]:
            task = bar.add_task(f"indexing {kind}", total=len(files), file="")
            for path in files:
                bar.update(task, file=path.name)
                yield path
                bar.advance(task)
            bar.update(task, file="")

        yield track


def build(args: argparse.Namespace) -> int:
    import httpx

    from retrieval.indexer import index_paths
    from retrieval.locations import is_index
    from retrieval.store import Index, UnusableIndex, index_location, is_server

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        fail(f"path not found: {missing[0]}")
    where = index_location(args.index or "")
    path = Path(where)
    if not is_server(where):
        if path.exists() and not path.is_dir():
            fail(f"index path is not a folder: {path}")
        if path.is_dir() and any(path.iterdir()) and not is_index(path):
            fail(f"{path} is not a Mirador index (no chroma.sqlite3); choose an empty or new folder")
    try:
        store = Index(where)
    except UnusableIndex as exc:
        fail(str(exc))
    bar: AbstractContextManager[Progress | None] = (
        nullcontext(None) if args.quiet else file_bar(Console(stderr=True, highlight=False), args.kind)
    )
    try:
        with bar as progress:
            summary = index_paths(args.paths, kind=args.kind, index=store, progress=progress)
    except httpx.HTTPError as exc:  # the next run completes what this one wrote
        fail(f"the Chroma server at {where} stopped answering: {exc}", status=1)
    for source, reason in summary.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    print(f"{args.kind} → {where}: {summary.line()}")
    return 0
