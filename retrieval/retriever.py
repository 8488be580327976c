"""Relevance-ranked retrieval with a similarity floor, gated by kind."""

from __future__ import annotations

from collections.abc import Iterable

from retrieval.store import Found, Index

DEFAULT_K = 4
# Cosine similarity (MiniLM) below which a chunk is not about the query. Measured on the
# test corpus: a question about a code file scores 0.27-0.29 against its chunk, unrelated
# chunks score under 0.15 (code embeds far from prose questions, hence a low floor).
DEFAULT_FLOOR = 0.2


def retrieve(
    index: Index,
    query: str,
    kinds: Iterable[str],
    *,
    k: int = DEFAULT_K,
    floor: float = DEFAULT_FLOOR,
    exclude: Iterable[str] = (),
) -> list[Found]:
    """The best `k` chunks of the allowed kinds that clear the floor; none rather than the
    least bad. Chunks from `exclude` (the document already in the prompt) are left out."""
    skip = set(exclude)
    found = [
        f for kind in kinds for f in index.search(query, kind, k + len(skip) * 4)
        if f.score >= floor and f.source not in skip
    ]  # fmt: skip
    return sorted(found, key=lambda f: -f.score)[:k]
