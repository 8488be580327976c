"""Confidence signals and the formula, on the old system's real outputs with the real embedder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from graph.chains import load_chains
from graph.clean import clean_output
from graph.confidence import chain_confidence, combine, decide, echo, hygiene, problems, score, span_overlap
from graph.runtime.compute import embed

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


def test_span_overlap_counts_shared_eight_word_spans():
    a = "one two three four five six seven eight nine ten"
    assert span_overlap(a, a) == 1.0
    assert span_overlap(a, "completely different words here and there and everywhere now") == 0.0
    assert span_overlap("too short", a) == 0.0
    assert span_overlap(a, "x one two three four five six seven eight y") == pytest.approx(1 / 3)


def test_hygiene_is_the_share_kept():
    assert hygiene("x" * 100, {"repetition": 25, "prompt_echo": 25}) == 0.5
    assert hygiene("", {}) == 1.0


def test_combine_caps_at_the_weakest_signal_and_scales_by_completeness():
    good = {"relevance": 0.9, "novelty": 0.9, "hygiene": 1.0, "completeness": 1.0, "token_probability": 0.8}
    # weights relevance 0.2, novelty 0.25, hygiene 0.1, token probability 0.15 (echo, grounding absent)
    assert combine(good, "ok") == pytest.approx((0.18 + 0.225 + 0.1 + 0.12) / 0.7, abs=1e-3)
    assert combine({**good, "novelty": 0.05}, "ok") == pytest.approx(0.2)  # 0.05 + 0.15 cap
    assert combine(good, "truncated") == pytest.approx(0.8 * combine(good, "ok"), abs=1e-3)
    assert combine({**good, "token_probability": None}, "ok") == pytest.approx(
        (0.18 + 0.225 + 0.1) / 0.55, abs=1e-3
    )
    assert combine({**good, "echo": 1.0, "grounding": 0.0}, "ok") == pytest.approx(0.15)  # weakest + 0.15
    assert combine(good, "empty") == 0.0


def test_chain_confidence_uses_best_attempts_and_ignores_skips():
    def r(stage, confidence, status="ok"):
        return {"stage": stage, "confidence": confidence, "status": status}

    results = [r("a", 0.2), r("a", 0.8), r("b", 0.6), r("c", None, "skipped"), r("d", 0.0, "error")]
    assert chain_confidence(results) == pytest.approx((0.8 + 0.6 + 0.0) / 3, abs=1e-3)
    assert chain_confidence([]) == 0.0


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


def test_decide_passes_repeats_keeps_drops_and_fails():
    good = {"novelty": 0.9, "echo": 1.0, "relevance": 0.8, "hygiene": 1.0, "completeness": 1.0}
    assert decide("ok", 0.8, good, "a", 0.45, 1, 1) == ("pass", ())
    assert decide("ok", 0.3, {**good, "relevance": 0.1}, "a", 0.45, 1, 1) == (
        "repeat",
        ("was off the question",),
    )
    assert decide("ok", 0.3, {**good, "relevance": 0.5}, "a", 0.45, 1, 1) == ("repeat", ("scored low",))
    assert decide("ok", 0.3, {**good, "relevance": 0.1}, "a", 0.45, 2, 1)[0] == "kept"
    assert decide("ok", 0.9, {**good, "novelty": 0.2}, "a", 0.45, 2, 1) == (
        "dropped",
        ("repeated the a stage",),
    )
    assert decide("timeout", 0.5, good, "", 0.45, 1, 1) == ("failed", ("timeout",))
    assert decide("error", 0.0, good, "", 0.45, 1, 1)[0] == "failed"


def test_an_answer_that_restates_the_question_is_not_an_echo():
    instructions = (
        'You are the synthesis. Answer the question "Where is the performance bottleneck in this code?"'
    )
    answer = "The performance bottleneck in this code is the blocking requests.post call in warm_up."
    assert echo(answer, instructions, query="Where is the performance bottleneck in this code?") == 1.0
    told = "The synthesis answers the question in one sentence, then three to five bullets."
    assert (
        echo(told, "You are the synthesis. Answer the question in one sentence, then three to five bullets.")
        == 0.0
    )


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
