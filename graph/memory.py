"""Conversations that outlive the process: a SQLite checkpointer keyed by thread id.

The command line and Python use this; `langgraph dev` uses the server's own persistence.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

from graph.config import data_dir

_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def threads_db() -> Path:
    return Path(os.environ.get("MIRADOR_THREADS_DB") or data_dir() / "threads.sqlite")


def check_thread_id(thread: str) -> str:
    """A thread id is a name, never a path: letters, digits, '_', '.', '-'; at most 64."""
    if not _THREAD_ID.fullmatch(thread) or ".." in thread:
        raise ValueError(f"bad thread id {thread!r}: use letters, digits, '_', '.' or '-' (at most 64)")
    return thread


def open_checkpointer(path: str | Path | None = None) -> SqliteSaver:
    """A checkpointer on the thread database (created when missing)."""
    db = Path(path) if path else threads_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(db), check_same_thread=False))
