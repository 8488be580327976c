"""The Chroma index: one collection per kind, chunks upserted by stable id.

On disk (a folder) or on a Chroma server that several machines share (an http:// URL):
the same collections, ids and queries either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from retrieval import KINDS
from retrieval.chunking import Chunk
from retrieval.embeddings import Embedder, embed
from retrieval.locations import INDEX_FILE, is_index, is_server
from retrieval.locations import index_location as index_location  # re-exported: the CLI imports it here


class UnusableIndex(ValueError):
    """An index that cannot be used; the message is one line for the user."""


def _server(url: str, settings: Any) -> Any:
    """A client of the Chroma server at `url` (http://host:port); UnusableIndex when none answers."""
    import chromadb

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 8000)
    except ValueError:  # not echoed: it may hold a password
        raise UnusableIndex("index: the Chroma server's URL is not a URL; give http://host:port") from None
    if parts.username or parts.password:
        raise UnusableIndex(
            "index: the Chroma server's URL carries a user or password; give http://host:port"
        )
    if not parts.hostname or parts.path.strip("/") or parts.query:
        raise UnusableIndex(f"index {url!r}: a Chroma server is named http://host:port, with no path")
    try:
        return chromadb.HttpClient(
            host=parts.hostname, port=port, ssl=parts.scheme == "https", settings=settings
        )
    except ValueError as exc:  # chromadb's "Could not connect to a Chroma server..."
        raise UnusableIndex(f"no Chroma server answers at {url}: {exc}") from None


@dataclass(frozen=True)
class Found:
    """A chunk returned by a search, with its cosine similarity to the query."""

    text: str
    source: str
    line_start: int
    line_end: int
    language: str
    kind: str
    score: float


class Index:
    """Chunks of `documents` and `persona` content, kept in separate collections."""

    def __init__(self, path: str | Path, *, embedder: Embedder = embed, create: bool = True):
        self.where = str(path)  # a folder, or a Chroma server's URL
        self.path = Path(path)
        server = is_server(self.where)
        if not create and not is_index(self.where):
            if self.path.exists():
                raise UnusableIndex(f"{self.path} is not a Mirador index (no {INDEX_FILE})")
            raise UnusableIndex(f"no index at {self.path}; build one with `mirador index PATH`")
        import chromadb  # imported here: runs without retrieval do not pay for it
        from chromadb.config import Settings

        self.embedder = embedder
        settings = Settings(anonymized_telemetry=False)
        if server:
            self.client = _server(self.where, settings)
            held = {c.name for c in self.client.list_collections()}
            if not create and not set(KINDS) <= held:
                raise UnusableIndex(
                    f"no index at {self.where}; build one with `mirador index PATH --index {self.where}`"
                )
        else:
            self.client = chromadb.PersistentClient(path=str(self.path), settings=settings)
        # No embedding function: Mirador always passes its own vectors, so Chroma's
        # default one (which would download an ONNX model) never runs.
        self.collections = {
            kind: self.client.get_or_create_collection(
                kind, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            for kind in KINDS
        }

    def count(self, kind: str) -> int:
        return int(self.collections[kind].count())

    def sources(self, kind: str) -> set[str]:
        """Every indexed source of a kind."""
        got = self.collections[kind].get(include=["metadatas"])
        return {str(meta["source"]) for meta in got["metadatas"] or []}

    def replace_source(self, source: str, kind: str, chunks: list[Chunk]) -> dict[str, int]:
        """Make the index hold exactly `chunks` for `source`; embed only what is new.

        New chunks are written before stale ones are deleted, so a run killed in
        between leaves the old or the new chunks, and the next run settles it.
        """
        collection = self.collections[kind]
        before = collection.get(where={"source": source}, include=["metadatas"])
        old_positions = {int(str(m["position"])) for m in before["metadatas"] or []}
        old_ids = set(before["ids"])
        new = [c for c in chunks if c.id not in old_ids]
        if new:
            # The file's name goes with the text: "orchestrator.py" says what the code is about.
            vectors = self.embedder([f"{Path(c.source).name}\n{c.text}" for c in new])
            collection.upsert(
                ids=[c.id for c in new],
                embeddings=vectors,  # type: ignore[arg-type]
                documents=[c.text for c in new],
                metadatas=[c.metadata() for c in new],  # type: ignore[misc]
            )
        stale = old_ids - {c.id for c in chunks}
        if stale:
            collection.delete(ids=sorted(stale))
        new_positions = {c.position for c in chunks}
        updated = sum(1 for c in new if c.position in old_positions)
        return {
            "added": len(new) - updated,
            "updated": updated,
            "unchanged": len(chunks) - len(new),
            "removed": len(old_positions - new_positions),
        }

    def search(self, query: str, kind: str, k: int) -> list[Found]:
        collection = self.collections[kind]
        if k <= 0 or collection.count() == 0:
            return []
        vector = self.embedder([query])
        got: Any = collection.query(
            query_embeddings=vector,  # type: ignore[arg-type]
            n_results=min(k, collection.count()),
            include=["documents", "metadatas", "distances"],
        )
        return [
            Found(
                text=doc,
                source=str(meta["source"]),
                line_start=int(meta["line_start"]),
                line_end=int(meta["line_end"]),
                language=str(meta["language"]),
                kind=kind,
                score=round(1.0 - float(distance), 3),
            )  # fmt: skip
            for doc, meta, distance in zip(
                got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
            )
        ]
