"""Query typing and the stage router are pure functions."""

from __future__ import annotations

import pytest

from graph.routing import classify_query, next_stage


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
