"""Mirador: a LangGraph chain of local language models that writes an analysis report."""

from graph.builder import build_graph
from graph.config import Context

__all__ = ["Context", "build_graph"]
