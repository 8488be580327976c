"""What one built graph holds for all its runs, in one object that build_graph makes and hands
to the nodes: the chat models it has built, the embedder with its cache of vectors, the
index handles it has opened, keyed by location, and the prompt folder's loader. Two graphs built apart share none of it; a
host that wants them to share passes one `Resources` to both.

Loaded weights are the exception, on purpose: a llama.cpp model (graph.runtime.embedded) and
MiniLM (retrieval.embeddings) load once per process, because each costs a second or more and
hundreds of megabytes, and a second copy would buy nothing; the objects here wrap them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from langchain_core.language_models import BaseChatModel

from graph.chains import StageSpec
from graph.prompts import Prompts, default_prompts
from retrieval.embeddings import Embedder
from retrieval.store import Index

MODELS_KEPT = 32  # a stage's spec carries its fitted context size, so a long-lived host sees many
VECTORS_KEPT = 4096  # texts: a run embeds its query, document chunks and every stage's output


class CachedEmbedder:
    """An embedder that remembers the vectors of the last `size` texts it embedded: a run
    embeds the same query, document and earlier outputs at every stage, and the router embeds
    its labelled examples on every query. Each call returns a new array."""

    def __init__(self, embedder: Embedder, size: int = VECTORS_KEPT) -> None:
        self.embedder = embedder
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return self.embedder(texts)
        with self._lock:
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = dict(zip(missing, self.embedder(missing), strict=True))
            found.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([found[t] for t in texts])


@dataclass
class Resources:
    """The models, embedder and indexes a graph's nodes use (see the module's docstring).

    factory: turns a resolved stage spec into a chat model.
    embedder: embeds texts; wrapped in a CachedEmbedder unless it is one already.
    prompts: the prompt folder's loader (default: MIRADOR_PROMPTS_DIR, else prompts/)."""

    factory: Callable[[StageSpec], BaseChatModel]
    embedder: Embedder
    prompts: Prompts = field(default_factory=default_prompts)
    models: OrderedDict[StageSpec, BaseChatModel] = field(default_factory=OrderedDict)
    indexes: dict[str, Index] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.embedder, CachedEmbedder):
            self.embedder = CachedEmbedder(self.embedder)

    def model(self, spec: StageSpec) -> BaseChatModel:
        """The chat model for `spec`, built once: `prewarm` builds the first stage's, which
        that stage then uses, and a repeated stage reuses its own."""
        with self._lock:
            if spec in self.models:
                self.models.move_to_end(spec)
                return self.models[spec]
        built = self.factory(spec)
        with self._lock:
            self.models[spec] = built
            while len(self.models) > MODELS_KEPT:
                self.models.popitem(last=False)
        return built

    def index(self, location: str) -> Index:
        """The index at `location` (a folder or a Chroma server), opened once; raises
        UnusableIndex when there is none."""
        with self._lock:
            if location in self.indexes:
                return self.indexes[location]
        opened = Index(location, embedder=self.embedder, create=False)
        with self._lock:
            return self.indexes.setdefault(location, opened)

    def forget_index(self, location: str) -> None:
        """Drop the handle (a Chroma server that stopped answering is opened afresh next time)."""
        with self._lock:
            self.indexes.pop(location, None)
