"""The Ollama backend through the real ChatOllama client, against a local fake server."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from graph import Context, build_graph
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
    # The fake sleeps 0.05 s before each word, after the stage started: the 4th word comes at
    # 0.2 s or later, past the timeout, so the stage stops by then however busy the machine.
    assert 1 <= first["tokens"] <= 4 < len(default_reply("concurrency").split())


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


# --- Ollama as users run it: warmed in parallel, num_ctx and keep_alive on every call -------


def _json(out):
    return json.loads(Path(out["json_path"]).read_text(encoding="utf-8"))


def test_every_ollama_model_is_warmed_in_parallel_before_the_first_stage(context):
    # Each load request is held until the other has arrived: sequential loads never pass.
    both = threading.Barrier(len(CODE_MODELS), timeout=60)
    with FakeOllama(replies(CODE_MODELS), hold_loads=both) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    assert sorted(load["body"]["model"] for load in server.loads) == sorted(CODE_MODELS)
    assert [kind for kind, _ in server.log[:2]] == ["load", "load"] and "load" not in dict(server.log[2:])
    for load in server.loads:  # a load as Ollama documents it: no prompt, keep_alive, the run's num_ctx
        assert load["path"] == "/api/generate" and "prompt" not in load["body"]
        assert load["body"]["keep_alive"] == "30m" and load["body"]["options"]["num_ctx"] == 8192
    warm = _json(out)["warm"]
    assert {w["model"]: w["status"] for w in warm} == dict.fromkeys(CODE_MODELS, "ok")
    assert all(w["base_url"] == server.url and 0 <= w["seconds"] < 10 and not w["error"] for w in warm)
    assert out["warm"] == warm and all(r["status"] == "ok" for r in out["results"])
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert f"**Warm-up**: qwen2.5-coder:7b at {server.url} ok in" in report


def test_every_chat_call_sends_keep_alive_and_the_num_ctx_its_model_was_warmed_with(context):
    with FakeOllama(replies(CODE_MODELS)) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        context.ollama_keep_alive = "1h"
        out = run(ollama_or_script(Script()), context)
    warmed = {load["body"]["model"]: load["body"]["options"]["num_ctx"] for load in server.loads}
    assert len(server.requests) == 6 and set(warmed) == CODE_MODELS
    for body in server.requests:
        assert body["keep_alive"] == "1h" and body["options"]["num_ctx"] == warmed[body["model"]]
    assert server.reloads == []  # the warmed runner served every stage: no reload for another num_ctx
    assert [r["num_ctx"] for r in out["results"]] == [warmed[r["model"]] for r in out["results"]]
    assert all(r["context_overflow"] == "" for r in out["results"])


def test_prewarm_can_be_turned_off(context):
    with FakeOllama(replies(CODE_MODELS)) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        context.ollama_prewarm = False
        out = run(ollama_or_script(Script()), context)
    assert server.loads == [] and out["warm"] == [] and len(server.requests) == 6


def test_num_ctx_fits_a_long_document_up_to_the_cap_and_a_set_value_is_sent_as_is(context, tmp_path):
    long_doc = tmp_path / "notes.md"
    long_doc.write_text("The streaming code grows the context on every stage and never frees it.\n" * 800)
    context.max_document_chars = 60_000  # about 58,000 characters reach the prompt

    def num_ctx_sent(**settings):
        with FakeOllama(replies(CODE_MODELS)) as server:
            context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
            for key, value in settings.items():
                setattr(context, key, value)
            graph = build_graph(
                chat_model_factory=ollama_or_script(Script()), embedder=bow_embed, chains=chains()
            )
            out = graph.invoke({"query": QUERY, "document_path": str(long_doc)}, context=context)
        assert server.reloads == []
        return {body["options"]["num_ctx"] for body in server.requests}, out

    fitted, out = num_ctx_sent()
    # Ollama's default (4,096) or a flat 8,192 would cut it; the fitted context holds prompt and answer.
    assert len(fitted) <= 2 and all(19_456 < n <= 32_768 for n in fitted), fitted
    assert all(r["context_overflow"] == "" for r in out["results"])
    capped, out = num_ctx_sent(max_num_ctx=12_288)
    assert capped == {12_288}
    cut = out["results"][0]["context_overflow"]
    assert cut.startswith("prompt about ") and "(estimated) > context 12,288" in cut
    assert cut.endswith("(it counted 6,146 tokens after the cut)")  # as real Ollama reports it
    assert num_ctx_sent(num_ctx=4096)[0] == {4096}


def test_a_model_that_fails_to_warm_is_recorded_and_does_not_stop_the_other(context):
    with FakeOllama(replies(CODE_MODELS), fail_loads={"qwen2.5:7b"}) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    warm = {w["model"]: w for w in out["warm"]}
    assert warm["qwen2.5-coder:7b"]["status"] == "ok" and server.runners["qwen2.5-coder:7b"] == 8192
    assert warm["qwen2.5:7b"]["status"] == "error" and "more system memory" in warm["qwen2.5:7b"]["error"]
    # The stages run as they would have without a warm-up: their own call loads the model.
    assert all(r["status"] == "ok" for r in out["results"])
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert f"qwen2.5:7b at {server.url} failed (HTTP 500: model requires more system memory" in report


def test_a_warm_up_that_hangs_is_stopped_at_its_timeout_and_the_other_model_warms(context):
    chain_set = chains(solution_architect={"timeout_s": 0.5}, synthesis={"timeout_s": 0.5})
    with FakeOllama(replies(CODE_MODELS), slow_loads={"qwen2.5:7b": 30.0}) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context, chain_set)
    warm = {w["model"]: w for w in out["warm"]}
    assert warm["qwen2.5-coder:7b"]["status"] == "ok"
    assert warm["qwen2.5:7b"]["status"] == "timeout" and warm["qwen2.5:7b"]["seconds"] < 10
    assert [r["stage"] for r in out["results"]] == CODE_CHAIN


def test_the_report_says_when_the_prompt_was_longer_than_the_context(context):
    def counted(body):  # what Ollama reports as the prompt's tokens, per stage
        asked = body["messages"][-1]["content"]
        return 9812 if OPENINGS["cost"] in asked else 8190 if OPENINGS["resources"] in asked else 900

    with FakeOllama(replies(CODE_MODELS), prompt_eval_count=counted) as server:
        context.backend, context.ollama_base_url, context.chain = "ollama", server.url, "code"
        out = run(ollama_or_script(Script()), context)
    said = {r["stage"]: r["context_overflow"] for r in out["results"]}
    assert said["cost"] == "prompt 9,812 tokens > context 8,192: Ollama cut the start of the prompt"
    assert said["resources"].startswith("prompt 8,190 + output ")
    assert said["resources"].endswith("tokens filled the context 8,192: Ollama cut the start of the prompt")
    assert {stage for stage, note in said.items() if note} == {"cost", "resources"}
    stages = {s["stage"]: s for s in _json(out)["stages"]}
    assert stages["cost"]["context_overflow"] == said["cost"] and stages["cost"]["num_ctx"] == 8192
    assert stages["cost"]["usage"]["input_tokens"] == 9812
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert f"*Context: {said['cost']}.*" in report
    assert "*Prompt longer than its context: `cost`, `resources`.*" in report


@pytest.mark.parametrize("value", ["forever", "5 m", "1h30", ""])
def test_a_keep_alive_ollama_would_not_parse_is_refused(value):
    with pytest.raises(ValueError, match="ollama_keep_alive"):
        Context(ollama_keep_alive=value)
