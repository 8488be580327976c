"""The one thread that runs model compute: llama.cpp and the embedding model.

Both parallelise with OpenMP, and in one process they share one libgomp (torch's wheel and
llama.cpp both load `libgomp.so.1`). An OpenMP thread team belongs to the thread that
starts the parallel work, so compute started from many threads (graph nodes run on a pool)
makes many teams; with more OpenMP threads than cores libgomp stops spinning between work
items, and llama.cpp's decoding drops by a third (measured on 2 cores: 13 instead of 20
tokens/s). Running all of it on this one thread keeps one team. It also serialises
concurrent runs on the one llama.cpp context.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")

_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mirador-compute")
_CANCELLED = threading.Event()  # the process is being interrupted: every run stops
# A run's own cancel token: a threading.Event in its config's configurable under this key.
# Setting it stops that run's model call at its next token; other runs go on.
CANCEL_KEY = "mirador_cancel"


class Cancelled(KeyboardInterrupt):
    """Raised in a model call after `cancel()`: like Ctrl-C, not an error a stage records."""


def cancel() -> None:
    """Stop every run's compute in flight at its next step (the process is being interrupted)."""
    _CANCELLED.set()


def run_token() -> threading.Event | None:
    """The cancel token of the run the caller is part of, or None (no token, or no run): read
    on the run's own thread, before the work is handed to the compute thread."""
    from langgraph.config import get_config

    try:
        token = get_config().get("configurable", {}).get(CANCEL_KEY)
    except RuntimeError:  # not inside a run
        return None
    return token if isinstance(token, threading.Event) else None


def cancelled(token: threading.Event | None = None) -> bool:
    """Whether the process is being interrupted, or the run holding `token` was cancelled."""
    return _CANCELLED.is_set() or (token is not None and token.is_set())


def submit(fn: Callable[..., T], *args: Any) -> Future[T]:
    return _THREAD.submit(fn, *args)


def run(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn(*args)` on the compute thread and wait for it."""
    return _THREAD.submit(fn, *args).result()


def embed(texts: Sequence[str]) -> np.ndarray:
    """A graph's default embedder: MiniLM (retrieval.embeddings), encoding on this thread; the
    model loads on the calling thread, so loading it never holds up a stage."""
    from retrieval.embeddings import embed as minilm  # imported here: the CLI's signal handler does not pay

    return minilm(texts, run=run)
