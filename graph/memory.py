"""Conversations that outlive the process: a checkpointer keyed by thread id.

SQLite by default; `MIRADOR_THREADS_DB=postgresql://...` keeps them in Postgres, where
several processes and machines share them. The command line and Python use this;
`langgraph dev` uses the server's own persistence.
"""

from __future__ import annotations

import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import unquote

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from graph.config import Settings

_THREAD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_PASSWORDS = (re.compile(r"^[A-Za-z]+://[^/?#@:]*:([^@/?#]*)@"), re.compile(r"[?&]password=([^&#]*)"))
_SETUP_LOCK = 0x6D697261  # "mira": one process at a time creates or migrates the tables
_TRY_LOCK = "SELECT pg_try_advisory_lock(%s) AS got"


class ThreadStoreError(ValueError):
    """The thread store cannot be opened; the message is one line and holds no password."""


def threads_db() -> str:
    """Where threads live: a SQLite file, or a postgresql:// URL (MIRADOR_THREADS_DB)."""
    settings = Settings.read()
    return settings.threads_db or str(settings.data_dir / "threads.sqlite")


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def redact(text: str, url: str) -> str:
    """`text` with every password `url` carries (in its user part or its query) as ***."""
    for pattern in _PASSWORDS:
        for secret in pattern.findall(url):
            for form in {secret, unquote(secret)} - {""}:
                text = text.replace(form, "***")
    return text


def check_thread_id(thread: str) -> str:
    """A thread id is a name, never a path: letters, digits, '_', '.', '-'; at most 64."""
    if not _THREAD_ID.fullmatch(thread) or ".." in thread:
        raise ValueError(f"bad thread id {thread!r}: use letters, digits, '_', '.' or '-' (at most 64)")
    return thread


def open_checkpointer(location: str | Path | None = None) -> BaseCheckpointSaver:
    """A checkpointer on the thread store: a SQLite file (created when missing) or Postgres."""
    where = str(location or threads_db())
    if is_postgres(where):
        return _open_postgres(where)
    if "://" in where:
        raise ThreadStoreError(
            f"threads database {redact(where, where)!r} is neither a postgresql:// URL nor a file path"
        )
    db = Path(where)
    db.parent.mkdir(parents=True, exist_ok=True)
    return SqliteSaver(sqlite3.connect(str(db), check_same_thread=False))


def _open_postgres(url: str) -> BaseCheckpointSaver:
    """One connection, its tables created or migrated on first use (the saver's setup())."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    conn = None
    try:
        conn = psycopg.Connection.connect(
            url, autocommit=True, prepare_threshold=0, row_factory=dict_row, connect_timeout=10
        )
        # Polled, not waited on: a waiting statement would hold up the setup's CREATE INDEX
        # CONCURRENTLY in the process that has the lock, and Postgres would call it a deadlock.
        while conn.execute(_TRY_LOCK, (_SETUP_LOCK,)).fetchone() != {"got": True}:
            time.sleep(0.05)
        saver = PostgresSaver(conn)  # type: ignore[arg-type]
        saver.setup()
        conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
    except psycopg.Error as exc:
        if conn is not None:
            conn.close()
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ThreadStoreError(redact(f"threads database {url}: {reason}", url)) from None
    return saver
