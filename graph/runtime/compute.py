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
_CANCELLED = threading.Event()


class Cancelled(KeyboardInterrupt):
    """Raised in a model call after `cancel()`: like Ctrl-C, not an error a stage records."""


def cancel() -> None:
    """Stop the compute in flight at its next step (the process is being interrupted)."""
    _CANCELLED.set()


def cancelled() -> bool:
    return _CANCELLED.is_set()


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
