"""Retrieval (Chroma + sentence-transformers): built in the retrieval issue.

Nothing here yet; the package exists so the layout matches the design card.
"""
