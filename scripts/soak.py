#!/usr/bin/env python3
"""Soak: run N chains back to back on the embedded model in one process and report memory
growth, failures and the slowest stage. Exits 1 on any failure or when memory keeps growing.

    python scripts/soak.py [--runs 8] [--chain streaming] [--max-tokens 48] [--max-growth-mb 64]
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

from graph import Context, build_graph
from graph.state import FAILED

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--chain", default="streaming")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--max-growth-mb", type=float, default=64.0)
    args = parser.parse_args()
    graph = build_graph()
    failures: list[str] = []
    slowest = ("", "", 0.0)
    memory: list[float] = []
    with tempfile.TemporaryDirectory() as reports:
        context = Context(backend="embedded", chain=args.chain, max_tokens=args.max_tokens, reports_dir=reports,
                          retrieval=False)  # fmt: skip
        for n in range(args.runs):
            start = time.perf_counter()
            out = graph.invoke(
                {"query": f"Run {n}: where could this code be faster?",
                 "document_path": str(ROOT / "samples" / "streaming_orchestrator.py")},
                context=context,
            )  # fmt: skip
            for r in out["results"]:
                if r["status"] in (*FAILED, "empty"):
                    failures.append(f"run {n} {r['stage']}: {r['status']} {r['error']}")
                if r["total_s"] > slowest[2]:
                    slowest = (f"run {n}", r["stage"], r["total_s"])
            if not Path(out["report_path"]).is_file():
                failures.append(f"run {n}: no report")
            gc.collect()
            memory.append(rss_mb())
            print(
                f"run {n + 1}/{args.runs}: {time.perf_counter() - start:.1f} s, RSS {memory[-1]:.0f} MB",
                flush=True,
            )
    # Growth after the first run (which loads the models and warms the caches).
    growth = memory[-1] - memory[0]
    print(f"\nruns: {args.runs} · failures: {len(failures)} · memory growth after run 1: {growth:+.1f} MB "
          f"(limit {args.max_growth_mb:.0f}) · slowest stage: {slowest[1]} in {slowest[0]}, {slowest[2]:.1f} s")  # fmt: skip
    for failure in failures:
        print(f"failure: {failure}")
    return 1 if failures or growth > args.max_growth_mb else 0


if __name__ == "__main__":
    sys.exit(main())
