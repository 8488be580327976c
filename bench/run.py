#!/usr/bin/env python3
"""Mirador's benchmarks: each line is measured against its reference in the same run.

    python bench/run.py [--runs 5] [--out bench/results]

Writes latest.json, latest.md (the table the README shows) and timeline.png (one code
chain run: stages on a time axis, first tokens, repeats and skips). Numbers are medians;
nothing here is a test that can fail on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRADOR_DATA_DIR", tempfile.mkdtemp(prefix="mirador-bench-"))

import numpy as np  # noqa: E402
from langchain_core.messages import BaseMessage  # noqa: E402

from graph import Context, build_graph  # noqa: E402
from graph.chains import StageSpec, configured_chains  # noqa: E402
from graph.clean import STOP_SEQUENCES  # noqa: E402
from graph.models import SMALL, get_llama  # noqa: E402
from graph.nodes import build_messages  # noqa: E402
from graph.prompts import format_document, load_prompt  # noqa: E402
from graph.runtime import compute  # noqa: E402
from retrieval.embeddings import embed  # noqa: E402

DOC = ROOT / "samples" / "streaming_orchestrator.py"
TOPICS = [
    "a Python generator",
    "a hash map",
    "a mutex",
    "a B-tree",
    "tail recursion",
    "a closure",
    "a semaphore",
]
ROLE = {"human": "user", "ai": "assistant", "system": "system"}


def _dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": ROLE[m.type], "content": str(m.content)} for m in messages]


def _raw_stream(
    llama: Any, messages: list[dict[str, str]], max_tokens: int, temperature: float
) -> tuple[float, str, int]:
    """Raw llama.cpp on the compute thread: (seconds to first token, text, tokens)."""

    def go() -> tuple[float, str, int]:
        start = time.perf_counter()
        first, parts = None, []
        for part in llama.create_chat_completion(messages=messages, stream=True, max_tokens=max_tokens,
                                                 temperature=temperature, repeat_penalty=1.1, stop=STOP_SEQUENCES):  # fmt: skip
            text = part["choices"][0]["delta"].get("content") or ""
            if text:
                first = first if first is not None else time.perf_counter() - start
                parts.append(text)
        return first or 0.0, "".join(parts), len(parts)

    return compute.run(go)


def _reset(llama: Any) -> None:
    compute.run(llama.reset)  # forget the cached prefix: both sides start cold


def bench_first_token_warm(runs: int) -> dict[str, Any]:
    llama = get_llama(SMALL.name)  # the streaming chain's quick stage runs on the 0.5B
    graph = build_graph()
    chain = configured_chains().get("streaming")
    quick = StageSpec.from_dict({**chain.stages[0].to_dict(), "backend": "embedded", "model": SMALL.name})
    with tempfile.TemporaryDirectory() as reports:
        ctx = Context(
            chain="streaming", backend="embedded", retrieval=False, max_tokens=8, reports_dir=reports
        )
        graph.invoke({"query": "Warm up: what is a list?"}, context=ctx)
        system = {"role": "system", "content": load_prompt("system").render()}
        out: dict[str, Any] = {"runs": runs, "goal": "median <= 1.0 s and <= 1.2x raw"}
        # "cold cache": nothing cached; "system cached": the KV cache holds the shared system
        # prompt, as it does after any earlier run in the process.
        for cache in ("cold_cache", "system_cached"):
            mirador: list[float] = []
            raw: list[float] = []
            for n in range(runs):
                query = f"In one sentence, what is {TOPICS[n % len(TOPICS)]}?"
                for side in ("mirador", "raw"):
                    _reset(llama)
                    if cache == "system_cached":
                        _raw_stream(llama, [system, {"role": "user", "content": "Question: hello"}], 1, 0.0)
                    if side == "raw":
                        state = {"query": query, "plan": [quick.to_dict()], "results": []}
                        messages = _dicts(build_messages(state, quick, 12_000))  # type: ignore[arg-type]
                        raw.append(_raw_stream(llama, messages, 8, quick.temperature)[0])
                        continue
                    start, first = time.perf_counter(), None
                    for _mode, data in graph.stream({"query": query}, context=ctx, stream_mode=["messages"]):
                        if first is None and data[0].text:
                            first = time.perf_counter() - start
                    assert first is not None, "the chain streamed no token"
                    mirador.append(first)
            m, r = statistics.median(mirador), statistics.median(raw)
            out[cache] = {"mirador_s": m, "raw_llama_s": r, "ratio": m / r}
    return out


def bench_first_token_cold(runs: int) -> dict[str, Any]:
    """`mirador ask` from process start to the first token on stdout."""
    marker = "(embedded) ──\n".encode()
    times = []
    for n in range(runs):
        with tempfile.TemporaryDirectory() as reports:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "mirador"), "ask", f"In one sentence, what is {TOPICS[n]}?",
                 "--chain", "streaming", "--backend", "embedded", "--no-retrieval", "--max-tokens", "8",
                 "--reports-dir", reports],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"},
            )  # fmt: skip
            assert proc.stdout is not None
            seen, first = b"", None
            while chunk := proc.stdout.read(1):
                seen += chunk
                if first is None and marker in seen and not seen.endswith(marker):
                    first = time.perf_counter() - start
            proc.wait()
            assert first is not None, "the CLI printed no token"
            times.append(first)
    return {"median_s": statistics.median(times), "runs": runs, "goal": "<= 3 s"}


def _old_layout(
    stage: StageSpec, query: str, document: str, earlier: list[tuple[str, str]]
) -> list[dict[str, str]]:
    """What the old scripts did: each stage a fresh prompt with its own system prompt,
    the document and every earlier output pasted in."""
    previous = "\n\n".join(f"## {name}\n{text}" for name, text in earlier)
    body = load_prompt(stage.prompt or stage.name).render(
        query=query, stages="earlier", first_stage="earlier", failed=""
    )
    return [
        {"role": "system", "content": body},
        {
            "role": "user",
            "content": f"{document}\n\n{previous}\n\nQuery: {query}\n\nPlease add your perspective and insights.",
        },
    ]


def bench_layouts(runs: int, max_tokens: int = 96) -> dict[str, Any]:
    """The code chain over the sample document: Mirador's shared-prefix layout vs fresh prompts
    (on the 0.5B: the layout's cost, not the model's, is what is compared)."""
    llama = get_llama(SMALL.name)
    stages = [
        StageSpec.from_dict(
            {**s.to_dict(), "backend": "embedded", "model": SMALL.name, "max_tokens": max_tokens}
        )
        for s in configured_chains().get("code").stages
    ]
    text = DOC.read_text(encoding="utf-8")
    query = "Analyze the streaming implementation patterns and identify potential performance bottlenecks"
    document = format_document(str(DOC), text, max_chars=12_000)

    def run(layout: str) -> tuple[float, int]:
        _reset(llama)
        results: list[dict[str, Any]] = []
        start, tokens = time.perf_counter(), 0
        for spec in stages:
            if layout == "mirador":
                state = {"query": query, "document_path": str(DOC), "document_text": text,
                         "plan": [s.to_dict() for s in stages], "results": results}  # fmt: skip
                messages = _dicts(build_messages(state, spec, 12_000))  # type: ignore[arg-type]
            else:
                messages = _old_layout(spec, query, document, [(r["stage"], r["text"]) for r in results])
            _, out, n = _raw_stream(llama, messages, max_tokens, 0.0)
            tokens += n
            results.append({"stage": spec.name, "title": spec.title, "role": spec.role, "text": out,
                            "status": "ok", "confidence": 1.0, "verdict": "pass"})  # fmt: skip
        return time.perf_counter() - start, tokens

    walls: dict[str, list[float]] = {"mirador": [], "old": []}
    tokens: dict[str, list[int]] = {"mirador": [], "old": []}
    for _ in range(runs):
        for layout in ("mirador", "old"):
            wall, n = run(layout)
            walls[layout].append(wall)
            tokens[layout].append(n)
    m, o = statistics.median(walls["mirador"]), statistics.median(walls["old"])
    return {"mirador_s": m, "old_layout_s": o, "speedup": o / m, "tokens_mirador": statistics.median(tokens["mirador"]),
            "tokens_old": statistics.median(tokens["old"]), "runs": runs, "max_tokens": max_tokens,
            "goal": ">= 2x faster"}  # fmt: skip


def bench_overhead_instant(runs: int = 20) -> dict[str, Any]:
    """Graph overhead per stage with an instant model; the same with MiniLM scoring."""
    from tests.fakes import Script, bow_embed, chains  # a scripted model answers instantly

    out: dict[str, Any] = {}
    for name, embedder in (("bag_of_words", bow_embed), ("minilm", embed)):
        graph = build_graph(chat_model_factory=Script(), embedder=embedder, chains=chains())
        with tempfile.TemporaryDirectory() as reports:
            ctx = Context(backend="embedded", chain="code", retrieval=False, reports_dir=reports)
            graph.invoke({"query": "Warm up the streaming code question"}, context=ctx)
            walls = []
            for n in range(runs):
                start = time.perf_counter()
                result = graph.invoke({"query": f"Where is the streaming code slow, case {n}?"}, context=ctx)
                walls.append((time.perf_counter() - start) / len(result["results"]))
        out[f"ms_per_stage_{name}"] = statistics.median(walls) * 1000
    out["goal"] = "<= 5 ms per stage (graph overhead, instant model)"
    return out


def bench_chain_run(max_tokens: int = 96) -> dict[str, Any]:
    """One code chain run on the embedded model, timed from outside: overhead and a timeline."""
    graph = build_graph()
    events: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as reports:
        ctx = Context(
            chain="code", backend="embedded", retrieval=False, max_tokens=max_tokens, reports_dir=reports
        )
        graph.invoke({"query": "Warm up: what is this?", "document_path": str(DOC)}, context=ctx)
        start = time.perf_counter()
        first_seen: set[tuple[str, int]] = set()
        attempt: dict[str, int] = {}
        for mode, data in graph.stream(
            {"query": "Analyze the streaming implementation patterns and identify potential performance bottlenecks",
             "document_path": str(DOC)},
            context=ctx, stream_mode=["messages", "custom"],
        ):  # fmt: skip
            now = time.perf_counter() - start
            if mode == "custom" and data["event"] in ("stage_start", "stage_end", "stage_skip"):
                if data["event"] == "stage_start":
                    attempt[data["stage"]] = data["attempt"]
                events.append(
                    {
                        **{
                            k: data.get(k)
                            for k in ("event", "stage", "attempt", "confidence", "note", "total_s")
                        },
                        "t": now,
                    }
                )
            elif mode == "messages" and data[0].text:
                key = (data[1]["langgraph_node"], attempt.get(data[1]["langgraph_node"], 1))
                if key not in first_seen:
                    first_seen.add(key)
                    events.append({"event": "first_token", "stage": key[0], "attempt": key[1], "t": now})
        wall = time.perf_counter() - start
    in_models = sum(e["total_s"] for e in events if e["event"] == "stage_end")
    return {"wall_s": wall, "in_model_calls_s": in_models, "overhead_share": (wall - in_models) / wall,
            "goal": "<= 3% of wall time", "events": events}  # fmt: skip


def bench_retrieval(sizes: tuple[int, ...] = (1_000, 10_000), queries: int = 40) -> dict[str, Any]:
    from retrieval.indexer import index_paths
    from retrieval.store import Index

    out: dict[str, Any] = {}
    rng = np.random.default_rng(0)
    embed(["warm-up"])
    for size in sizes:
        with tempfile.TemporaryDirectory() as path:
            index = Index(path)
            collection = index.collections["documents"]
            vectors = rng.normal(size=(size, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            for lo in range(0, size, 2_000):  # stored chunks: their vectors, not their text, matter here
                hi = min(size, lo + 2_000)
                collection.upsert(ids=[f"c{i}" for i in range(lo, hi)], embeddings=vectors[lo:hi],  # type: ignore[arg-type]
                                  documents=[f"chunk {i}" for i in range(lo, hi)],
                                  metadatas=[{"source": f"/f{i // 10}", "line_start": 1, "line_end": 2, "language": "text",
                                              "kind": "documents", "position": i % 10} for i in range(lo, hi)])  # fmt: skip
            times = []
            for q in range(queries):
                start = time.perf_counter()
                index.search(f"where is the bottleneck in component {q}?", "documents", 4)
                times.append((time.perf_counter() - start) * 1000)
            out[f"search_ms_p50_{size}"] = float(np.percentile(times, 50))
            out[f"search_ms_p95_{size}"] = float(np.percentile(times, 95))
    with tempfile.TemporaryDirectory() as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for n in range(60):
            (docs / f"module{n}.py").write_text("\n\n".join(
                f"def handler_{n}_{k}(request):\n    \"\"\"Handle request kind {k} for module {n}.\"\"\"\n"
                f"    data = parse(request)\n    return respond(data, status={200 + k})\n" * 3 for k in range(6)))  # fmt: skip
        index = Index(Path(tmp) / "index")
        start = time.perf_counter()
        summary = index_paths([docs], kind="documents", index=index)
        indexing = summary.added / (time.perf_counter() - start)
        texts = [d for d in index.collections["documents"].get(include=["documents"])["documents"] or []]
        names = [
            Path(m["source"]).name
            for m in index.collections["documents"].get(include=["metadatas"])["metadatas"] or []
        ]
        start = time.perf_counter()
        for lo in range(0, len(texts), 8):  # the indexer embeds file by file; so does this reference
            embed([f"{n}\n{t}" for n, t in zip(names[lo : lo + 8], texts[lo : lo + 8], strict=True)])
        raw = len(texts) / (time.perf_counter() - start)
    out.update({"index_chunks_per_s": indexing, "raw_embed_chunks_per_s": raw, "index_vs_raw": indexing / raw,
                "chunks": summary.added, "goal": "search p50 <= 15 ms at 10k; indexing >= 0.8x raw"})  # fmt: skip
    return out


def bench_peak_memory() -> dict[str, Any]:
    code = (
        "import resource, tempfile\n"
        "from graph import Context, build_graph\n"
        f"build_graph().invoke({{'query': 'Where is it slow?', 'document_path': {str(DOC)!r}}},\n"
        "    context=Context(chain='code', backend='embedded', retrieval=False, max_tokens=64,\n"
        "                    reports_dir=tempfile.mkdtemp()))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {"peak_rss_mb": int(done.stdout.strip().splitlines()[-1]) / 1024, "goal": "<= 2048 MB"}


def timeline_png(events: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(e["stage"] for e in events))
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(stages) + 1.5))
    starts = {(e["stage"], e["attempt"]): e["t"] for e in events if e["event"] == "stage_start"}
    for e in events:
        y = stages.index(e["stage"])
        if e["event"] == "stage_end":
            t0 = starts[(e["stage"], e["attempt"])]
            repeated = e["attempt"] > 1
            ax.barh(y, e["t"] - t0, left=t0, color="#9b8cf2" if not repeated else "#f2a65a",
                    hatch="//" if repeated else None, edgecolor="black")  # fmt: skip
            ax.text(e["t"] + 0.2, y, f"{e['confidence']:.2f}", va="center", fontsize=8)
        elif e["event"] == "first_token":
            ax.plot(e["t"], y, marker="|", markersize=18, color="black")
        elif e["event"] == "stage_skip":
            ax.plot(e["t"], y, marker="x", markersize=10, color="red")
            ax.text(e["t"] + 0.2, y, "skipped", va="center", fontsize=8, color="red")
    ax.set_yticks(range(len(stages)), stages)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the run started")
    ax.set_title(
        "Code chain on the embedded model: | first token, hatched = repeat, x = skipped, number = confidence"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description="Mirador benchmarks")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
    }
    steps = [
        ("first_token_warm", lambda: bench_first_token_warm(args.runs)),
        ("first_token_cold", lambda: bench_first_token_cold(3)),
        ("layouts", lambda: bench_layouts(max(1, args.runs // 2))),
        ("overhead_instant", bench_overhead_instant),
        ("chain_run", bench_chain_run),
        ("retrieval", bench_retrieval),
        ("peak_memory", bench_peak_memory),
    ]
    for name, step in steps:
        started = time.perf_counter()
        results[name] = step()
        print(f"{name}: done in {time.perf_counter() - started:.0f} s", flush=True)
    timeline_png(results["chain_run"].pop("events"), out / "timeline.png")
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (out / "latest.md").write_text(table(results), encoding="utf-8")
    print(table(results))
    return 0


def table(r: dict[str, Any]) -> str:
    w, c, lay, oi, ch, ret, mem = (r[k] for k in ("first_token_warm", "first_token_cold", "layouts",
                                                   "overhead_instant", "chain_run", "retrieval", "peak_memory"))  # fmt: skip
    rows = [
        ("First token, warm, KV cache empty (streaming chain, quick stage)", f"{w['cold_cache']['mirador_s']:.2f} s",
         f"raw llama.cpp, same prompt: {w['cold_cache']['raw_llama_s']:.2f} s", f"{w['cold_cache']['ratio']:.2f}×",
         w["goal"]),
        ("First token, warm, system prompt cached (as after any run)", f"{w['system_cached']['mirador_s']:.2f} s",
         f"raw llama.cpp, same prompt: {w['system_cached']['raw_llama_s']:.2f} s",
         f"{w['system_cached']['ratio']:.2f}×", w["goal"]),
        ("First token, cold (`mirador ask` from process start)", f"{c['median_s']:.2f} s", "—", "—", c["goal"]),
        (f"Code chain, {lay['max_tokens']} tokens/stage, sample document", f"{lay['mirador_s']:.1f} s",
         f"old layout (fresh prompt per stage): {lay['old_layout_s']:.1f} s", f"{lay['speedup']:.2f}× faster",
         lay["goal"]),
        ("Graph overhead per stage, instant model", f"{oi['ms_per_stage_bag_of_words']:.1f} ms",
         f"with MiniLM scoring: {oi['ms_per_stage_minilm']:.1f} ms", "—", oi["goal"]),
        ("Time outside model calls, code chain on the embedded model", f"{100 * ch['overhead_share']:.1f} %",
         f"wall {ch['wall_s']:.1f} s, in models {ch['in_model_calls_s']:.1f} s", "—", ch["goal"]),
        ("Search (query embedding + Chroma), 1k chunks", f"p50 {ret['search_ms_p50_1000']:.1f} ms",
         f"p95 {ret['search_ms_p95_1000']:.1f} ms", "—", ""),
        ("Search (query embedding + Chroma), 10k chunks", f"p50 {ret['search_ms_p50_10000']:.1f} ms",
         f"p95 {ret['search_ms_p95_10000']:.1f} ms", "—", "p50 <= 15 ms"),
        ("Indexing throughput", f"{ret['index_chunks_per_s']:.0f} chunks/s",
         f"raw MiniLM on the same chunks: {ret['raw_embed_chunks_per_s']:.0f} chunks/s", f"{ret['index_vs_raw']:.2f}×",
         ">= 0.8×"),
        ("Peak memory, code chain on the embedded model", f"{mem['peak_rss_mb']:.0f} MB", "—", "—", mem["goal"]),
    ]  # fmt: skip
    lines = [f"Measured {r['date']} on {r['machine']}; medians.", "",
             "| what | Mirador | reference (same run) | ratio | goal |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
