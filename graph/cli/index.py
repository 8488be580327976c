"""`mirador index`: files and folders into the index (a folder, or a Chroma server)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from graph.cli.parser import fail


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
    try:
        summary = index_paths(args.paths, kind=args.kind, index=store, progress=False if args.quiet else None)
    except httpx.HTTPError as exc:  # the next run completes what this one wrote
        fail(f"the Chroma server at {where} stopped answering: {exc}", status=1)
    for source, reason in summary.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    print(f"{args.kind} → {where}: {summary.line()}")
    return 0
