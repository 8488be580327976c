"""The compiled graph with scripted chat models: every edge (order, skip, repeat, failure,
timeout, routing), what each stage receives, and the streams."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from graph import build_graph
from graph.chains import load_chains
from graph.findings import fixes_grammar, summary_grammar
from graph.runtime import compute
from tests.fakes import Script, bow_embed, chains, default_reply

CODE_CHAIN = ["concurrency", "cost", "resources", "master_coder", "solution_architect", "synthesis"]
ANALYSTS = CODE_CHAIN[:3]
QUERY = "Where are the performance bottlenecks in the streaming code?"
OFF_TOPIC = "Paris is the capital of France, famous for croissants and the Eiffel tower."
# The sample document's line 5 (tests/conftest.py), as an analyst would cite it.
FINDING = "- `context = context + stage.run(query)`: the context is rebuilt on every stage, quadratic in its length. Fix: collect parts in a list and join once."

# Two analysts cite it: a confirmed finding, which the summary draws on (one analyst's alone is a
# lead, and a run with only leads has no summary).
AGREED = {
    "cost": FINDING,
    "resources": "- `context = context + stage.run(query)`: each pass copies the whole string again, so "
    "memory churns with the stage count. Fix: append the parts to a list and join them at the end.",
}


def run(script, context, chain_set=None, **inputs):
    graph = build_graph(chat_model_factory=script, embedder=bow_embed, chains=chain_set or chains())
    return graph.invoke({"query": QUERY, **inputs}, context=context)


def by_stage(out):
    return {r["stage"]: r for r in out["results"]}


def test_code_chain_runs_its_stages_in_order_and_writes_the_report(checked_doc, context):
    script = Script()
    out = run(script, context, document_path=str(checked_doc))
    assert script.stages_called() == CODE_CHAIN
    assert [r["stage"] for r in out["results"]] == CODE_CHAIN
    assert out["chain"] == "code" and out["query_type"] == "code"
    for r in out["results"]:
        assert r["status"] == "ok" and r["backend"] == "embedded" and r["attempt"] == 1
        assert r["verdict"] == "pass" and r["confidence"] >= 0.45
        assert set(r["signals"]) >= {"relevance", "novelty", "echo", "hygiene"}
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    for stage in CODE_CHAIN:
        assert f"(`{stage}`)" in report
    assert "## Found by checks" in report
    # the check's finding (line 11) is listed under the synthesis' answer
    assert "Line 11 in `StreamingOrchestrator.pause`: time.sleep() inside async def" in out["summary"]
    facts = json.loads(Path(out["json_path"]).read_text(encoding="utf-8"))
    assert [s["stage"] for s in facts["stages"]] == CODE_CHAIN
    assert all(
        s["kept"] and s["confidence"] == by_stage(out)[s["stage"]]["confidence"] for s in facts["stages"]
    )
    assert facts["report_path"] == out["report_path"]


def test_models_are_prewarmed_once_before_the_first_stage_runs_which_uses_them(sample_doc, context):
    script = Script()
    run(script, context, document_path=str(sample_doc))
    first_call = script.log.index(("call", "concurrency"))
    # Every stage maps to the one embedded model: `prepare` builds it once, for the first
    # stage, which then uses that one (graph.resources); each later stage builds its own.
    assert script.log[:first_call] == [("build", "concurrency")]
    assert {s.model for s in script.built} == {script.built[0].model}
    assert sorted(s.name for s in script.built) == sorted(set(script.stages_called()))


def test_every_stage_starts_with_the_same_material_and_analysts_see_no_other_stage(sample_doc, context):
    script = Script(AGREED)
    run(script, context, document_path=str(sample_doc))
    prompts = {stage: script.messages_for(stage) for stage in CODE_CHAIN}
    first = prompts["concurrency"]
    assert isinstance(first[0], SystemMessage) and isinstance(first[1], HumanMessage) and len(first) == 2
    material = str(first[1].content).split(f"Question: {QUERY}")[0]
    assert '<document source="' in material and "            context = context + stage.run(query)" in material
    for messages in prompts.values():
        # The same system prompt and material first: llama.cpp reuses that prefix's KV cache.
        assert messages[0].content == first[0].content and str(messages[1].content).startswith(material)
    for stage in ANALYSTS:
        told = str(prompts[stage][1].content)
        assert "Answer with one to three problems of your kind" in told
        assert not any(default_reply(other) in told for other in CODE_CHAIN)  # nothing to copy
    # The stages after the analysts build on the merged findings, not on the analysts' prose.
    for stage in ("master_coder", "solution_architect"):
        told = str(prompts[stage][1].content)
        assert "<findings>" in told and "**line 5 in `StreamingOrchestrator.process`**" in told
        assert "the context is rebuilt on every stage" in told
        assert default_reply("concurrency") not in told
    # The synthesis sees where each finding is and its code, not its words: it cannot paste them.
    told = str(prompts["synthesis"][1].content)
    assert "1. in `StreamingOrchestrator.process` (line 5): `context = context + stage.run(query)" in told
    assert "the context is rebuilt on every stage" not in told and default_reply("cost") not in told


def test_an_analysts_findings_are_grounded_in_the_document(sample_doc, context):
    invented = "- Line 3 `time.sleep(5)`: sleeps in the loop. Fix: remove it."  # the file has no such code
    out = run(Script({"cost": FINDING + "\n" + invented}), context, document_path=str(sample_doc))
    cost = by_stage(out)["cost"]
    assert [(f["line"], f["function"], f["found_by"]) for f in cost["findings"]] == [
        (5, "StreamingOrchestrator.process", ["cost"])
    ]
    assert [(f["code"], f["reason"]) for f in cost["set_aside"]] == [
        ("time.sleep(5)", "the document has no such code")
    ]
    assert cost["signals"]["grounding"] == 0.5
    assert any(f["line"] == 5 and "cost" in f["found_by"] for f in out["findings"])
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    # one analyst's finding, which no check confirms, is listed apart as a lead, not as a fact
    head = report.split("## Stages")[0]
    assert (
        "## Findings, most important first" not in head and "## Unconfirmed: one analyst's findings" in head
    )
    assert "1. **line 5 in `StreamingOrchestrator.process`** — `context = context + stage.run(query)" in head
    assert "time.sleep(5)" not in head
    assert (
        "Set aside, not reported as findings: line 3 `time.sleep(5)` (the document has no such code)"
        in report
    )


def test_a_wrong_line_number_is_corrected_to_where_the_code_is(sample_doc, context):
    out = run(Script({"cost": FINDING.replace("- `", "- Line 2 `")}), context, document_path=str(sample_doc))
    assert [f["line"] for f in by_stage(out)["cost"]["findings"]] == [5]


def test_the_checks_findings_reach_the_analysts_and_a_dispute_is_recorded(tmp_path, context):
    doc = tmp_path / "fetch.py"
    doc.write_text("import requests\n\n\ndef fetch_all(urls):\n    out = []\n    for url in urls:\n"
                   "        out.append(requests.get(url).json())\n    return out\n", encoding="utf-8")  # fmt: skip
    script = Script({"cost": "- Check 1 is not a problem here: callers pass three fixed URLs known at startup.\n"
                             "- `for url in urls:`: one URL at a time. Fix: fetch them concurrently."})  # fmt: skip
    out = run(script, context, document_path=str(doc))
    assert {(f["rule"], f["kind"], f["line"]) for f in out["findings"] if f["rule"]} == {
        ("S113", "resources", 7),
        ("MIR007", "cost", 7),
    }
    told = {stage: str(script.messages_for(stage)[1].content) for stage in ANALYSTS}
    assert (
        "do not list them again):\n1. line 7 `out.append(requests.get(url).json())`: one HTTP request"
        in told["cost"]
    )
    assert "no timeout" in told["resources"] and "no timeout" not in told["cost"]
    assert "The checks found no problem of your kind." in told["concurrency"]
    n_plus_one = next(f for f in out["findings"] if f["rule"] == "MIR007")
    assert n_plus_one["disputed_by"] == ["cost: callers pass three fixed URLs known at startup."]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert (
        "## Found by checks" in report and "| MIR007 | 7 | `out.append(requests.get(url).json())` |" in report
    )
    assert "*(disputed: cost: callers pass three fixed URLs known at startup.)*" in report


def test_a_dispute_with_no_reason_of_its_own_is_not_recorded(tmp_path, context):
    doc = tmp_path / "fetch.py"
    doc.write_text("import requests\n\n\ndef fetch_all(urls):\n    out = []\n    for url in urls:\n"
                   "        out.append(requests.get(url).json())\n    return out\n", encoding="utf-8")  # fmt: skip
    empty = '- Check 1 is not a problem here: "is not a problem here:" because\n'
    out = run(Script({"cost": empty + "- `for url in urls:`: one at a time. Fix: fetch concurrently."}),
              context, document_path=str(doc))  # fmt: skip
    assert all(not f["disputed_by"] for f in out["findings"])


def test_synthesis_is_told_which_stages_it_draws_on(checked_doc, context):
    script = Script()
    run(script, context, document_path=str(checked_doc))
    instructions = script.messages_for("synthesis")[-1].content
    assert "concurrency, cost, resources, master_coder, solution_architect" in instructions
    assert "failed" not in instructions


def test_stream_carries_tokens_by_stage_timed_stage_events_and_confidence(checked_doc, context):
    graph = build_graph(chat_model_factory=Script(), embedder=bow_embed, chains=chains())
    token_nodes, events, updated = [], [], []
    for mode, data in graph.stream(
        {"query": QUERY, "document_path": str(checked_doc)},
        context=context,
        stream_mode=["messages", "updates", "custom"],
    ):
        if mode == "messages":
            chunk, meta = data
            if chunk.text:
                token_nodes.append(meta["langgraph_node"])
                assert meta["mirador_stage"] == meta["langgraph_node"]
                assert meta["mirador_model"] and meta["mirador_backend"] == "embedded"
        elif mode == "custom":
            events.append(data)
        else:
            updated.extend(data)
    order = [n for i, n in enumerate(token_nodes) if i == 0 or token_nodes[i - 1] != n]
    assert order == CODE_CHAIN
    assert all(token_nodes.count(stage) > 3 for stage in CODE_CHAIN)
    starts = [e for e in events if e["event"] == "stage_start"]
    ends = [e for e in events if e["event"] == "stage_end"]
    assert [e["stage"] for e in starts] == [e["stage"] for e in ends] == CODE_CHAIN
    for end in ends:
        assert end["first_token_s"] is not None and end["total_s"] >= end["first_token_s"]
        assert end["tokens"] > 3 and end["model"] and end["backend"] == "embedded"
        assert 0.0 <= end["confidence"] <= 1.0 and end["verdict"] == "pass"
        assert {"relevance", "novelty", "echo", "hygiene", "completeness", "token_probability"} <= set(
            end["signals"]
        )
    assert events[0]["event"] == "plan" and events[1]["event"] == "facts" and events[-1]["event"] == "report"
    assert updated == ["prepare", "facts", "retrieve", *CODE_CHAIN, "report"]


def test_token_probability_reaches_the_signals_when_the_backend_gives_it(checked_doc, context):
    out = run(Script(token_probability=0.9), context, document_path=str(checked_doc))
    assert {r["signals"]["token_probability"] for r in out["results"]} == {0.9}


# --- conditional edges -------------------------------------------------------------------


def test_a_copy_of_an_earlier_stage_is_repeated_with_a_correction_then_passes(checked_doc, context):
    script = Script({"master_coder": [default_reply("cost"), default_reply("master_coder")]})
    out = run(script, context, document_path=str(checked_doc))
    assert script.stages_called() == [*CODE_CHAIN[:4], "master_coder", *CODE_CHAIN[4:]]
    first, second = [r for r in out["results"] if r["stage"] == "master_coder"]
    assert first["signals"]["novelty"] < 0.2 and first["verdict"] == "repeat"
    assert first["reasons"][0] == "repeated the cost stage"
    assert first["note"].startswith("repeated: repeated the cost stage")
    assert second["attempt"] == 2 and second["verdict"] == "pass" and second["note"] == ""
    retry = script.messages_for("master_coder", attempt=2)[-1].content
    assert "set aside because it repeated the cost stage" in retry
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert "attempt 1:" in report and "(kept)" in report


def test_a_stage_that_still_copies_at_its_limit_is_dropped_never_passed_on(sample_doc, context):
    script = Script({"master_coder": default_reply("cost")})
    # a check's finding (S113), so that the report has a summary to say whom it drew on
    sample_doc.write_text(sample_doc.read_text(encoding="utf-8") + "\nimport requests\n\n\ndef ping(url):\n"
                          "    return requests.get(url)\n", encoding="utf-8")  # fmt: skip
    out = run(script, context, document_path=str(sample_doc))
    assert out["facts"]
    attempts = [r for r in out["results"] if r["stage"] == "master_coder"]
    assert [a["verdict"] for a in attempts] == ["repeat", "dropped"]
    assert attempts[1]["note"].startswith("dropped at its repeat limit: repeated the cost stage")
    assert default_reply("cost") not in str(script.messages_for("synthesis")[1].content).split("Question:")[1]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    drawn = report.split("*Written by the synthesis stage from: ")[1].split("*")[0]
    assert "master_coder" not in drawn


def test_a_stage_that_restates_its_instructions_is_an_echo_and_is_repeated(sample_doc, context):
    echo = (
        "- The master coder writes the fix: the changed lines of this code in a python block.\n"
        "- For the two or three most important findings, one sentence on why it helps; show the code."
    )
    out = run(
        Script({"master_coder": [echo, default_reply("master_coder")]}),
        context,
        document_path=str(sample_doc),
    )
    first = [r for r in out["results"] if r["stage"] == "master_coder"][0]
    assert first["signals"]["echo"] < 0.5 and first["verdict"] == "repeat"
    assert "restated its own instructions" in first["reasons"]


def test_repeat_limit_reached_keeps_the_best_attempt_and_goes_on(checked_doc, context):
    script = Script({"cost": OFF_TOPIC})
    out = run(script, context, document_path=str(checked_doc))
    attempts = [r for r in out["results"] if r["stage"] == "cost"]
    assert [a["attempt"] for a in attempts] == [1, 2]  # max_repeats = 1
    assert [a["verdict"] for a in attempts] == ["repeat", "kept"]
    assert attempts[0]["note"] == "repeated: was off the question"
    assert attempts[1]["note"] == "kept at its repeat limit: was off the question"
    assert script.stages_called().count("cost") == 2
    assert script.stages_called()[-3:] == ["master_coder", "solution_architect", "synthesis"]


def test_no_repeat_when_the_stage_allows_none(sample_doc, context):
    chain_set = chains(cost={"max_repeats": 0})
    out = run(Script({"cost": OFF_TOPIC}), context, chain_set, document_path=str(sample_doc))
    analyst = [r for r in out["results"] if r["stage"] == "cost"]
    assert len(analyst) == 1 and analyst[0]["verdict"] == "kept"


def test_optional_stage_is_skipped_once_the_chain_reaches_its_early_exit(sample_doc, context):
    script = Script()
    out = run(script, context, chains(early_exit=0.5), document_path=str(sample_doc))
    assert "solution_architect" not in script.stages_called()
    skipped = by_stage(out)["solution_architect"]
    assert (
        skipped["status"] == "skipped" and skipped["confidence"] is None and skipped["verdict"] == "skipped"
    )
    assert (
        skipped["note"].startswith("skipped: chain confidence") and "early-exit level 0.50" in skipped["note"]
    )
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert "*Skipped: chain confidence" in report


def test_optional_stage_runs_while_the_chain_is_under_its_early_exit(sample_doc, context):
    script = Script({"concurrency": OFF_TOPIC})  # drags the chain's confidence down
    run(script, context, chains(early_exit=0.9), document_path=str(sample_doc))
    assert "solution_architect" in script.stages_called()


def test_stage_that_does_not_apply_to_the_query_type_is_skipped(context):
    context.chain = "code"  # a general question on the code chain: master_coder is for code only
    script = Script()
    out = run(script, context, query="Tell me a fun fact")
    assert out["query_type"] == "general"
    assert "master_coder" not in script.stages_called()
    assert by_stage(out)["master_coder"]["note"] == "skipped: does not apply to general queries"


def test_a_failing_stage_is_recorded_and_the_chain_goes_on(checked_doc, context):
    script = Script(failures={"master_coder": ConnectionError("connection refused")})
    out = run(script, context, document_path=str(checked_doc))
    coder = by_stage(out)["master_coder"]
    assert coder["status"] == "error" and coder["confidence"] == 0.0 and coder["verdict"] == "failed"
    assert "connection refused" in coder["error"]
    assert out["errors"] == ["master_coder: ConnectionError: connection refused"]
    assert script.stages_called() == CODE_CHAIN  # an error is not repeated
    assert "These specialists failed and gave nothing: master_coder (error)" in (
        script.messages_for("synthesis")[-1].content
    )
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert "Error:** ConnectionError: connection refused" in report
    assert "*Failed stages: `master_coder` (error).*" in report


def test_a_stage_past_its_timeout_is_stopped_recorded_and_the_chain_goes_on(checked_doc, context):
    """The cost model holds its answer on an event nobody sets for twice its stage's 0.05 s:
    its first token comes after the timeout however busy the machine, so the stage stops
    at exactly that token (run_model checks the time as each token arrives)."""
    held = threading.Event()

    def answers_late(script):
        held.wait(0.1)
        return default_reply("cost")

    chain_set = chains(cost={"timeout_s": 0.05})
    script = Script({"cost": answers_late})
    out = run(script, context, chain_set, document_path=str(checked_doc))
    analyst = by_stage(out)["cost"]
    assert analyst["status"] == "timeout" and analyst["error"] == "stopped after 0.05 s"
    assert analyst["tokens"] == 1 and analyst["text"] == "cost" and analyst["first_token_s"] > 0.05
    assert script.stages_called() == CODE_CHAIN  # not repeated
    assert out["errors"] == ["cost: stopped after 0.05 s"]


# --- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "document", "chain"),
    [
        ("Compare Rust versus Go for a CLI", False, "comparison"),
        ("Write a status report on the migration", False, "report"),
        ("What is the history of the printing press?", False, "research"),
        ("Summarise this", True, "code"),  # a .py document makes it a code question
        ("How are you today?", False, "streaming"),
    ],
)
def test_chain_is_routed_from_the_query_type(query, document, chain, sample_doc, context):
    script = Script()
    inputs = {"query": query, **({"document_path": str(sample_doc)} if document else {})}
    out = build_graph(chat_model_factory=script, embedder=bow_embed).invoke(inputs, context=context)
    assert out["chain"] == chain
    called = list(dict.fromkeys(script.stages_called()))
    ran = [r["stage"] for r in out["results"] if r["status"] != "skipped"]
    assert called == list(dict.fromkeys(ran))
    assert [r["stage"] for r in out["results"] if r["attempt"] == 1] == [
        s.name for s in load_chains().get(chain).stages
    ]


def test_a_named_chain_overrides_the_router(sample_doc, context):
    context.chain = "streaming"
    script = Script()
    out = run(script, context, document_path=str(sample_doc))
    assert script.stages_called() == ["quick", "deep_analysis", "synthesis"]
    assert out["query_type"] == "code"  # still typed, only the chain differs


def test_max_tokens_override_reaches_every_stage(sample_doc, context):
    context.max_tokens = 7
    script = Script()
    run(script, context, document_path=str(sample_doc))
    assert {s.max_tokens for s in script.built} == {7}


def test_stage_output_is_cleaned_before_the_next_stage_sees_it(sample_doc, context):
    leaked = FINDING + "<EOS_TOKEN><EOS_TOKEN>\n\nQuery: " + QUERY
    script = Script({"cost": leaked})
    out = run(script, context, document_path=str(sample_doc))
    analyst = by_stage(out)["cost"]
    assert analyst["text"] == FINDING
    assert analyst["removed"]["after_end_token"] == len(leaked) - len(FINDING)
    assert analyst["signals"]["hygiene"] < 1.0
    seen = str(script.messages_for("master_coder")[1].content)
    assert "quadratic in its length. Fix: collect parts" in seen and "EOS" not in seen


def test_document_chain_stages_build_on_the_earlier_stages_quoted_notes(tmp_path, context):
    doc = tmp_path / "essay.md"
    doc.write_text("# Remote work\n\nTeams that write things down scale better.\n", encoding="utf-8")
    script = Script()
    run(script, context, document_path=str(doc), query="What are the main points of this text?")
    critic = str(script.messages_for("critic")[1].content)
    assert '<notes from="Document analyst">' in critic and default_reply("document_analyst") in critic
    assert "Answer with one to three problems of your kind" not in critic


def test_a_document_chains_summary_says_which_stage_each_sentence_draws_on(tmp_path, context):
    doc = tmp_path / "essay.md"
    doc.write_text("# Remote work\n\nTeams that write things down scale better.\n", encoding="utf-8")
    analyst = "- The essay argues that teams writing decisions down scale better than teams that talk."
    answer = "In short, the essay claims written decisions let teams scale better than talking does."
    script = Script({"document_analyst": analyst, "synthesis": answer})
    out = run(script, context, document_path=str(doc), query="What are the main points of this text?")
    assert out["summary"] == answer + " [`document_analyst`]"
    assert 'Start with "In short,"' in str(script.messages_for("synthesis")[1].content)


def test_bad_document_fails_before_any_model_runs(tmp_path, context):
    script = Script()
    with pytest.raises(ValueError, match="document not found"):
        run(script, context, document_path=str(tmp_path / "missing.py"))
    assert script.calls == []


def test_topology_matches_the_snapshot():
    drawn = build_graph(chat_model_factory=Script(), embedder=bow_embed).get_graph().draw_mermaid()
    snapshot = Path(__file__).parents[1] / "snapshots" / "graph.mmd"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":  # then review the diff like code
        snapshot.write_text(drawn, encoding="utf-8")
    assert drawn == snapshot.read_text(encoding="utf-8"), "topology changed: UPDATE_SNAPSHOTS=1"


# --- session memory ------------------------------------------------------------------------


def test_a_follow_up_in_the_same_thread_sees_the_earlier_turn_across_processes(sample_doc, context, tmp_path):
    from graph.memory import open_checkpointer

    db = tmp_path / "threads.sqlite"
    config = {"configurable": {"thread_id": "t1"}}
    first = Script()
    graph = build_graph(
        chat_model_factory=first, embedder=bow_embed, chains=chains(), checkpointer=open_checkpointer(db)
    )
    out1 = graph.invoke({"query": QUERY, "document_path": str(sample_doc)}, config, context=context)
    # A second graph with its own connection: what another process would see.
    second = Script()
    graph2 = build_graph(
        chat_model_factory=second, embedder=bow_embed, chains=chains(), checkpointer=open_checkpointer(db)
    )
    out2 = graph2.invoke({"query": "And how would you fix the worst one?"}, config, context=context)
    assert out2["turn"] == 2 and [r["stage"] for r in out2["results"]] == CODE_CHAIN  # a fresh run
    first_prompt = str(second.messages_for("concurrency")[1].content)
    assert "Earlier in this conversation" in first_prompt and f"Question: {QUERY}" in first_prompt
    assert f"Summary: {out1['summary']}" in first_prompt
    assert f"cost concluded: {default_reply('cost')}" in first_prompt
    assert "grows without bound" in first_prompt  # the thread keeps its document
    report = Path(out2["report_path"]).read_text(encoding="utf-8")
    assert f"**Follow-up**: turn 2 of thread `t1`, after “{QUERY}”" in report
    facts = json.loads(Path(out2["json_path"]).read_text(encoding="utf-8"))
    assert facts["follow_up"] is True and facts["thread"] == "t1" and facts["turn"] == 2
    # Another thread knows nothing of it.
    other = Script()
    graph2 = build_graph(
        chat_model_factory=other, embedder=bow_embed, chains=chains(), checkpointer=open_checkpointer(db)
    )
    graph2.invoke({"query": QUERY}, {"configurable": {"thread_id": "t2"}}, context=context)
    assert "Earlier in this conversation" not in str(other.messages_for("concurrency")[1].content)


def test_a_thread_keeps_a_bounded_history(context, tmp_path):
    from graph.memory import open_checkpointer

    graph = build_graph(
        chat_model_factory=Script(),
        embedder=bow_embed,
        chains=chains(),
        checkpointer=open_checkpointer(tmp_path / "t.sqlite"),
    )
    config = {"configurable": {"thread_id": "long"}}
    for n in range(5):
        out = graph.invoke(
            {"query": f"Question number {n} about the streaming code performance"}, config, context=context
        )
    history = graph.get_state(config).values["history"]
    assert out["turn"] == 5 and [t["query"][:17] for t in history] == [
        f"Question number {n}" for n in (2, 3, 4)
    ]
    assert all(len(t["summary"]) <= 600 for t in history)


# --- runtime configuration -------------------------------------------------------------------


def test_a_model_per_stage_and_a_threshold_from_the_context(checked_doc, context):
    context.backend = "ollama"  # no probe; the scripted factory stands in for the server
    context.models = {"cost": "qwen2.5-coder:14b"}
    context.min_confidence = 1.0  # nothing is good enough: every stage is repeated once
    script = Script()
    out = run(script, context, document_path=str(checked_doc))
    models = {s.name: s.model for s in script.built}
    assert models["cost"] == "qwen2.5-coder:14b" and models["master_coder"] == "qwen2.5-coder:7b"
    for stage in CODE_CHAIN:
        attempts = [r for r in out["results"] if r["stage"] == stage]
        assert len(attempts) == (2 if attempts[0]["confidence"] < 1.0 else 1)
    # every stage fell short of 1.0 and ran twice
    assert [(r["stage"], r["attempt"]) for r in out["results"]] == [
        (s, n) for s in CODE_CHAIN for n in (1, 2)
    ]
    context.min_confidence = 0.0
    script = Script({"cost": OFF_TOPIC})
    out = run(script, context, document_path=str(checked_doc))
    assert [r["attempt"] for r in out["results"]] == [1] * 6


def test_a_model_for_a_stage_the_chain_lacks_is_refused(sample_doc, context):
    context.models = {"poet": "llama3.2:1b"}
    with pytest.raises(ValueError, match="chain 'code' has no stage poet"):
        run(Script(), context, document_path=str(sample_doc))


def test_a_summary_that_pastes_the_findings_is_a_copy_and_never_the_summary(sample_doc, context):
    """The demo's 1.5B pasted the rendered findings in as its bullets; the Findings section
    already says that. The summary is measured against the findings it was shown."""

    def paste(script):
        shown = str(script.calls[-1][1][1].content)
        listed = [line for line in shown.splitlines() if line.startswith(("1. ", "2. ", "3. "))]
        return "In short, the biggest problem is the context.\n" + "\n".join(
            f"- {line[3:]}" for line in listed
        )

    out = run(Script({**AGREED, "synthesis": paste}), context, document_path=str(sample_doc))
    synthesis = by_stage(out)["synthesis"]
    assert synthesis["verdict"] == "dropped"
    assert synthesis["reasons"][0] == "pasted lines of the findings it was shown"
    assert "In short" not in out["summary"]  # only Mirador's own list of the top findings
    assert out["summary"].startswith("- Line ")


def test_a_summary_sentence_the_code_does_not_bear_out_is_left_out_or_the_answer_repeated(
    sample_doc, context
):
    """Shown the findings' places and code only, the 1.5B wrote of the demo's line 49 "it sends
    the same prompt to all models multiple times": nothing a finding says or the line does. An
    "Also," sentence like that is left out (and listed as set aside); an answer like that is
    said again, with the reason."""
    answer = "In short, the biggest problem is in `StreamingOrchestrator.process` (line 5): each stage waits longer than the last, because it copies every answer before it."
    also = "Also, in `StreamingOrchestrator.process` (line 4): it walks through the stages in their order."
    out = run(Script({**AGREED, "synthesis": f"{answer}\n{also}"}), context, document_path=str(sample_doc))
    synthesis = by_stage(out)["synthesis"]
    assert synthesis["verdict"] == "pass" and synthesis["text"] == answer
    assert [(f["line"], f["reason"]) for f in synthesis["set_aside"]] == [
        (4, "said nothing wrong with line 4")
    ]
    assert out["summary"].startswith(answer) and "walks through" not in out["summary"]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert "*Set aside, not reported as the summary: line 4 `it walks through the stages" in report

    said = "In short, the biggest problem is in `StreamingOrchestrator.process` (line 5): it just adds the stage's answer to the text."

    def first_said(script):
        return said if sum(stage == "synthesis" for stage, _ in script.calls) == 1 else answer

    script = Script({**AGREED, "synthesis": first_said})
    out = run(script, context, document_path=str(sample_doc))
    first, second = [r for r in out["results"] if r["stage"] == "synthesis"]
    assert first["verdict"] == "repeat"
    assert first["reasons"][0] == ("said nothing wrong with line 5")
    assert second["verdict"] == "pass" and out["summary"].startswith(answer)


def test_a_summary_that_pastes_its_findings_message_after_the_place_is_repeated(sample_doc, context):
    """Held to open with a finding's place, the demo's 1.5B pasted that finding's check message
    after it ("an HTTP request with no timeout can hang forever; pass timeout="): nothing the
    Findings section does not say. It is repeated with the reason, and the repeat's own words
    are the summary."""
    place = "In short, the biggest problem is in `StreamingOrchestrator.process` (line 5): "

    def answer(script):
        if sum(stage == "synthesis" for stage, _ in script.calls) == 1:
            return place + "the context is rebuilt on every stage, quadratic in its length."
        return place + "each stage waits longer than the last, because it copies every answer before it."

    script = Script({**AGREED, "synthesis": answer})
    out = run(script, context, document_path=str(sample_doc))
    first, second = [r for r in out["results"] if r["stage"] == "synthesis"]
    assert first["verdict"] == "repeat"
    assert first["reasons"][0] == "pasted finding #1's message instead of saying why it matters"
    told = " ".join(str(m.content) for m in script.messages_for("synthesis", attempt=2))
    assert "set aside because it pasted finding #1's message" in told
    assert second["verdict"] == "pass"
    assert out["summary"].startswith(place + "each stage waits longer than the last")


def test_the_evals_old_layout_shows_every_stage_the_earlier_stages_turns(checked_doc, context):
    """`eval/run.py --layout continuing` measures the old scripts' layout against Mirador's."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_run", Path(__file__).parents[2] / "eval" / "run.py")
    assert spec and spec.loader
    eval_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eval_run)
    eval_run.use_layout("continuing")
    try:
        script = Script()
        run(script, context, document_path=str(checked_doc))
    finally:
        eval_run.use_layout("shared")
    cost = script.messages_for("cost")
    assert [type(m).__name__ for m in cost] == ["SystemMessage", "HumanMessage", "AIMessage", "HumanMessage"]
    assert '<document source="' in cost[1].content
    assert "### Specialist 1\nYour task: concurrency" in cost[1].content
    assert cost[2].content == default_reply("concurrency")
    assert cost[3].content.startswith("### Specialist 2\nYour task: algorithmic cost")
    assert len(script.messages_for("synthesis")) == 2 + 2 * 5  # system, five earlier turns, its own
    shared = Script()
    run(shared, context, document_path=str(checked_doc))
    assert [type(m).__name__ for m in shared.messages_for("cost")] == ["SystemMessage", "HumanMessage"]


