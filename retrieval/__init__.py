"""Retrieval: a Chroma index of the user's documents and persona notes, MiniLM embeddings,
and relevance-ranked, type-gated search."""

KINDS = ("documents", "persona")
