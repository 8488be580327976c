#!/usr/bin/env python3
"""The demo's cost against raw llama.cpp, measured in the same run.

    python bench/demo.py [--runs 3]

For the code chain on samples/streaming_orchestrator.py (the `make demo` run, default
models and token caps):
- raw llama.cpp on the identical first prompt (the first stage's messages, as the graph
  builds them): seconds to the first token with an empty KV cache, prefill tokens/s, and
  decode tokens/s for a fixed 64-token answer;
- the chain: seconds to the first model token (from `graph.stream`), and wall time;
- their ratios. Medians over --runs. Writes bench/results/demo.json. Not a test: these
  machines vary up to 2x from day to day, so the raw rates are printed beside the chain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRADOR_DATA_DIR", tempfile.mkdtemp(prefix="mirador-bench-"))

from graph import Context, build_graph  # noqa: E402
from graph.chains import configured_chains  # noqa: E402
from graph.models import EMBEDDED_MODEL, get_llama  # noqa: E402
from graph.nodes import build_messages, read_document  # noqa: E402
from graph.runtime import compute  # noqa: E402

DOC = ROOT / "samples" / "streaming_orchestrator.py"
QUERY = "Analyze the streaming implementation patterns and identify potential performance bottlenecks"
ROLE = {"human": "user", "ai": "assistant", "system": "system"}


def first_prompt() -> list[dict[str, str]]:
    """The code chain's first stage's messages, built as the graph builds them."""
    from graph.findings import checked

    text = read_document(str(DOC))
    chain = configured_chains().get("code")
    facts = checked(text, str(DOC))
    state: Any = {"query": QUERY, "document_path": str(DOC), "document_text": text, "facts": facts,
                  "plan": [s.to_dict() for s in chain.stages], "results": []}  # fmt: skip
    messages = build_messages(state, chain.stages[0], Context().max_document_chars)
    return [{"role": ROLE[m.type], "content": str(m.content)} for m in messages]


def raw(llama: Any, messages: list[dict[str, str]], decode: int = 64) -> dict[str, float]:
    """First token with an empty KV cache, prefill and decode rates, on the compute thread."""

    def go() -> dict[str, float]:
        llama.reset()  # forget the cached prefix: the prompt is read in full
        start = time.perf_counter()
        first = None
        tokens = 0
        for part in llama.create_chat_completion(messages=messages, stream=True, max_tokens=decode,
                                                 temperature=0.0):  # fmt: skip
            if part["choices"][0]["delta"].get("content"):
                tokens += 1
                if first is None:
                    first = time.perf_counter() - start
        total = time.perf_counter() - start
        assert first is not None
        return {"first_token_s": first, "decode_tps": (tokens - 1) / (total - first) if tokens > 1 else 0.0}

    return compute.run(go)


def prompt_tokens(llama: Any, messages: list[dict[str, str]]) -> int:
    text = "".join(m["content"] for m in messages)
    return len(llama.tokenize(text.encode("utf-8"), add_bos=False))


def chain_run(graph: Any, reports: str) -> dict[str, float]:
    start = time.perf_counter()
    first = None
    for _mode, data in graph.stream(
        {"query": QUERY, "document_path": str(DOC)},
        context=Context(backend="embedded", chain="code", retrieval=False, reports_dir=reports),
        stream_mode=["messages"],
    ):
        if first is None and data[0].text:
            first = time.perf_counter() - start
    return {"first_token_s": first or 0.0, "wall_s": time.perf_counter() - start}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    llama = get_llama(EMBEDDED_MODEL)
    messages = first_prompt()
    n_prompt = prompt_tokens(llama, messages)
    graph = build_graph()
    reports = tempfile.mkdtemp(prefix="mirador-bench-reports-")
    raws, chains = [], []
    for n in range(args.runs):
        raws.append(raw(llama, messages))
        compute.run(llama.reset)  # the chain starts cold too
        chains.append(chain_run(graph, reports))
        print(f"run {n + 1}: raw first token {raws[-1]['first_token_s']:.2f} s, decode "
              f"{raws[-1]['decode_tps']:.1f} tok/s · chain first token {chains[-1]['first_token_s']:.2f} s, "
              f"wall {chains[-1]['wall_s']:.1f} s", flush=True)  # fmt: skip
    med = {
        "prompt_tokens": n_prompt,
        "raw_first_token_s": statistics.median(r["first_token_s"] for r in raws),
        "raw_prefill_tps": statistics.median(n_prompt / r["first_token_s"] for r in raws),
        "raw_decode_tps": statistics.median(r["decode_tps"] for r in raws),
        "chain_first_token_s": statistics.median(c["first_token_s"] for c in chains),
        "chain_wall_s": statistics.median(c["wall_s"] for c in chains),
        "runs": args.runs,
        "model": EMBEDDED_MODEL,
        "date": time.strftime("%Y-%m-%d"),
    }
    med["first_token_ratio"] = med["chain_first_token_s"] / med["raw_first_token_s"]
    print(
        f"\nprompt {n_prompt} tokens · raw llama.cpp: first token {med['raw_first_token_s']:.2f} s "
        f"(prefill {med['raw_prefill_tps']:.1f} tok/s), decode {med['raw_decode_tps']:.1f} tok/s"
    )
    print(f"code chain on the demo: first token {med['chain_first_token_s']:.2f} s "
          f"({med['first_token_ratio']:.2f}x raw; goal <= 1.2x), wall {med['chain_wall_s']:.0f} s (goal <= 180 s)")  # fmt: skip
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "demo.json").write_text(json.dumps(med, indent=2) + "\n")
    print(f"the last run's report: {max(Path(reports).glob('*.md'), key=lambda p: p.stat().st_mtime)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
