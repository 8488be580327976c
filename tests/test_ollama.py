"""The Ollama backend through the real ChatOllama client, against a local fake server."""

from __future__ import annotations

import re
import socket

from graph import build_graph
from graph.models import default_chat_model_factory
from tests.fakes import Script, bow_embed, chains, default_reply
from tests.ollama_server import FakeOllama

CODE_MODELS = {"llama3.2:3b", "qwen2.5-coder:7b", "qwen2.5:7b"}
CODE_CHAIN = ["context", "code_analyst", "master_coder", "solution_architect", "synthesis"]
QUERY = "Where are the performance bottlenecks in the streaming code?"


def _as_the_stage(body):
    """Answer as the scripted stage the request's last message names ("[stage]"): on topic,
    and distinct from every other stage, whichever model serves it."""
    stage = re.search(r"\[(\w+)\]\n", body["messages"][-1]["content"]).group(1)
    return default_reply(stage)


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
    assert [r["backend"] for r in out["results"]] == ["ollama"] * 5
    assert [r["model"] for r in out["results"]] == [
        "llama3.2:3b", "qwen2.5-coder:7b", "qwen2.5-coder:7b", "qwen2.5:7b", "qwen2.5:7b"
    ]  # fmt: skip
    assert [b["model"] for b in server.requests] == [r["model"] for r in out["results"]]
    assert all(r["status"] == "ok" and r["tokens"] > 5 for r in out["results"])
    # The stream carried the chain's conversation: each request extends the previous one.
    assert len(server.requests[1]["messages"]) == len(server.requests[0]["messages"]) + 2


def test_each_stage_may_live_on_its_own_host(context):
    with FakeOllama(replies(CODE_MODELS)) as main_host, FakeOllama(replies(CODE_MODELS)) as coder_host:
        chain_set = chains(
            code_analyst={"base_url": coder_host.url}, master_coder={"base_url": coder_host.url}
        )
        context.backend, context.ollama_base_url, context.chain = "ollama", main_host.url, "code"
        out = run(ollama_or_script(Script()), context, chain_set)
    assert [b["model"] for b in coder_host.requests] == ["qwen2.5-coder:7b", "qwen2.5-coder:7b"]
    assert len(main_host.requests) == 3
    assert all(r["status"] == "ok" for r in out["results"])


def test_auto_falls_back_to_embedded_for_a_model_the_server_lacks(context):
    script = Script()
    with FakeOllama(replies(CODE_MODELS - {"qwen2.5-coder:7b"})) as server:
        context.backend, context.ollama_base_url, context.chain = "auto", server.url, "code"
        out = run(ollama_or_script(script), context)
    backends = {r["stage"]: r["backend"] for r in out["results"]}
    assert backends == {"context": "ollama", "code_analyst": "embedded", "master_coder": "embedded",
                        "solution_architect": "ollama", "synthesis": "ollama"}  # fmt: skip
    assert script.stages_called() == ["code_analyst", "master_coder"]
    assert any("has no model qwen2.5-coder:7b" in n for n in out_notes(out))


def out_notes(out):
    from pathlib import Path

    return Path(out["report_path"]).read_text(encoding="utf-8").splitlines()


def test_explicit_ollama_with_a_missing_model_fails_that_stage_and_goes_on(context):
    with FakeOllama(replies(CODE_MODELS - {"qwen2.5:7b"})) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    status = {r["stage"]: r["status"] for r in out["results"]}
    assert status == {"context": "ok", "code_analyst": "ok", "master_coder": "ok",
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
    assert [r["status"] for r in out["results"]] == ["error"] * 5
    assert all("ConnectError" in r["error"] or "connect" in r["error"].lower() for r in out["results"])
    assert len(out["errors"]) == 5 and out["report_path"]


def test_a_slow_answer_is_stopped_at_the_stage_timeout(context):
    with FakeOllama(replies(CODE_MODELS), delay=0.05) as server:
        chain_set = chains(context={"timeout_s": 0.2})
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context, chain_set)
    first = out["results"][0]
    assert first["stage"] == "context" and first["status"] == "timeout"
    assert 0 < first["tokens"] < len(default_reply("context").split())


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
