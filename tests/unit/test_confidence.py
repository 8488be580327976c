"""Confidence signals and the formula with no embedder. The signals on real outputs, scored
with the real MiniLM, are in tests/integration/test_confidence_embeddings.py."""

from __future__ import annotations

import pytest

from graph.confidence import chain_confidence, combine, decide, echo, hygiene, span_overlap


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