def test_findings_a_check_confirms_come_first_and_one_analysts_alone_are_listed_apart(tmp_path, context):
    doc = tmp_path / "fetch.py"
    doc.write_text("import requests\n\n\ndef fetch_all(urls):\n    out = []\n    for url in urls:\n"
                   "        out.append(requests.get(url).json())\n    return out\n", encoding="utf-8")  # fmt: skip
    alone = (
        "- `out = []`: a slow streaming process for the query stage performance, alpha bravo. Fix: keep it."
    )
    script = Script({"cost": alone})
    out = run(script, context, document_path=str(doc))
    head = Path(out["report_path"]).read_text(encoding="utf-8").split("## Stages")[0]
    listed, unconfirmed = head.split("## Unconfirmed: one analyst's findings")
    assert "1. **line 7 in `fetch_all`** MIR007" in listed and "2. **line 7 in `fetch_all`** S113" in listed
    assert "`out = []`" not in listed and "3. **line 5 in `fetch_all`** — `out = []`" in unconfirmed
    # later stages are shown, and the fixes draw on, the confirmed ones only; the summary may
    # also name an unconfirmed one's place, after theirs (the demo's line 64 is one, and real)
    shown = str(script.messages_for("master_coder")[1].content).split("<findings>")[1]
    assert "MIR007" in shown and "alpha bravo" not in shown
    grammar = fixes_grammar(out["findings"])
    assert "line 7" in grammar and "line 5" not in grammar
    assert 'where ::= "in `fetch_all` (line 7)" | "in `fetch_all` (line 5)"' in summary_grammar(
        out["findings"]
    )


