"""Confidence signals on the old system's real outputs, scored with the real MiniLM embedder
(torch): the seed's loops and copies, an off-topic answer, the old demo's stages. The formula
and the signals that need no embedder are in tests/unit/test_confidence.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.chains import load_chains
from graph.clean import clean_output
from graph.confidence import decide, problems, score
from graph.runtime.compute import embed

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
QUERY = "Analyze the streaming implementation patterns and identify potential performance bottlenecks"
DOCUMENT = (Path(__file__).parents[2] / "samples" / "streaming_orchestrator.py").read_text(encoding="utf-8")
TEMPLATE = "\n".join(
    [
        f"Query: {QUERY}",
        "Please provide a comprehensive code analysis including:",
        "1. Overview of the code's purpose and functionality",
        "2. Key components and their relationships",
        "3. Identified patterns or architectural decisions",
        "4. Potential issues or areas for improvement",
        "5. Specific recommendations with code examples where applicable",
        "Please add your perspective and insights.",
    ]
)
DEFAULT_THRESHOLD = load_chains().get("code").stages[1].min_confidence


def seed(n: int) -> str:
    return (FIXTURES / f"seed_model{n}.txt").read_text(encoding="utf-8")


def scored(n: int, earlier: dict[str, str]):
    raw = seed(n)
    text, removed = clean_output(raw, echoes=(TEMPLATE,))
    confidence, signals, closest = score(
        embed, text=text, raw=raw, removed=removed, status="ok", query=QUERY,
        document=DOCUMENT, earlier=earlier, token_probability=None,
    )  # fmt: skip
    return text, confidence, signals, closest


def test_seed_model2_loop_scores_under_the_threshold_through_hygiene():
    text, confidence, signals, _ = scored(2, {})
    assert "<EOS_TOKEN>" not in text
    assert signals["hygiene"] < 0.3  # three quarters of the raw output was the loop
    assert signals["relevance"] > 0.8 and signals["novelty"] == 1.0  # on topic, and first
    assert confidence < DEFAULT_THRESHOLD
    assert "was mostly template echo or repetition" in problems(signals, "")


def test_seed_model4_is_marked_a_copy_of_model3_and_scores_under_the_threshold():
    model3, conf3, _, _ = scored(3, {"code_analyst": clean_output(seed(2))[0]})
    _, conf4, signals, closest = scored(4, {"code_analyst": clean_output(seed(2))[0], "master_coder": model3})
    assert conf3 >= DEFAULT_THRESHOLD  # model 3 built on model 2 and passes
    assert closest == "master_coder" and signals["novelty"] < 0.2
    assert conf4 < DEFAULT_THRESHOLD
    assert problems(signals, closest) == ["repeated the master_coder stage"]


def test_an_answer_about_something_else_has_low_relevance():
    text = "Paris is the capital of France. Its bakeries sell croissants every morning."
    confidence, signals, _ = score(
        embed, text=text, raw=text, removed={}, status="ok", query=QUERY,
        document=DOCUMENT, earlier={}, token_probability=None,
    )  # fmt: skip
    assert signals["relevance"] < 0.2 and confidence < DEFAULT_THRESHOLD
    assert problems(signals, "") == ["was off the question"]


def test_todays_demo_stages_score_as_copies_and_echoes_and_are_never_passed():
    """`make demo` before the analysis rework (tests/fixtures/demo_0.5b_stages.json): five
    stages saying the same bullets, each paraphrasing its own instructions, all passed."""
    demo = json.loads((Path(__file__).parent.parent / "fixtures" / "demo_0.5b_stages.json").read_text())
    earlier: dict[str, str] = {}
    for n, stage in enumerate(demo["stages"]):
        confidence, signals, closest = score(
            embed, text=stage["text"], raw=stage["text"], removed={}, status="ok", query=demo["query"],
            document=DOCUMENT, earlier=earlier, token_probability=None, instructions=stage["instructions"],
        )  # fmt: skip
        verdict, reasons = decide("ok", confidence, signals, closest, DEFAULT_THRESHOLD, 1, 1)
        if n == 0:
            assert verdict == "pass" and signals["echo"] == 1.0  # the first stage has nothing to copy
        else:
            assert signals["novelty"] < 0.5 and closest, stage["stage"]  # a copy
            assert signals["echo"] < 0.5, stage["stage"]  # its own line restates its instructions
            assert verdict == "repeat" and "restated its own instructions" in reasons
            assert decide("ok", confidence, signals, closest, DEFAULT_THRESHOLD, 2, 1)[0] == "dropped"
        earlier[stage["stage"]] = stage["text"]


def test_a_summary_stitched_from_several_stages_sentences_is_a_copy():
    """The demo's synthesis took one sentence from each analyst: no single stage holds most
    of it, all of them together hold all of it."""
    earlier = {
        "cost": "- re-sent the whole context on every step, which is expensive and can lead to performance issues.",
        "resources": "- a list that only ever grows (no bound, trim or eviction) costs memory over the run.",
        "concurrency": "- blocking HTTP calls inside async def stop the whole event loop until they return.",
    }
    summary = (
        "- Re-sent the whole context on every step, which is expensive and can lead to performance issues. [#1]\n"
        "- A list that only ever grows (no bound, trim or eviction) costs memory over the run. [#3]\n"
        "- Blocking HTTP calls inside async def stop the whole event loop until they return. [#2]"
    )
    _, signals, closest = score(
        embed, text=summary, raw=summary, removed={}, status="ok", query=QUERY, document=DOCUMENT,
        earlier=earlier, token_probability=None,
    )  # fmt: skip
    assert signals["novelty"] < 0.5 and closest in earlier
    assert decide("ok", 0.9, signals, closest, DEFAULT_THRESHOLD, 1, 1)[0] == "repeat"
