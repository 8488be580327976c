"""The OpenAI-compatible backend without a model: settings, bad URLs, and the real ChatOpenAI
client reading a server's stream (usage, finish reason, errors) from canned responses.
tests/integration/test_openai_server.py runs it against a real llama.cpp server."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import httpx
import pytest

from graph import Context, build_graph
from graph.chains import ChainError, StageSpec, parse_chains
from graph.cli import main
from graph.models import openai_chat
from graph.runtime.backends import resolve_backend
from tests.fakes import bow_embed

KEY = "sk-unit-4f9c1e7d2b"
CHAINS = """
[router]
general = "remote"
[chains.remote]
stages = [
    { name = "quick", title = "Quick answer", model = "m", max_tokens = 16, max_repeats = 0 },
    { name = "synthesis", title = "Synthesis", role = "synthesis", model = "m", max_tokens = 16, max_repeats = 0 },
]
"""


def _sse(*events: dict) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _chunk(content: str | None = None, finish: str | None = None, usage: dict | None = None) -> dict:
    choices = [] if usage else [{"index": 0, "delta": {"content": content} if content else {},
                                 "finish_reason": finish}]  # fmt: skip
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": choices, **({"usage": usage} if usage else {})}  # fmt: skip


class Server:
    """Canned answers of an OpenAI-compatible server, as vLLM streams them (with usage)."""

    def __init__(self, status: int = 200, error: str = "") -> None:
        self.status, self.error = status, error
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"object": "list", "data": [{"id": "m", "object": "model"}]})
        if self.status != 200:
            return httpx.Response(self.status, json={"error": {"message": self.error}})
        body = _sse(_chunk("Mutexes"), _chunk(" serialise"), _chunk(" access."), _chunk(finish="stop"),
                    _chunk(usage={"prompt_tokens": 57, "completion_tokens": 3, "total_tokens": 60}))  # fmt: skip
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def _run(server: Server, tmp_path: Path, **context) -> dict:
    client = httpx.Client(transport=httpx.MockTransport(server))
    graph = build_graph(
        chat_model_factory=lambda spec: openai_chat(spec, http_client=client),
        embedder=bow_embed,
        chains=parse_chains(tomllib.loads(CHAINS)),
    )
    ctx = Context(backend="openai", openai_base_url="http://gpu-box.test:8000", reports_dir=str(tmp_path),
                  index_dir=str(tmp_path / "no-index"), **context)  # fmt: skip
    return graph.invoke({"query": "What does a mutex do?"}, context=ctx)


def test_a_stage_records_the_servers_usage_finish_reason_and_host(tmp_path, monkeypatch):
    monkeypatch.setenv("MIRADOR_OPENAI_API_KEY", KEY)
    server = Server()
    out = _run(server, tmp_path)
    for r in out["results"]:
        assert (r["backend"], r["base_url"], r["model"]) == ("openai", "http://gpu-box.test:8000/v1", "m")
        assert r["status"] == "ok" and r["finish_reason"] == "stop" and r["tokens"] == 3
        assert r["usage"] == {"input_tokens": 57, "output_tokens": 3}
    chats = [json.loads(r.content) for r in server.requests if r.url.path == "/v1/chat/completions"]
    assert len(chats) == 2 and all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert all(c["stream"] and c["stream_options"] == {"include_usage": True} for c in chats)
    assert all(c["max_tokens"] == 16 and c["model"] == "m" for c in chats)
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert "openai at http://gpu-box.test:8000/v1 · first token" in report
    assert "3 tokens (server: 57 in, 3 out)" in report and "finish stop" in report


def test_a_key_the_server_echoes_in_its_error_is_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("MIRADOR_OPENAI_API_KEY", KEY)
    out = _run(Server(status=401, error=f"Incorrect API key provided: {KEY}"), tmp_path)
    assert [r["status"] for r in out["results"]] == ["error", "error"]
    assert "AuthenticationError" in out["results"][0]["error"] and "[redacted]" in out["results"][0]["error"]
    written = Path(out["report_path"]).read_text() + Path(out["json_path"]).read_text() + str(out)
    assert KEY not in written


def test_without_a_key_no_other_hosts_key_is_sent(tmp_path, monkeypatch):
    monkeypatch.delenv("MIRADOR_OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-meant-for-another-host")
    server = Server()
    _run(server, tmp_path)
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer none"}


def test_openai_stages_go_to_their_own_host_or_the_runs():
    spec = StageSpec(name="cost", model="qwen2.5-coder-7b")
    resolved, note = resolve_backend(spec, "openai", "http://127.0.0.1:8000")
    assert (resolved.backend, resolved.base_url) == ("openai", "http://127.0.0.1:8000/v1")
    assert note == "cost: openai at http://127.0.0.1:8000/v1"
    own = StageSpec(name="cost", model="m", base_url="https://gpu-2.example:9000/v1/")
    assert resolve_backend(own, "openai", "http://127.0.0.1:8000/v1")[0].base_url == own.base_url


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--openai-base-url", "ftp://gpu-box/v1"], "'ftp://gpu-box/v1' is not an http:// or https:// URL"),
        (["--openai-base-url", "gpu-box:8000"], "is not an http:// or https:// URL with a host"),
        (["--openai-base-url", "http://[::1"], "'http://[::1' is not a URL"),
        (["--openai-base-url", "http://127.0.0.1:80x0/v1"], "is not a URL"),
        (["--openai-base-url", "http://me:hunter2@gpu-box/v1"], "carries credentials"),
    ],
)
def test_a_bad_base_url_is_one_line_and_status_2(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "What is this?", "--backend", "openai", "--reports-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and message in err, err
    assert "hunter2" not in err and not any(tmp_path.iterdir())


def test_a_bad_base_url_from_the_environment_or_the_chain_file_is_refused(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("MIRADOR_OPENAI_BASE_URL", "localhost:8000")
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "What is this?", "--backend", "openai"])
    assert exit_info.value.code == 2 and "openai_base_url: 'localhost:8000'" in capsys.readouterr().err
    monkeypatch.delenv("MIRADOR_OPENAI_BASE_URL")
    bad = tmp_path / "chains.toml"
    bad.write_text(
        CHAINS.replace('model = "m", max_tokens', 'model = "m", base_url = "gpu:8000", max_tokens', 1)
    )
    monkeypatch.setenv("MIRADOR_CHAINS_FILE", str(bad))
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "What is this?", "--backend", "openai"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "chain 'remote' stage 'quick': base_url: 'gpu:8000' is not an http://" in err


def test_a_stage_names_the_variable_holding_its_key_never_the_key():
    with pytest.raises(ChainError, match="api_key_env must name an environment variable"):
        parse_chains(tomllib.loads(CHAINS.replace('max_tokens = 16, max_repeats', 'api_key_env = "sk-123", max_tokens = 16, max_repeats', 1)))  # fmt: skip


def test_model_names_one_stage_or_every_stage(tmp_path):
    from graph.cli import make_parser
    from graph.nodes import plan_stages

    args = make_parser().parse_args(["ask", "q", "--model", "served-7b", "--model", "synthesis=served-32b"])
    ctx = Context(backend="openai", models=dict(args.model))
    plan, _ = plan_stages(parse_chains(tomllib.loads(CHAINS)).get("remote"), ctx, resolve_backend)
    assert [s.model for s in plan] == ["served-7b", "served-32b"]
    with pytest.raises(SystemExit):
        make_parser().parse_args(["ask", "q", "--model", "=served-7b"])


def test_with_fallback_configured_a_refused_openai_stage_runs_on_the_embedded_model(tmp_path):
    import socket

    from tests.fakes import Script

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    script = Script()
    graph = build_graph(
        chat_model_factory=lambda spec: openai_chat(spec) if spec.backend == "openai" else script(spec),
        embedder=bow_embed,
        chains=parse_chains(tomllib.loads(CHAINS)),
    )
    ctx = Context(backend="openai", openai_base_url=closed, fallback_to_embedded=True,
                  reports_dir=str(tmp_path), index_dir=str(tmp_path / "no-index"))  # fmt: skip
    out = graph.invoke({"query": "What does a mutex do?"}, context=ctx)
    assert script.stages_called() == ["quick", "synthesis"]
    for r in out["results"]:
        assert r["status"] == "ok" and r["backend"] == "embedded" and r["base_url"] == ""
        assert r["note"].endswith("openai failed (APIConnectionError: Connection error. (ConnectionRefusedError: "
                                  "[Errno 111] Connection refused)); ran on the embedded model")  # fmt: skip


def test_the_runs_server_comes_from_the_flag_else_the_environment(monkeypatch):
    from graph.cli import make_parser

    monkeypatch.setenv("MIRADOR_OPENAI_BASE_URL", "http://gpu-1.internal:8000/v1")
    assert Context().openai_base_url == "http://gpu-1.internal:8000/v1"
    assert Context(openai_base_url="http://gpu-2.internal:8000/v1").openai_base_url.startswith("http://gpu-2")
    args = make_parser().parse_args(["ask", "q", "--backend", "openai"])
    assert args.openai_base_url is None  # no flag: the CLI leaves the field out, so the env applies
    default = Context.openai_base_url
    assert Context(openai_base_url=default).openai_base_url == default  # given, even as the default: it wins
