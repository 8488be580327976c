"""The openai backend against a real OpenAI-compatible server: llama-cpp-python's own
(`python -m llama_cpp.server`) serving the embedded 0.5B GGUF on loopback, started here.

Stages stream from it, two servers stand for two hosts in one chain, and its faults (killed
mid-stream, not listening, a wrong model name, slower than the stage timeout) are recorded
per stage while the chain goes on. The scoring embedder is the bag-of-words one: the server
is what is under test, and loading MiniLM would add seconds to every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from graph import Context, build_graph
from graph.chains import parse_chains
from graph.models import embedded_model_path
from tests.fakes import bow_embed
from tests.servers import answers, free_port, wait_until_up

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent
KEY_A = "sk-mirador-host-a-7f3a9c41"  # distinctive, so a leak anywhere is found by grep
KEY_B = "sk-mirador-host-b-51d0e2b8"
QUERY = "What does a mutex protect against?"


class LlamaServer:
    """One `python -m llama_cpp.server` on a free loopback port, answering to `key`."""

    def __init__(self, log_dir: Path, key: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        self.log = log_dir / f"llama-server-{port}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path("coder-0.5b")),
             "--model_alias", "coder-0.5b", "--api_key", key, "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", "4096", "--n_threads", "2", "--verbose", "false"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        # up once it asks for its key
        wait_until_up(
            answers(f"{self.url}/models", 401),
            self.proc,
            self.log,
            "llama_cpp.server",
            timeout=120,
            every=0.3,
        )

    def chats(self) -> int:
        """Chat requests the server has answered (its access log)."""
        return self.log.read_text(errors="replace").count('"POST /v1/chat/completions HTTP/1.1" 200')

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def host_a(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("host-a"), KEY_A)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def host_b(tmp_path_factory):
    server = LlamaServer(tmp_path_factory.mktemp("host-b"), KEY_B)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("MIRADOR_OPENAI_API_KEY", KEY_A)  # the run's key
    monkeypatch.setenv("MIRADOR_TEST_HOST_B_KEY", KEY_B)  # named by a stage's api_key_env


def _stage(name: str, **fields) -> dict:
    return {"name": name, "title": name.replace("_", " ").capitalize(), "model": "coder-0.5b",
            "max_tokens": 16, "max_repeats": 0, "temperature": 0.0, **fields}  # fmt: skip


def _chains(*stages: dict) -> dict:
    return {"router": {"general": "remote"}, "chains": {"remote": {"stages": list(stages)}}}


def _run(chains: dict, host: LlamaServer, tmp_path: Path, on_token=None) -> tuple[dict, list, list]:
    """Stream a run on the openai backend; returns the final state, (stage, token) pairs and events."""
    graph = build_graph(chains=parse_chains(chains), embedder=bow_embed)
    ctx = Context(backend="openai", openai_base_url=host.url, reports_dir=str(tmp_path / "reports"),
                  retrieval=False)  # fmt: skip
    tokens, events = [], []
    for mode, data in graph.stream({"query": QUERY}, context=ctx, stream_mode=["messages", "custom"]):
        if mode == "messages" and data[0].text:
            tokens.append((data[1]["langgraph_node"], str(data[0].text)))
            if on_token:
                on_token(*tokens[-1])
        elif mode == "custom":
            events.append(data)
    report = next(e for e in events if e["event"] == "report")
    facts = json.loads(Path(report["json_path"]).read_text(encoding="utf-8"))
    return facts, tokens, events


def test_stages_stream_from_the_server_and_the_report_says_where_each_ran(host_a, tmp_path, caplog):
    for logger in ("openai", "httpx", "httpcore"):  # the client's own logs, at their most verbose
        caplog.set_level("DEBUG", logger=logger)
    before = host_a.chats()
    facts, tokens, events = _run(
        _chains(_stage("quick"), _stage("synthesis", role="synthesis")), host_a, tmp_path
    )
    nodes = [node for node, _ in tokens]
    assert [n for i, n in enumerate(nodes) if i == 0 or nodes[i - 1] != n] == ["quick", "synthesis"]
    assert host_a.chats() - before == 2
    for stage in facts["stages"]:
        assert stage["status"] in ("ok", "truncated") and stage["backend"] == "openai"
        assert stage["base_url"] == host_a.url and stage["model"] == "coder-0.5b"
        assert 0 < stage["first_token_s"] <= stage["total_s"]
        assert stage["tokens"] == nodes.count(stage["stage"]) and 0 < stage["tokens"] <= 16
        assert stage["finish_reason"] in ("stop", "length")
        assert stage["status"] == ("truncated" if stage["finish_reason"] == "length" else "ok")
        # llama-cpp-python's server sends no usage while streaming (it ignores stream_options);
        # servers that do (vLLM, llama.cpp's llama-server, Ollama) fill it: tests/test_openai.py.
        assert stage["usage"] is None
    assert facts["backend_notes"] == [f"quick: openai at {host_a.url}", f"synthesis: openai at {host_a.url}"]
    starts = [e for e in events if e["event"] == "stage_start"]
    assert {(e["backend"], e["base_url"]) for e in starts} == {("openai", host_a.url)}
    report = Path(facts["report_path"]).read_text(encoding="utf-8")
    assert f"**Backends**: openai at {host_a.url}: quick, synthesis" in report
    assert report.count(f"· openai at {host_a.url} · first token") == 2
    assert "Sending HTTP Request" in caplog.text and KEY_A not in caplog.text and KEY_A not in report


def test_two_servers_are_two_hosts_in_one_chain(host_a, host_b, tmp_path):
    chains = _chains(
        _stage("quick"),
        _stage("deep_analysis", base_url=host_b.url, api_key_env="MIRADOR_TEST_HOST_B_KEY"),
        _stage("synthesis", role="synthesis"),
    )
    a, b = host_a.chats(), host_b.chats()
    facts, tokens, _ = _run(chains, host_a, tmp_path)
    assert (host_a.chats() - a, host_b.chats() - b) == (2, 1)
    where = {s["stage"]: s["base_url"] for s in facts["stages"]}
    assert where == {"quick": host_a.url, "deep_analysis": host_b.url, "synthesis": host_a.url}
    assert all(s["status"] in ("ok", "truncated") for s in facts["stages"])
    assert {node for node, _ in tokens} == {"quick", "deep_analysis", "synthesis"}
    report = Path(facts["report_path"]).read_text(encoding="utf-8")
    assert (
        f"**Backends**: openai at {host_a.url}: quick, synthesis; openai at {host_b.url}: deep_analysis"
        in report
    )


def test_a_refused_a_wrong_model_and_a_slow_stage_are_each_recorded_and_the_chain_goes_on(host_a, tmp_path):
    # llama-cpp-python's server answers any model name with its one model...
    asked = httpx.post(f"{host_a.url}/chat/completions", headers={"Authorization": f"Bearer {KEY_A}"},
                       json={"model": "no-such-model", "max_tokens": 1,
                             "messages": [{"role": "user", "content": "hi"}]}, timeout=60)  # fmt: skip
    assert asked.status_code == 200
    # ...so Mirador asks it which models it serves before each stage.
    closed = f"http://127.0.0.1:{free_port()}/v1"
    chains = _chains(
        _stage("not_listening", prompt="quick", base_url=closed),
        _stage("wrong_model", prompt="quick", model="no-such-model"),
        _stage("slow", prompt="deep_analysis", timeout_s=0.01),
        _stage("synthesis", role="synthesis"),
    )
    facts, _, _ = _run(chains, host_a, tmp_path)
    stages = {s["stage"]: s for s in facts["stages"]}
    assert [s["stage"] for s in facts["stages"]] == ["not_listening", "wrong_model", "slow", "synthesis"]
    assert stages["not_listening"]["status"] == "error"
    assert "Connection refused" in stages["not_listening"]["error"]
    assert stages["not_listening"]["base_url"] == closed
    assert stages["wrong_model"]["status"] == "error"
    assert stages["wrong_model"]["error"] == (
        f"ValueError: the server at {host_a.url} serves no model 'no-such-model' (it serves: coder-0.5b)"
    )
    assert stages["slow"]["status"] == "timeout"
    assert stages["slow"]["error"].startswith(("no answer within 0.01 s", "stopped after 0.01 s"))
    assert stages["synthesis"]["status"] in ("ok", "truncated") and stages["synthesis"]["tokens"] > 0
    assert len(facts["errors"]) == 3
    report = Path(facts["report_path"]).read_text(encoding="utf-8")
    assert "*Failed stages: `not_listening` (error), `wrong_model` (error), `slow` (timeout).*" in report
    assert "serves no model 'no-such-model'" in report


def test_a_server_killed_mid_stream_fails_its_stage_and_the_chain_goes_on(host_a, tmp_path):
    victim = LlamaServer(tmp_path, KEY_A)
    try:
        chains = _chains(
            _stage("quick", base_url=victim.url, max_tokens=64), _stage("synthesis", role="synthesis")
        )

        def kill_on_first_token(stage: str, _text: str) -> None:
            if stage == "quick" and victim.proc.poll() is None:
                victim.proc.kill()

        facts, tokens, _ = _run(chains, host_a, tmp_path, on_token=kill_on_first_token)
    finally:
        victim.stop()
    quick, synthesis = facts["stages"]
    assert quick["status"] == "error" and quick["base_url"] == victim.url
    assert 1 <= quick["tokens"] < 64 and quick["finish_reason"] is None
    assert "peer closed connection" in quick["error"] or "Connection refused" in quick["error"], quick[
        "error"
    ]
    assert synthesis["status"] in ("ok", "truncated") and synthesis["base_url"] == host_a.url
    assert facts["errors"] == [f"quick: {quick['error']}"]


def test_the_api_key_appears_in_no_output_report_json_log_or_thread(host_a, host_b, tmp_path):
    wrong = "sk-wrong-key-for-b-0c3e9b66"
    chain_file = tmp_path / "chains.toml"
    chain_file.write_text(
        '[router]\ngeneral = "remote"\n[chains.remote]\nstages = [\n'
        '  { name = "quick", title = "Quick", model = "m", max_tokens = 8, max_repeats = 0 },\n'
        f'  {{ name = "deep_analysis", title = "Deep", model = "m", max_tokens = 8, max_repeats = 0, '
        f'base_url = "{host_b.url}", api_key_env = "MIRADOR_TEST_WRONG_KEY" }},\n'
        '  { name = "synthesis", title = "Synthesis", role = "synthesis", model = "m", max_tokens = 8, max_repeats = 0 },\n'
        "]\n",
        encoding="utf-8",
    )
    env = {**os.environ, "MIRADOR_CHAINS_FILE": str(chain_file), "MIRADOR_TEST_WRONG_KEY": wrong,
           "OPENAI_LOG": "debug"}  # fmt: skip
    run = subprocess.run(
        [str(BIN / "mirador"), "ask", QUERY, "--backend", "openai", "--openai-base-url", host_a.url,
         "--model", "coder-0.5b", "--json", "--no-retrieval", "--reports-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "openai._base_client" in run.stderr  # the client's debug log was on
    facts = json.loads(run.stdout)
    status = {s["stage"]: s["status"] for s in facts["stages"]}
    assert status["quick"] in ("ok", "truncated") and status["synthesis"] in ("ok", "truncated")
    assert status["deep_analysis"] == "error"
    assert "AuthenticationError" in next(s["error"] for s in facts["stages"] if s["stage"] == "deep_analysis")
    written = [run.stdout, run.stderr]
    for folder in (tmp_path / "reports", Path(os.environ["MIRADOR_DATA_DIR"])):
        written += [p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file()]
    assert len(written) >= 4  # output, log, report, JSON (and the thread's checkpoints)
    for secret in (KEY_A, KEY_B, wrong):
        assert not any(secret in text for text in written), secret
