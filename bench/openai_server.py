#!/usr/bin/env python3
"""First token and tokens/s: the same model and prompt in-process (embedded) and through
llama-cpp-python's OpenAI-compatible server on loopback (the openai backend).

    python bench/openai_server.py [--model coder-0.5b] [--max-tokens 64]

The prompt is the code chain's first stage's messages on samples/streaming_orchestrator.py,
as the graph builds them, with no grammar (the openai backend sends none). Each backend
answers it twice: cold (its KV cache holds nothing of the prompt) and warm (the same prompt
again: the cached prefix is reused). Both are timed by Mirador's own `run_model`, as the
report times a stage. The server gets the embedded model's settings: all cores, n_ctx 8192.
Writes bench/results/openai_server.json. One run, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRADOR_DATA_DIR", tempfile.mkdtemp(prefix="mirador-bench-"))

from graph import Context  # noqa: E402
from graph.chains import configured_chains  # noqa: E402
from graph.findings import checked  # noqa: E402
from graph.models import default_chat_model_factory, embedded_model_path  # noqa: E402
from graph.nodes import build_messages, read_document, run_model  # noqa: E402
from graph.runtime import compute  # noqa: E402
from graph.runtime.backends import embedded_spec  # noqa: E402

DOC = ROOT / "samples" / "streaming_orchestrator.py"
QUERY = "Analyze the streaming implementation patterns and identify potential performance bottlenecks"


def start_server(model: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path(model)),
         "--model_alias", model, "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192",
         "--n_threads", str(os.cpu_count() or 2), "--n_batch", "512", "--verbose", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(240):
        try:
            httpx.get(f"{url}/models", timeout=2).raise_for_status()
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("llama_cpp.server did not start")


def measure(spec: Any, messages: list[Any]) -> list[dict[str, Any]]:
    model = default_chat_model_factory(spec)
    if spec.backend == "embedded":  # an empty KV cache, as the server's is when it starts
        compute.run(model.llama.reset)  # type: ignore[attr-defined]
    rows = []
    for label in ("cold", "warm"):
        run = run_model(model, messages, spec)
        generating = run["total_s"] - (run["first_token_s"] or 0.0)
        rows.append({"backend": spec.backend, "cache": label, "first_token_s": run["first_token_s"],
                     "total_s": run["total_s"], "tokens": run["tokens"], "status": run["status"],
                     "tokens_per_s": round(run["tokens"] / generating, 1) if generating > 0 else 0.0})  # fmt: skip
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="coder-0.5b", choices=("coder-0.5b", "coder-1.5b"))
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    text = read_document(str(DOC))
    chain = configured_chains().get("code")
    stage = replace(chain.stages[0], embedded=args.model, max_tokens=args.max_tokens, temperature=0.0)
    state: Any = {"query": QUERY, "document_path": str(DOC), "document_text": text,
                  "facts": checked(text, str(DOC)), "plan": [s.to_dict() for s in chain.stages], "results": []}  # fmt: skip
    messages = build_messages(state, stage, Context().max_document_chars)
    rows = measure(embedded_spec(stage), messages)
    proc, url = start_server(args.model)
    try:
        rows += measure(replace(stage, backend="openai", model=args.model, base_url=url), messages)
    finally:
        proc.kill()
        proc.wait()
    print(f"{args.model}, {sum(len(str(m.content)) for m in messages)} prompt characters, "
          f"{args.max_tokens} tokens at most, {os.cpu_count()} cores")  # fmt: skip
    print(f"{'backend':<10} {'cache':<6} {'first token':>12} {'total':>8} {'tokens':>7} {'tok/s':>7}")
    for r in rows:
        print(f"{r['backend']:<10} {r['cache']:<6} {r['first_token_s']:>10.2f} s {r['total_s']:>6.2f} s "
              f"{r['tokens']:>7} {r['tokens_per_s']:>7}")  # fmt: skip
    out = ROOT / "bench" / "results" / "openai_server.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"model": args.model, "max_tokens": args.max_tokens, "rows": rows}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
