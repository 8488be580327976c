"""The Ollama backend through the real ChatOllama client, against a local fake server."""

from __future__ import annotations

import socket

from graph import build_graph
from graph.models import default_chat_model_factory
from graph.prompts import load_prompt
from tests.fakes import Script, bow_embed, chains, default_reply
from tests.ollama_server import FakeOllama

CODE_MODELS = {"qwen2.5-coder:7b", "qwen2.5:7b"}
CODE_CHAIN = ["concurrency", "cost", "resources", "master_coder", "solution_architect", "synthesis"]
QUERY = "Where are the performance bottlenecks in the streaming code?"
# Each stage's prompt file opens with words of its own: how the fake server tells who asks.
OPENINGS = {stage: load_prompt(stage if stage != "synthesis" else "code_synthesis").template[:40]
            for stage in CODE_CHAIN}  # fmt: skip


def _as_the_stage(body):
    """Answer as the scripted stage whose instructions the request carries: on topic, and
    distinct from every other stage, whichever model serves it."""
    asked = body["messages"][-1]["content"]
    return default_reply(next(stage for stage, opening in OPENINGS.items() if opening in asked))


def replies(models):
    return dict.fromkeys(models, _as_the_stage)


def ollama_or_script(script):
    """Ollama stages go through the real ChatOllama; embedded ones are scripted (no llama.cpp)."""
    return lambda spec: default_chat_model_factory(spec) if spec.backend == "ollama" else script(spec)


def run(factory, context, chain_set=None):
    graph = build_graph(chat_model_factory=factory, embedder=bow_embed, chains=chain_set or chains())
    return graph.invoke({"query": QUERY}, context=context)


def test_auto_uses_ollama_when_it_has_every_model(context):
    with FakeOllama(replies(CODE_MODELS)) as server:
        context.backend, context.ollama_base_url, context.chain = "auto", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    assert [r["backend"] for r in out["results"]] == ["ollama"] * 6
    assert [r["model"] for r in out["results"]] == ["qwen2.5-coder:7b"] * 4 + ["qwen2.5:7b"] * 2
    assert [b["model"] for b in server.requests] == [r["model"] for r in out["results"]]
    assert all(r["status"] == "ok" and r["tokens"] > 5 and r["verdict"] == "pass" for r in out["results"])
    # Every request opens with the same system prompt and material (the server's prompt cache).
    first = server.requests[0]["messages"]
    for request in server.requests[1:]:
        assert request["messages"][0] == first[0] and len(request["messages"]) == 2


def test_each_stage_may_live_on_its_own_host(context):
    with FakeOllama(replies(CODE_MODELS)) as main_host, FakeOllama(replies(CODE_MODELS)) as coder_host:
        chain_set = chains(cost={"base_url": coder_host.url}, master_coder={"base_url": coder_host.url})
        context.backend, context.ollama_base_url, context.chain = "ollama", main_host.url, "code"
        out = run(ollama_or_script(Script()), context, chain_set)
    assert [b["model"] for b in coder_host.requests] == ["qwen2.5-coder:7b", "qwen2.5-coder:7b"]
    assert len(main_host.requests) == 4
    assert all(r["status"] == "ok" for r in out["results"])


def test_auto_falls_back_to_embedded_for_a_model_the_server_lacks(context):
    script = Script()
    with FakeOllama(replies(CODE_MODELS - {"qwen2.5-coder:7b"})) as server:
        context.backend, context.ollama_base_url, context.chain = "auto", server.url, "code"
        out = run(ollama_or_script(script), context)
    backends = {r["stage"]: r["backend"] for r in out["results"]}
    assert backends == {"concurrency": "embedded", "cost": "embedded", "resources": "embedded",
                        "master_coder": "embedded", "solution_architect": "ollama", "synthesis": "ollama"}  # fmt: skip
    assert script.stages_called() == ["concurrency", "cost", "resources", "master_coder"]
    assert any("has no model qwen2.5-coder:7b" in n for n in out_notes(out))


def out_notes(out):
    from pathlib import Path

    return Path(out["report_path"]).read_text(encoding="utf-8").splitlines()


def test_explicit_ollama_with_a_missing_model_fails_that_stage_and_goes_on(context):
    with FakeOllama(replies(CODE_MODELS - {"qwen2.5:7b"})) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    status = {r["stage"]: r["status"] for r in out["results"]}
    assert status == {"concurrency": "ok", "cost": "ok", "resources": "ok", "master_coder": "ok",
                      "solution_architect": "error", "synthesis": "error"}  # fmt: skip
    assert "not found" in next(r["error"] for r in out["results"] if r["stage"] == "synthesis")
    assert out["report_path"]


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_a_refused_connection_fails_each_stage_with_the_reason_and_the_report_is_written(context):
    context.backend, context.ollama_base_url, context.chain = "ollama", _closed_port(), "code"
    out = run(ollama_or_script(Script()), context)
    assert [r["status"] for r in out["results"]] == ["error"] * 6
    assert all("ConnectError" in r["error"] or "connect" in r["error"].lower() for r in out["results"])
    assert len(out["errors"]) == 6 and out["report_path"]


def test_a_slow_answer_is_stopped_at_the_stage_timeout(context):
    with FakeOllama(replies(CODE_MODELS), delay=0.05) as server:
        chain_set = chains(concurrency={"timeout_s": 0.2})
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context, chain_set)
    first = out["results"][0]
    assert first["stage"] == "concurrency" and first["status"] == "timeout"
    assert 0 < first["tokens"] < len(default_reply("concurrency").split())


def test_a_stream_dropped_mid_answer_fails_the_stage_and_the_chain_goes_on(context):
    with FakeOllama(replies(CODE_MODELS), drop_after=3) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    assert [r["stage"] for r in out["results"]] == CODE_CHAIN
    assert all(r["status"] == "error" for r in out["results"]), [r["error"] for r in out["results"]]


def test_with_fallback_configured_a_failed_ollama_stage_runs_on_the_embedded_model(context):
    script = Script()
    context.backend, context.ollama_base_url, context.chain = "ollama", _closed_port(), "code"
    context.fallback_to_embedded = True
    out = run(ollama_or_script(script), context)
    assert script.stages_called() == CODE_CHAIN  # each stage ran again on the (scripted) embedded model
    for r in out["results"]:
        assert r["status"] == "ok" and r["backend"] == "embedded"
        assert r["note"].startswith("ollama failed (ConnectError") and r["note"].endswith(
            "ran on the embedded model"
        )
    report = out_notes(out)
    assert any("ran on the embedded model" in line for line in report)
