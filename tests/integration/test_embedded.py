"""The real embedded models (llama.cpp: Qwen2.5-Coder-1.5B for the code chain, the 0.5B for
plumbing), end to end, with small token caps."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from graph import Context, build_graph
from graph.findings import confirmed
from graph.models import CODER, SMALL, get_llama

pytestmark = pytest.mark.integration
CODE_CHAIN = ["concurrency", "cost", "resources", "master_coder", "solution_architect", "synthesis"]
FAST = ["--embedded-model", "coder-0.5b"]  # plumbing tests: the small model is enough
QUERY = "Where is the performance bottleneck in this code?"


def test_code_chain_streams_every_stage_and_writes_a_full_report(checked_doc, tmp_path):
    context = Context(backend="embedded", max_tokens=24, reports_dir=str(tmp_path))
    tokens: list[tuple[str, str]] = []
    events = []
    for mode, data in build_graph().stream(
        {"query": QUERY, "document_path": str(checked_doc)},
        context=context,
        stream_mode=["messages", "custom"],
    ):
        if mode == "messages" and data[0].text:
            tokens.append((data[1]["langgraph_node"], str(data[0].text)))
            assert data[1]["mirador_model"] == CODER.name
        elif mode == "custom":
            events.append(data)
    nodes = [node for node, _ in tokens]
    assert [n for i, n in enumerate(nodes) if i == 0 or nodes[i - 1] != n] == CODE_CHAIN
    ends = [e for e in events if e["event"] == "stage_end"]
    skipped = {e["stage"] for e in events if e["event"] == "stage_skip"}
    assert skipped <= {"solution_architect"}  # the only optional stage of the code chain
    for stage in CODE_CHAIN:
        attempts = [e for e in ends if e["stage"] == stage]
        assert attempts or stage in skipped
        assert sum(e["tokens"] for e in attempts) == nodes.count(stage)  # a repeat streams again
        # 24 tokens hold a fix's "#1, line 59 / Before: … / After:" but not its code: a fix cut
        # off before its code block is no fix, so the fixes stage may end empty
        statuses = ("ok", "truncated", "empty") if stage == "master_coder" else ("ok", "truncated")
        for end in attempts:
            assert end["status"] in statuses, end
            assert end["backend"] == "embedded" and end["model"] == CODER.name
            assert 0 < end["first_token_s"] <= end["total_s"]
            assert 0 < end["tokens"] <= 24

    report = next(e for e in events if e["event"] == "report")
    md = Path(report["path"]).read_text(encoding="utf-8")
    facts = json.loads(Path(report["json_path"]).read_text(encoding="utf-8"))
    for header in ("**Type**: code", f"**Query**: {QUERY}", "**Timestamp**", "**Document**",
                   "**Analysis Chain**", "## Key Findings Summary", "## Stages"):  # fmt: skip
        assert header in md
    for stage in CODE_CHAIN:
        assert f"(`{stage}`)" in md
    assert list(dict.fromkeys(s["stage"] for s in facts["stages"])) == CODE_CHAIN
    assert facts["backends"] == ["embedded"]
    synthesis = [s for s in facts["stages"] if s["stage"] == "synthesis"][-1]
    if not any(confirmed(f) for f in facts["findings"]):  # nothing confirmed: nothing to summarise
        assert facts["summary"] == "" and "*No summary: no check fired" in md
    elif synthesis["verdict"] == "dropped":  # a copy, or cut off at 24 tokens: never the summary
        assert "In short" not in facts["summary"] and "The synthesis stage produced no usable summary" in md
    else:  # its answer, then the top findings it did not cite
        assert facts["summary"] and "produced no usable summary" not in md
    assert facts["first_token_s"] == ends[0]["first_token_s"]
    # Every stage that ran shows its measured confidence and each signal, llama.cpp's
    # token probability included.
    for stage in facts["stages"]:
        if stage["status"] == "skipped":
            continue
        assert 0.0 <= stage["confidence"] <= 1.0
        signals = stage["signals"]
        wanted = {"relevance", "novelty", "echo", "hygiene", "completeness", "token_probability"}
        if stage["status"] == "empty":  # no text: nothing to echo (graph.confidence.score)
            wanted.discard("echo")
        assert wanted <= set(signals), stage["stage"]
        assert all(0.0 <= v <= 1.0 for v in signals.values() if v is not None), signals
        assert signals["token_probability"] is not None
    # The checks ran before any model, and their findings are in the report as such.
    assert "## Found by checks" in md and facts["facts"] is not None
    assert "**Chain confidence**" in md


def test_cli_json_run_prints_the_summary_and_saves_the_report(sample_doc, tmp_path):
    mirador = Path(sys.executable).parent / "mirador"
    proc = subprocess.run(
        [
            str(mirador),
            "ask",
            "What does this code do?",
            "--document",
            str(sample_doc),
            "--chain",
            "streaming",
            "--backend",
            "embedded",
            "--max-tokens",
            "12",
            *FAST,
            "--json",
            "--reports-dir",
            str(tmp_path / "out"),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    facts = json.loads(proc.stdout)
    assert list(dict.fromkeys(s["stage"] for s in facts["stages"])) == ["quick", "deep_analysis", "synthesis"]
    assert Path(facts["report_path"]).is_file() and Path(facts["json_path"]).is_file()
    assert facts["report_path"].startswith(str(tmp_path / "out"))
    assert "[1/3] quick" in proc.stderr  # progress goes to stderr when stdout is JSON


def test_cli_follow_up_in_a_thread_sees_the_first_turn(sample_doc, tmp_path):
    mirador = Path(sys.executable).parent / "mirador"
    common = ["--chain", "streaming", "--backend", "embedded", "--max-tokens", "10", *FAST, "--json",
              "--thread", "demo-1", "--reports-dir", str(tmp_path)]  # fmt: skip
    first = subprocess.run([str(mirador), "ask", "What does this code do?", "--document", str(sample_doc), *common],
                           capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    second = subprocess.run([str(mirador), "ask", "How would you fix it?", *common],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert second.returncode == 0, second.stderr
    facts = json.loads(second.stdout)
    assert facts["follow_up"] is True and facts["turn"] == 2 and facts["thread"] == "demo-1"
    assert facts["document"] == str(sample_doc)  # the thread keeps its document
    report = Path(facts["report_path"]).read_text(encoding="utf-8")
    assert "**Follow-up**: turn 2 of thread `demo-1`, after “What does this code do?”" in report


def test_one_model_is_shared_and_two_concurrent_runs_both_finish(sample_doc, tmp_path):
    assert get_llama("coder-0.5b") is get_llama(SMALL.name) is not get_llama()
    graph = build_graph()
    outputs: list[dict] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            ctx = Context(backend="embedded", chain="streaming", max_tokens=8, embedded_model="coder-0.5b",
                          reports_dir=str(tmp_path / f"run{n}"))  # fmt: skip
            outputs.append(
                graph.invoke({"query": f"Explain run {n}", "document_path": str(sample_doc)}, context=ctx)
            )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors and len(outputs) == 2
    for out in outputs:
        assert {r["status"] for r in out["results"]} <= {"ok", "truncated", "skipped"}
        assert [r["stage"] for r in out["results"]][-1] == "synthesis"
        assert Path(out["report_path"]).is_file()


def test_a_cancelled_runs_token_stops_its_llama_call_and_no_other_run(sample_doc, tmp_path):
    from graph.runtime import compute

    graph = build_graph()
    ctx = Context(backend="embedded", chain="streaming", max_tokens=8, embedded_model="coder-0.5b",
                  reports_dir=str(tmp_path))  # fmt: skip
    inputs = {"query": "Explain this", "document_path": str(sample_doc)}
    token = threading.Event()
    token.set()  # cancelled before its first token: llama.cpp stops at the first part it makes
    with pytest.raises(compute.Cancelled):
        graph.invoke(inputs, context=ctx, config={"configurable": {compute.CANCEL_KEY: token}})
    assert not compute.cancelled()
    out = graph.invoke(inputs, context=ctx, config={"configurable": {compute.CANCEL_KEY: threading.Event()}})
    assert Path(out["report_path"]).is_file()


def test_two_mirador_processes_at_once_both_finish_with_their_own_reports(sample_doc, tmp_path):
    mirador = Path(sys.executable).parent / "mirador"
    args = [str(mirador), "ask", "What does this code do?", "--document", str(sample_doc), "--chain", "streaming",
            "--backend", "embedded", "--max-tokens", "8", *FAST, "--json", "--reports-dir", str(tmp_path)]  # fmt: skip
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    reports = {json.loads(out)["report_path"] for out, _ in outputs}
    assert len(reports) == 2 and all(Path(r).is_file() for r in reports)  # same query, same second: two names
