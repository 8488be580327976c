"""Build the compiled Mirador graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph

from graph.chains import ChainSet, StageSpec, configured_chains
from graph.config import Context
from graph.models import ChatModelFactory, default_chat_model_factory
from graph.nodes import make_facts, make_prepare, make_retrieve, make_stage_node, report
from graph.resources import Resources
from graph.routing import next_stage, route_after_stage
from graph.runtime.backends import resolve_backend
from graph.runtime.compute import embed
from graph.state import InputState, OutputState, State
from retrieval.embeddings import Embedder


def _route_from(after: str) -> Callable[[State], str]:
    def route(state: State) -> str:
        return route_after_stage(state, after)

    route.__name__ = f"after_{after}"
    return route


def first_stage(state: State) -> str:
    return next_stage(state, None)


def build_graph(
    *,
    chat_model_factory: ChatModelFactory | None = None,
    chains: ChainSet | None = None,
    resolve: Callable[[StageSpec, str, str], tuple[StageSpec, str]] = resolve_backend,
    embedder: Embedder = embed,
    checkpointer: Any = None,
    resources: Resources | None = None,
) -> Any:
    """A fresh compiled graph.

    chat_model_factory: turns a resolved stage spec into a LangChain chat model
        (default: Ollama or the embedded llama.cpp model, by the spec's backend).
    chains: the chain set to serve (default: the file MIRADOR_CHAINS_FILE names,
        else the project's chains.toml); its stage names become the graph's nodes.
    resolve: decides each stage's backend (default: probe Ollama for `auto`).
    embedder: embeds texts for the confidence signals (default: MiniLM, offline, on the
        compute thread).
    resources: the models, embedder cache and index handles the nodes share (default: a new
        graph.resources.Resources over `chat_model_factory` and `embedder`; pass one to share
        them between graphs).
    """
    held = resources or Resources(chat_model_factory or default_chat_model_factory, embedder)
    served = chains or configured_chains()

    builder = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    builder.add_node("prepare", make_prepare(served, resolve, held))
    builder.add_node("facts", make_facts())
    builder.add_node("retrieve", make_retrieve(served, held))
    names = served.stage_names()
    for name in names:
        builder.add_node(name, make_stage_node(name, held))
    builder.add_node("report", report)

    first = sorted({chain.stages[0].name for chain in served.chains.values()})
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "facts")
    builder.add_edge("facts", "retrieve")
    builder.add_conditional_edges("retrieve", first_stage, first)
    for name in names:
        builder.add_conditional_edges(name, _route_from(name), sorted(served.successors(name)))
    builder.add_edge("report", END)
    return builder.compile(checkpointer=checkpointer, name="mirador")
