"""Mirador: a LangGraph chain of local language models that writes an analysis report.

`build_graph` and `Context` load on first use, so `mirador --help` and argument errors
do not pay for importing LangGraph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graph.builder import build_graph
    from graph.config import Context

__all__ = ["Context", "build_graph"]


def __getattr__(name: str) -> Any:
    if name == "build_graph":
        from graph.builder import build_graph

        return build_graph
    if name == "Context":
        from graph.config import Context

        return Context
    raise AttributeError(f"module 'graph' has no attribute {name!r}")
