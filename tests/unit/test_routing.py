"""Query typing and the stage router are pure functions."""

from __future__ import annotations

import pytest

from graph.routing import classify_query, next_stage, route_after_stage


@pytest.mark.parametrize(
    ("query", "document", "expected"),
    [
        ("Why is this slow?", "src/app.py", "code"),
        ("Summarise it", "notes/plan.go", "code"),
        ("Find the bottleneck in the streaming implementation", "", "code"),
        ("Compare Postgres versus SQLite for this", "", "comparison"),
        ("Write a status report for the team", "", "report"),
        ("What does the literature say about sleep?", "", "research"),
        ("Summarise this chapter", "", "document"),
        ("What are the main points?", "paper.md", "document"),
        ("Should I accept the offer from Berlin?", "", "decision"),
        ("Should I tour in spring or finish the album first?", "", "decision"),
        ("What should I focus on this year with my music?", "", "personal"),
        ("What are the pros and cons of renting", "", "decision"),
        ("How do I keep my habits going?", "", "personal"),
        ("Hello there", "", "general"),
    ],
)
def test_classify_query(query, document, expected):
    query_type, reasons = classify_query(query, document)
    assert query_type == expected
    assert reasons and all(isinstance(r, str) and r for r in reasons)


def test_classification_is_deterministic():
    assert classify_query("Compare A vs B", "") == classify_query("Compare A vs B", "")


PLAN = {"plan": [{"name": "a"}, {"name": "b"}, {"name": "synthesis"}]}


def test_next_stage_walks_the_plan_then_reports():
    assert next_stage(PLAN, None) == "a"
    assert next_stage(PLAN, "a") == "b"
    assert next_stage(PLAN, "b") == "synthesis"
    assert next_stage(PLAN, "synthesis") == "report"


def test_next_stage_refuses_a_stage_outside_the_plan():
    with pytest.raises(ValueError, match="not in the plan"):
        next_stage(PLAN, "z")


def _state(*verdicts):
    plan = [{"name": "a"}, {"name": "synthesis"}]
    return {"plan": plan, "results": [{"stage": "a", "verdict": v} for v in verdicts]}


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["pass"], "synthesis"),
        (["repeat"], "a"),  # the decision on the last attempt is all the router reads
        (["repeat", "pass"], "synthesis"),
        (["repeat", "kept"], "synthesis"),  # repeat limit reached
        (["repeat", "dropped"], "synthesis"),  # a copy at its limit: dropped, the chain goes on
        (["failed"], "synthesis"),  # failures are not repeated
        (["skipped"], "synthesis"),
    ],
)
def test_route_after_stage_follows_the_decision(verdicts, expected):
    assert route_after_stage(_state(*verdicts), "a") == expected


def test_route_after_stage_refuses_a_stage_that_has_not_run():
    with pytest.raises(ValueError, match="no result"):
        route_after_stage(_state(), "a")


def test_nearest_labelled_example_decides_when_no_word_does():
    from tests.fakes import bow_embed

    query_type, reasons = classify_query("Tell me a fun fact", "", bow_embed)
    assert query_type == "general" and "close to the general example" in reasons[0]
    query_type, reasons = classify_query("Which of these two apartments should we rent?", "", bow_embed)
    assert query_type == "decision" and "close to the decision example" in reasons[0]
    # Too far from every example: the rules' fallback stands.
    assert classify_query("zzz qqq", "", bow_embed)[0] == "general"
    assert classify_query("zzz qqq", "notes.txt", bow_embed)[0] == "document"
