"""The markdown report and its JSON twin."""

from __future__ import annotations

import json

import pytest

from graph.report import group_notes, render_markdown, write_report


def result(stage, role="stage", text=None, **extra):
    base = {
        "stage": stage, "title": stage.title(), "role": role, "model": "m1", "backend": "embedded",
        "text": f"{stage} finding" if text is None else text, "status": "ok", "error": "", "first_token_s": 0.5,
        "total_s": 2.0, "tokens": 40, "tokens_per_s": 20.0, "removed": {}, "attempt": 1, "note": "",
        "confidence": 0.7, "signals": {"relevance": 0.9, "novelty": 1.0, "hygiene": 1.0, "completeness": 1.0,
        "token_probability": None}, "verdict": "pass", "reasons": [], "findings": [], "verdicts": [],
        "set_aside": [],
    }  # fmt: skip
    return {**base, **extra}


@pytest.fixture
def state():
    return {
        "query": "Why is it slow?",
        "query_type": "code",
        "query_type_reasons": ["document is source code (.py)"],
        "document_path": "src/app.py",
        "chain": "code",
        "plan": [{"name": "analyst"}, {"name": "coder"}, {"name": "synthesis"}],
        "backend_notes": ["analyst: embedded (requested)"],
        "started_at": "2026-11-21T10:00:00+00:00",
        "results": [
            result("analyst", removed={"after_end_token": 12}),
            result("coder", status="error", error="TimeoutError: slow", text="", verdict="failed"),
            result("synthesis", role="synthesis", text="- Cache it [analyst]"),
        ],
        "errors": ["coder: TimeoutError: slow"],
        "summary": "- Cache it [analyst]",
    }


def test_markdown_has_the_old_header_fields_stages_and_summary(state):
    md = render_markdown(state)
    for line in (
        "**Type**: code",
        "**Query**: Why is it slow?",
        "**Timestamp**: 2026-11-21T10:00:00+00:00",
        "**Document**: src/app.py",
        "**Analysis Chain**: code — analyst → coder → synthesis",
    ):
        assert line in md
    summary = md.index("## Key Findings Summary")
    assert md.index("- Cache it [analyst]") > summary
    assert "*Written by the synthesis stage from: `analyst`.*" in md  # the failed coder gave nothing
    assert "### 1. Analyst (`analyst`) — model `m1`" in md
    assert "first token 0.50 s" in md and "40 tokens" in md
    assert "> **Error:** TimeoutError: slow" in md and "*(no output)*" in md
    assert "*Cleaned: after_end_token 12 chars.*" in md
    assert "## Errors" in md


def test_missing_summary_is_said_not_invented(state):
    state["results"][-1]["text"] = ""
    state["summary"] = ""
    assert "*The synthesis stage produced no usable summary; see the findings" in render_markdown(state)


def test_a_dropped_summary_says_why_and_lists_the_top_findings(state):
    """The demo's synthesis pasted line 63's comment twice; the report said only that it had no
    usable summary, which read as a failure of the whole run above a good list of findings."""
    state["results"][-1].update(
        verdict="dropped",
        reasons=["pasted the comment on line 63 instead of saying in its own words what is wrong"],
    )
    state["summary"] = "- Line 42: a blocking HTTP call inside async def [#1]"
    md = render_markdown(state)
    assert (
        "*The synthesis stage produced no usable summary (it pasted the comment on line 63 instead of saying in "
        "its own words what is wrong). The top findings, as the checks and stages ranked them:*\n\n"
        "- Line 42: a blocking HTTP call inside async def [#1]"
    ) in md
    assert "- Cache it [analyst]" not in md.split("## Stages")[0]


def test_write_report_writes_both_files_atomically_and_never_overwrites(state, tmp_path):
    md, js = write_report(state, tmp_path / "reports")
    facts = json.loads(js.read_text(encoding="utf-8"))
    assert md.name == "20261121T100000_code_why-is-it-slow.md"
    assert facts["report_path"] == str(md) and facts["json_path"] == str(js)
    assert [s["stage"] for s in facts["stages"]] == ["analyst", "coder", "synthesis"]
    assert facts["stages"][0]["first_token_s"] == 0.5 and "text" not in facts["stages"][0]
    assert facts["first_token_s"] == 0.5 and facts["total_s"] == 6.0
    assert facts["backends"] == ["embedded"] and facts["summary"] == "- Cache it [analyst]"
    md2, _ = write_report(state, tmp_path / "reports")
    assert md2.name == "20261121T100000_code_why-is-it-slow-2.md"
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == sorted(
        [md.name, js.name, md2.name, md2.with_suffix(".json").name]
    )  # no temporary files left behind


def test_backend_notes_are_grouped_by_decision():
    notes = [
        "a: embedded (no Ollama server answered at U)",
        "b: ollama at U",
        "c: embedded (no Ollama server answered at U)",
    ]
    assert group_notes(notes) == ["embedded (no Ollama server answered at U): a, c", "ollama at U: b"]


def test_skips_repeats_and_confidence_are_in_the_report_and_json(state, tmp_path):
    first = result("analyst", confidence=0.2, note="repeated: repeated the context stage")
    second = result("analyst", attempt=2, confidence=0.7, text="better finding")
    skipped = result("coder", status="skipped", text="", confidence=None, signals={},
                     note="skipped: does not apply to general queries")  # fmt: skip
    state["results"] = [first, second, skipped, result("synthesis", role="synthesis")]
    state["errors"] = []
    md = render_markdown(state)
    assert "attempt 1: 0.20 (repeated: repeated the context stage); attempt 2: 0.70 (kept)" in md
    assert "better finding" in md and "analyst finding" not in md  # the best attempt is shown
    assert "*Skipped: does not apply to general queries.*" in md
    assert "confidence **0.70** (relevance 0.90, novelty 1.00, hygiene 1.00, completeness 1.00)" in md
    assert "**Chain confidence**: 0.70" in md  # mean of analyst 0.7 and synthesis 0.7
    _, js = write_report(state, tmp_path)
    facts = json.loads(js.read_text(encoding="utf-8"))
    assert [(s["stage"], s["attempt"], s["kept"]) for s in facts["stages"]] == [
        ("analyst", 1, False), ("analyst", 2, True), ("coder", 1, True), ("synthesis", 1, True)
    ]  # fmt: skip
    assert facts["chain_confidence"] == 0.7


def test_runs_finishing_at_once_never_share_a_report_name(state, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = list(pool.map(lambda _: write_report(state, tmp_path)[0], range(8)))
    assert len(set(paths)) == 8 and all(p.is_file() for p in paths)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # claims released