def test_a_run_is_cancelled_by_its_own_token_while_another_run_goes_on(sample_doc, context):
    """A long-lived host (a server, a notebook) cancels one run; Ctrl-C's process-wide cancel
    is for the CLI. The first run's model waits on events, not on the clock."""
    token, started = threading.Event(), threading.Event()

    def waits(script):
        started.set()
        token.wait(30)
        return FINDING

    outcome = []

    def first_run():
        graph = build_graph(
            chat_model_factory=Script({"concurrency": waits}), embedder=bow_embed, chains=chains()
        )
        try:
            graph.invoke({"query": QUERY, "document_path": str(sample_doc)}, context=context,
                         config={"configurable": {compute.CANCEL_KEY: token}})  # fmt: skip
            outcome.append("finished")
        except compute.Cancelled:
            outcome.append("cancelled")

    thread = threading.Thread(target=first_run)
    thread.start()
    assert started.wait(30)
    other = run(Script({"cost": FINDING}), context, document_path=str(sample_doc))  # no token: not touched
    assert Path(other["report_path"]).is_file() and len(other["results"]) == 6
    token.set()
    thread.join(30)
    assert outcome == ["cancelled"] and not compute.cancelled()


def test_with_nothing_grounded_found_the_report_has_no_summary_written_from_nothing(tmp_path, context):
    """No check fired and no finding held up: asked to summarise anyway, the 1.5B wrote prose
    that no line bore out. The synthesis is skipped, and the report says there is nothing
    grounded to summarise."""
    doc = tmp_path / "clean.py"
    doc.write_text("def add(a: int, b: int) -> int:\n    return a + b\n", encoding="utf-8")
    invented = "In short, the biggest problem is that add does not handle overflow in the bucketing."
    script = Script({"synthesis": invented})
    out = run(script, context, document_path=str(doc))
    assert not out["facts"] and not out["findings"]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    summary = report.split("## Key Findings Summary", 1)[1].split("\n## ", 1)[0]
    assert "*No summary: no check fired and no analyst's finding held up against the code" in summary
    # the synthesis is not run at all (15-20 s on the 1.5B, and prose streamed for nothing)
    assert "synthesis" not in script.stages_called() and invented not in report
    assert by_stage(out)["synthesis"]["verdict"] == "skipped"
    assert out["summary"] == ""  # nor carried into a follow-up turn


def test_with_only_one_analysts_lead_the_report_has_no_summary_and_lists_the_lead(sample_doc, context):
    """No check fired and one analyst alone cites a line: a lead, not a confirmed finding (on
    blind code most such leads were false). The report gives no summary built on it; the lead
    stays listed under "Unconfirmed"."""
    out = run(Script({"cost": FINDING}), context, document_path=str(sample_doc))
    assert [(f["line"], f["found_by"]) for f in out["findings"]] == [(5, ["cost"])]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    summary = report.split("## Key Findings Summary", 1)[1].split("\n## ", 1)[0]
    assert "*No summary: no check fired and no two finders agree on any finding" in summary
    assert "In short" not in summary and out["summary"] == ""
    assert (
        "## Unconfirmed: one analyst's findings" in report
        and "context = context + stage.run(query)" in report
    )
    assert by_stage(out)["synthesis"]["verdict"] == "skipped"  # not run: its answer would not be used
    confirmed = run(Script(AGREED), context, document_path=str(sample_doc))
    assert confirmed["summary"] and "*No summary" not in Path(confirmed["report_path"]).read_text(
        encoding="utf-8"
    )
