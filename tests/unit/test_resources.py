"""graph.resources: what a built graph holds for its runs, and what two graphs do not share."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

import numpy as np

from graph import build_graph
from graph.chains import StageSpec
from graph.config import DEFAULT_PROMPTS_DIR
from graph.prompts import Prompts
from graph.resources import CachedEmbedder, Resources
from graph.routing import classify_query
from tests.fakes import Script, bow_embed, chains


class Counting:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.seen += list(texts)
        return bow_embed(texts)


def test_the_cached_embedder_embeds_each_text_once_and_forgets_the_oldest():
    raw = Counting()
    cached = CachedEmbedder(raw, size=3)
    first = cached(["a b", "c d", "a b"])
    assert raw.seen == ["a b", "c d"]  # a repeat within one call is embedded once
    assert np.array_equal(first, bow_embed(["a b", "c d", "a b"]))
    first[0] += 1  # each call returns its own array: the cache is not changed through it
    assert np.array_equal(cached(["a b"]), bow_embed(["a b"])) and raw.seen == ["a b", "c d"]
    cached(["e f", "g h"])  # four texts now: "c d" was used longest ago
    cached(["c d"])
    assert raw.seen == ["a b", "c d", "e f", "g h", "c d"]
    assert cached([]).shape[0] == 0


def test_the_router_embeds_its_labelled_examples_once_per_embedder():
    raw = Counting()
    cached = CachedEmbedder(raw)
    classify_query("tell me about it", embedder=cached)
    examples = len(raw.seen)
    classify_query("tell me more about it", embedder=cached)
    assert examples > 10 and len(raw.seen) == examples + 1  # only the new query


def test_a_model_is_built_once_per_spec_and_the_cache_is_bounded():
    script = Script()
    held = Resources(script, bow_embed)
    spec = StageSpec(name="concurrency", model="m")
    assert held.model(spec) is held.model(spec)
    assert len(script.built) == 1
    for n in range(40):
        held.model(StageSpec(name="concurrency", model="m", num_ctx=1024 + n))
    assert len(held.models) == 32 and spec not in held.models


def test_two_graphs_share_no_resources_unless_given_the_same(sample_doc, context):
    raw = Counting()
    inputs = {"query": "Where does this code block?", "document_path": str(sample_doc)}
    build_graph(chat_model_factory=Script(), embedder=raw, chains=chains()).invoke(inputs, context=context)
    once = len(raw.seen)
    shared = Resources(Script(), raw)
    for _ in range(2):
        build_graph(chains=chains(), resources=shared).invoke(inputs, context=context)
    # the second graph run on the shared resources embedded nothing new: the same stages'
    # outputs, query and document were cached by the first
    assert once > 0 and len(raw.seen) == 2 * once


def test_the_stages_read_the_prompt_folder_their_resources_were_built_with_and_see_edits(
    sample_doc, context, tmp_path
):
    """A host (Studio, a notebook) binds a graph to its own prompt folder; an edit to a file
    there shows in the next run without rebuilding the graph."""
    folder = tmp_path / "prompts"
    shutil.copytree(DEFAULT_PROMPTS_DIR, folder)
    system = folder / "system.md"
    system.write_text("You are the test's own system prompt.", encoding="utf-8")
    script = Script()
    graph = build_graph(chains=chains(), resources=Resources(script, bow_embed, prompts=Prompts(folder)))
    inputs = {"query": "Where does this code block?", "document_path": str(sample_doc)}
    graph.invoke(inputs, context=context)
    assert script.messages_for("cost")[0].content == "You are the test's own system prompt."
    system.write_text("You are the edited system prompt.", encoding="utf-8")
    was = system.stat()
    os.utime(system, ns=(was.st_atime_ns, was.st_mtime_ns + 1_000_000_000))  # a new mtime on any clock
    script.calls.clear()
    graph.invoke(inputs, context=context)
    assert script.messages_for("cost")[0].content == "You are the edited system prompt."
