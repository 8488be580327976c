"""A small local server speaking Ollama's HTTP API as its docs (docs/api.md) describe it, so
the real ChatOllama client and Mirador's own load requests are exercised: `/api/tags`,
`/api/ps`, `/api/version`, `/api/show`, `/api/generate` and `/api/chat` (streamed as
newline-delimited JSON, or one object with `"stream": false`). An empty prompt or an empty
`messages` loads the model and answers `done_reason: "load"`.

It keeps what a test asks about: every request, the load requests apart, and the runner
each model is loaded with (its `num_ctx`); a request asking for another `num_ctx` reloads
the model, as Ollama does. Faults: a missing model, a slow answer, a dropped stream, a load
that fails or is slow, and load requests held until all of a test's have arrived."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED_AT = "2026-11-21T00:00:00Z"
DEFAULT_NUM_CTX = 4096  # Ollama's default context when a request sets none (newer versions)


def prompt_tokens(messages: list[dict[str, Any]], num_ctx: int) -> int:
    """What Ollama reports as `prompt_eval_count`: a stand-in tokenizer (4 characters a token),
    and, for a prompt longer than the context, the count after Ollama's cut (it keeps about
    half the context, num_ctx / 2 + 2, and says nothing else)."""
    tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
    return tokens if tokens <= num_ctx else num_ctx // 2 + 2


class FakeOllama:
    def __init__(
        self,
        models: dict[str, Any],
        *,
        delay: float = 0.0,
        drop_after: int | None = None,
        prompt_eval_count: int | Callable[[dict[str, Any]], int] | None = None,
        hold_loads: threading.Barrier | None = None,
        fail_loads: frozenset[str] | set[str] = frozenset(),
        slow_loads: dict[str, float] | None = None,
    ):
        """models: model name -> the reply it streams word by word, or a function of the
        request body that returns it. prompt_eval_count: what the final message reports (a
        number, or a function of the request body); default: prompt_tokens(). hold_loads: a
        barrier every load request waits at before it is answered (a load whose barrier
        breaks answers 500). fail_loads: models whose load requests answer 500 (as Ollama does
        when a model does not fit in memory). slow_loads: model -> seconds its load takes."""
        self.models = models
        self.delay = delay
        self.drop_after = drop_after
        self.prompt_eval_count = prompt_eval_count
        self.hold_loads = hold_loads
        self.fail_loads = set(fail_loads)
        self.slow_loads = slow_loads or {}
        self.requests: list[dict[str, Any]] = []  # every /api/chat body that asked for an answer
        self.loads: list[dict[str, Any]] = []  # every load request: path, body, arrived, answered
        self.log: list[tuple[str, str]] = []  # ("load" | "chat" | "generate", model), in arrival order
        self.runners: dict[str, int] = {}  # model -> the num_ctx it is loaded with
        self.reloads: list[tuple[str, int, int]] = []  # model, loaded num_ctx, requested num_ctx
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOllama:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        if self.hold_loads is not None:
            self.hold_loads.abort()
        self.server.shutdown()
        self.server.server_close()

    def _run(self, model: str, options: dict[str, Any] | None, keep_alive: Any) -> int:
        """Load (or reuse) the model's runner for this request's num_ctx, as Ollama's scheduler
        does: a different num_ctx reloads it; keep_alive 0 unloads it after the request."""
        num_ctx = int((options or {}).get("num_ctx") or DEFAULT_NUM_CTX)
        with self._lock:
            held = self.runners.get(model)
            if held is not None and held != num_ctx:
                self.reloads.append((model, held, num_ctx))
            self.runners[model] = num_ctx
            if keep_alive in (0, "0", "0s"):
                self.runners.pop(model)
        return num_ctx

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _tag(self, model: str) -> dict[str, Any]:
                details = {"parent_model": "", "format": "gguf", "family": "qwen2", "families": ["qwen2"],
                           "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}  # fmt: skip
                return {"name": model, "model": model, "modified_at": CREATED_AT, "size": 4683087332,
                        "digest": "0" * 64, "details": details}  # fmt: skip

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    self._json(200, {"models": [self._tag(m) for m in fake.models]})
                elif self.path == "/api/ps":
                    with fake._lock:
                        running = dict(fake.runners)
                    self._json(200, {"models": [{**self._tag(m), "expires_at": CREATED_AT, "size_vram": 0,
                                                 "context_length": n} for m, n in running.items()]})  # fmt: skip
                elif self.path == "/api/version":
                    self._json(200, {"version": "0.12.6"})
                else:
                    self._json(404, {"error": "404 page not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                model = body.get("model") or body.get("name", "")
                if self.path == "/api/show":
                    if model in fake.models:
                        self._json(200, {"modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                                         "details": self._tag(model)["details"],
                                         "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
                                         "capabilities": ["completion"]})  # fmt: skip
                    else:
                        self._json(404, {"error": f"model '{model}' not found"})
                    return
                if self.path not in ("/api/chat", "/api/generate"):
                    self._json(404, {"error": "404 page not found"})
                    return
                chat = self.path == "/api/chat"
                messages = (
                    body.get("messages") if chat else [{"role": "user", "content": body.get("prompt", "")}]
                )
                loading = not messages if chat else not body.get("prompt")
                with fake._lock:
                    fake.log.append(("load" if loading else "chat" if chat else "generate", model))
                if model not in fake.models:
                    self._json(404, {"error": f"model '{model}' not found, try pulling it first"})
                    return
                if loading:
                    self._load(body, model, chat)
                    return
                if chat:
                    fake.requests.append(body)
                num_ctx = fake._run(model, body.get("options"), body.get("keep_alive"))
                self._answer(body, model, chat, messages, num_ctx)

            def _load(self, body: dict[str, Any], model: str, chat: bool) -> None:
                record = {"path": self.path, "body": body, "arrived": time.monotonic(), "answered": None}
                with fake._lock:
                    fake.loads.append(record)
                if fake.hold_loads is not None:
                    try:
                        fake.hold_loads.wait()
                    except threading.BrokenBarrierError:
                        self._json(500, {"error": "fake: the other load requests never arrived"})
                        return
                if fake._closing.wait(fake.slow_loads.get(model, 0.0)):
                    return
                if model in fake.fail_loads:
                    self._json(500, {"error": "model requires more system memory (9.1 GiB) than is available (4.0 GiB)"})  # fmt: skip
                    return
                fake._run(model, body.get("options"), body.get("keep_alive"))
                record["answered"] = time.monotonic()
                done = {"model": model, "created_at": CREATED_AT, "done_reason": "load", "done": True}
                done |= {"message": {"role": "assistant", "content": ""}} if chat else {"response": ""}
                if body.get("stream", True):
                    self._start_stream()
                    self._chunk(done)
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self._json(200, done)

            def _answer(
                self,
                body: dict[str, Any],
                model: str,
                chat: bool,
                messages: list[dict[str, Any]],
                num_ctx: int,
            ) -> None:
                reply = fake.models[model]
                text = reply({**body, "messages": messages}) if callable(reply) else reply
                words = text.split(" ")
                counted = fake.prompt_eval_count
                prompt_eval = (
                    (counted(body) if callable(counted) else counted) if counted is not None else None
                )
                stats = {"total_duration": 1_000_000, "load_duration": 1_000, "eval_count": len(words),
                         "prompt_eval_count": prompt_tokens(messages, num_ctx) if prompt_eval is None else prompt_eval,
                         "prompt_eval_duration": 1_000, "eval_duration": 1_000}  # fmt: skip

                def piece(content: str) -> dict[str, Any]:
                    return (
                        {"message": {"role": "assistant", "content": content}}
                        if chat
                        else {"response": content}
                    )

                if not body.get("stream", True):
                    self._json(200, {"model": model, "created_at": CREATED_AT, **piece(text), "done": True,
                                     "done_reason": "stop", **stats})  # fmt: skip
                    return
                self._start_stream()
                for i, word in enumerate(words):
                    if fake.drop_after is not None and i == fake.drop_after:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # the stream breaks off mid-answer
                        self.close_connection = True
                        return
                    time.sleep(fake.delay)
                    self._chunk({"model": model, "created_at": CREATED_AT,
                                 **piece(word if i == 0 else " " + word), "done": False})  # fmt: skip
                self._chunk({"model": model, "created_at": CREATED_AT, **piece(""), "done": True,
                             "done_reason": "stop", **stats})  # fmt: skip
                self.wfile.write(b"0\r\n\r\n")

            def _start_stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()

            def _chunk(self, obj: dict[str, Any]) -> None:
                data = (json.dumps(obj) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler
