"""A small local server speaking the parts of Ollama's HTTP API that langchain-ollama uses
(`/api/tags`, `/api/show`, streaming `/api/chat`), so the real ChatOllama client is
exercised: several hosts, a missing model, a slow answer, a dropped stream."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOllama:
    def __init__(self, models: dict[str, Any], *, delay: float = 0.0, drop_after: int | None = None):
        """models: model name -> the reply it streams word by word, or a function of the
        request body that returns it."""
        self.models = models
        self.delay = delay
        self.drop_after = drop_after
        self.requests: list[dict[str, Any]] = []  # every /api/chat body received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOllama:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/api/tags":
                    models = [{"name": m, "model": m, "size": 1, "digest": "0" * 64} for m in fake.models]
                    self._json(200, {"models": models})
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                model = body.get("model", "")
                if self.path == "/api/show":
                    if model in fake.models:
                        self._json(200, {"modelfile": "", "parameters": "", "template": "", "details": {}})
                    else:
                        self._json(404, {"error": f"model '{model}' not found"})
                    return
                if self.path != "/api/chat":
                    self._json(404, {"error": "not found"})
                    return
                fake.requests.append(body)
                if model not in fake.models:
                    self._json(404, {"error": f"model '{model}' not found, try pulling it first"})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                reply = fake.models[model]
                words = (reply(body) if callable(reply) else reply).split(" ")
                for i, word in enumerate(words):
                    if fake.drop_after is not None and i == fake.drop_after:
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)  # the stream breaks off mid-answer
                        self.close_connection = True
                        return
                    time.sleep(fake.delay)
                    piece = word if i == 0 else " " + word
                    self._chunk({"model": model, "created_at": "2026-11-21T00:00:00Z",
                                 "message": {"role": "assistant", "content": piece}, "done": False})  # fmt: skip
                self._chunk({"model": model, "created_at": "2026-11-21T00:00:00Z",
                             "message": {"role": "assistant", "content": ""}, "done": True,
                             "done_reason": "stop", "total_duration": 1, "eval_count": len(words)})  # fmt: skip
                self.wfile.write(b"0\r\n\r\n")

            def _chunk(self, obj: dict[str, Any]) -> None:
                data = (json.dumps(obj) + "\n").encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler
