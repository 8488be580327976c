"""The compiled graph with scripted chat models: order, inputs, streams, routing, failures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from graph import build_graph
from graph.chains import load_chains
from tests.fakes import Script

CODE_CHAIN = ["context", "code_analyst", "master_coder", "solution_architect", "synthesis"]
QUERY = "Where are the performance bottlenecks in the streaming code?"


def run(script, context, **inputs):
    graph = build_graph(chat_model_factory=script)
    return graph.invoke({"query": QUERY, **inputs}, context=context)


def test_code_chain_runs_its_stages_in_order_and_writes_the_report(sample_doc, context):
    script = Script()
    out = run(script, context, document_path=str(sample_doc))
    assert script.stages_called() == CODE_CHAIN
    assert [r["stage"] for r in out["results"]] == CODE_CHAIN
    assert out["chain"] == "code" and out["query_type"] == "code"
    assert all(r["status"] == "ok" and r["backend"] == "embedded" for r in out["results"])
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    for stage in CODE_CHAIN:
        assert f"(`{stage}`)" in report
    assert out["summary"] == "synthesis says: finding about the question."
    facts = json.loads(Path(out["json_path"]).read_text(encoding="utf-8"))
    assert [s["stage"] for s in facts["stages"]] == CODE_CHAIN
    assert facts["report_path"] == out["report_path"]


def test_models_are_prewarmed_once_before_the_first_stage_runs(sample_doc, context):
    script = Script()
    run(script, context, document_path=str(sample_doc))
    first_call = script.log.index(("call", "context"))
    prewarm = script.log[:first_call]
    # Every stage maps to the one embedded model: `prepare` builds it once, then the
    # first stage builds its own (cheap: the loaded model is shared) and calls it.
    assert prewarm == [("build", "context"), ("build", "context")]
    assert {s.model for s in script.built} == {script.built[0].model}


def test_each_stage_continues_the_previous_stage_conversation(sample_doc, context):
    replies = {name: f"Answer of {name}: point {i}." for i, name in enumerate(CODE_CHAIN)}
    script = Script(replies)
    run(script, context, document_path=str(sample_doc))
    first = script.messages_for("context")
    assert isinstance(first[0], SystemMessage) and len(first) == 2
    assert "<document source=" in first[1].content and "grows without bound" in first[1].content
    assert QUERY in first[1].content and "[context]" in first[1].content
    for i, stage in enumerate(CODE_CHAIN[1:], start=1):
        messages = script.messages_for(stage)
        earlier = messages[: len(messages) - 1]
        # The previous stage's whole conversation is this stage's prefix (KV-cache reuse).
        previous = script.messages_for(CODE_CHAIN[i - 1])
        assert [m.content for m in earlier[: len(previous)]] == [m.content for m in previous]
        answers = [m.content for m in messages if isinstance(m, AIMessage)]
        assert answers == [replies[s] for s in CODE_CHAIN[:i]]
        assert isinstance(messages[-1], HumanMessage) and f"[{stage}]" in messages[-1].content
        assert messages[-1].content.count("<document") == 0


def test_synthesis_is_told_which_stages_it_draws_on(sample_doc, context):
    script = Script()
    run(script, context, document_path=str(sample_doc))
    instructions = script.messages_for("synthesis")[-1].content
    assert "context, code_analyst, master_coder, solution_architect" in instructions
    assert "[context]" in instructions


def test_stream_carries_tokens_by_stage_and_timed_stage_events(sample_doc, context):
    graph = build_graph(chat_model_factory=Script())
    token_nodes, events, updated = [], [], []
    for mode, data in graph.stream(
        {"query": QUERY, "document_path": str(sample_doc)},
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
    # Tokens arrive stage by stage, in chain order, several per stage.
    order = [n for i, n in enumerate(token_nodes) if i == 0 or token_nodes[i - 1] != n]
    assert order == CODE_CHAIN
    assert all(token_nodes.count(stage) > 3 for stage in CODE_CHAIN)
    starts = [e for e in events if e["event"] == "stage_start"]
    ends = [e for e in events if e["event"] == "stage_end"]
    assert [e["stage"] for e in starts] == [e["stage"] for e in ends] == CODE_CHAIN
    for end in ends:
        assert end["first_token_s"] is not None and end["total_s"] >= end["first_token_s"]
        assert end["tokens"] > 3 and end["model"] and end["backend"] == "embedded"
    assert events[0]["event"] == "plan" and events[-1]["event"] == "report"
    assert updated == ["prepare", *CODE_CHAIN, "report"]


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
    out = build_graph(chat_model_factory=script).invoke(inputs, context=context)
    assert out["chain"] == chain
    assert script.stages_called() == [s.name for s in load_chains().get(chain).stages]


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


def test_a_failing_stage_is_recorded_and_the_chain_goes_on(sample_doc, context):
    script = Script(failures={"master_coder": ConnectionError("connection refused")})
    out = run(script, context, document_path=str(sample_doc))
    by_stage = {r["stage"]: r for r in out["results"]}
    assert by_stage["master_coder"]["status"] == "error"
    assert "connection refused" in by_stage["master_coder"]["error"]
    assert out["errors"] == ["master_coder: ConnectionError: connection refused"]
    assert script.stages_called() == CODE_CHAIN
    # Later stages do not see the failed stage as a turn.
    architect_answers = [
        m.content for m in script.messages_for("solution_architect") if isinstance(m, AIMessage)
    ]
    assert len(architect_answers) == 2
    assert "Error:** ConnectionError: connection refused" in Path(out["report_path"]).read_text()


def test_stage_output_is_cleaned_before_the_next_stage_sees_it(sample_doc, context):
    leaked = "The loop concatenates strings.<EOS_TOKEN><EOS_TOKEN>\n\nQuery: " + QUERY
    script = Script({"code_analyst": leaked})
    out = run(script, context, document_path=str(sample_doc))
    analyst = next(r for r in out["results"] if r["stage"] == "code_analyst")
    assert analyst["text"] == "The loop concatenates strings."
    assert analyst["removed"]["after_end_token"] > 0
    seen = [m.content for m in script.messages_for("master_coder") if isinstance(m, AIMessage)]
    assert "The loop concatenates strings." in seen and not any("EOS" in s for s in seen)


def test_bad_document_fails_before_any_model_runs(tmp_path, context):
    script = Script()
    with pytest.raises(ValueError, match="document not found"):
        run(script, context, document_path=str(tmp_path / "missing.py"))
    assert script.calls == []


def test_topology_matches_the_snapshot():
    drawn = build_graph(chat_model_factory=Script()).get_graph().draw_mermaid()
    snapshot = Path(__file__).parent / "snapshots" / "graph.mmd"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":  # then review the diff like code
        snapshot.write_text(drawn, encoding="utf-8")
    assert drawn == snapshot.read_text(encoding="utf-8"), "topology changed: UPDATE_SNAPSHOTS=1"
