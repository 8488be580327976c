"""Retrieval: a Chroma index of the user's documents and persona notes, MiniLM embeddings,
and relevance-ranked, type-gated search."""

from typing import Literal, get_args

Kind = Literal["documents", "persona"]
KINDS: tuple[str, ...] = get_args(Kind)
