#!/usr/bin/env python3
"""Mirador's evaluation: the labelled cases in eval/cases.toml through the real chain on the
embedded model, scored automatically. Prints a scorecard and writes eval/results/latest.json.

    python eval/run.py [--max-tokens 64] [--case SUBSTRING]

Checks, per case:
- type: the query type is the labelled one;
- persona: persona chunks reached the stages exactly when the case is about the user;
- clean: no special token, template echo or repeated block survived into any stage
  output or the report (cleaning them again removes nothing);
- no_copy: no kept stage output is a near-copy of an earlier one, unless the graph acted
  on it (repeated it, or kept it at its repeat limit with a note);
- summary: the Key Findings Summary is not a copy of any one stage, and the report names
  the stages it draws on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MIRADOR_DATA_DIR", tempfile.mkdtemp(prefix="mirador-eval-"))

from graph import Context, build_graph  # noqa: E402
from graph.clean import SPECIAL_TOKEN, clean_output  # noqa: E402
from graph.confidence import span_overlap  # noqa: E402
from graph.state import kept_results  # noqa: E402
from retrieval.indexer import index_paths  # noqa: E402
from retrieval.store import Index  # noqa: E402

CHECKS = ("type", "persona", "clean", "no_copy", "summary")
ECHOES = ("Please add your perspective and insights", "Please provide a comprehensive", "### Specialist")


def _clean(text: str) -> bool:
    if SPECIAL_TOKEN.search(text) or any(echo in text for echo in ECHOES):
        return False
    again, removed = clean_output(text)
    return not removed.get("repetition") and not removed.get("after_end_token")


def score_case(case: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    results = out["results"]
    kept = [r for r in kept_results(results) if r["status"] != "skipped"]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    persona_seen = any(c["kind"] == "persona" for c in out.get("retrieved", []))
    copies = []
    for i, r in enumerate(kept):
        for earlier in kept[:i]:
            if (
                r["text"]
                and earlier["text"]
                and span_overlap(r["text"], earlier["text"]) >= 0.5
                and not r["note"]
            ):
                copies.append(f"{r['stage']} copies {earlier['stage']}")
    stages = [r for r in kept if r["role"] != "synthesis" and r["text"]]
    summary = out.get("summary", "")
    copied_from = [r["stage"] for r in stages if summary and span_overlap(summary, r["text"]) >= 0.8]
    section = report.split("## Key Findings Summary", 1)[1].split("## ", 1)[0]
    named = all(f"`{r['stage']}`" in section for r in stages)
    verdict = {
        "type": out["query_type"] == case["type"],
        "persona": persona_seen == case["persona"],
        "clean": all(_clean(r["text"]) for r in results) and not SPECIAL_TOKEN.search(report),
        "no_copy": not copies,
        "summary": bool(summary) and not copied_from and named,
    }
    why = {
        "type": f"got {out['query_type']} ({'; '.join(out.get('query_type_reasons', []))})",
        "persona": f"persona chunks {'seen' if persona_seen else 'not seen'}",
        "no_copy": ", ".join(copies),
        "summary": f"copies {', '.join(copied_from)}"
        if copied_from
        else ("" if named else "stages not named"),
    }
    return {"name": case["name"], "passed": verdict, "why": {k: v for k, v in why.items() if not verdict[k] and v},
            "report": out["report_path"], "chain": out["chain"]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description="Mirador evaluation")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--case", default="", help="run only cases whose name contains this")
    args = parser.parse_args()
    cases = [c for c in tomllib.loads((HERE / "cases.toml").read_text())["case"] if args.case in c["name"]]
    work = Path(tempfile.mkdtemp(prefix="mirador-eval-"))
    index = Index(work / "index")
    index_paths([HERE / "files" / "project", ROOT / "samples"], kind="documents", index=index, progress=False)
    index_paths([HERE / "files" / "persona.md"], kind="persona", index=index, progress=False)
    graph = build_graph()
    scored = []
    for case in cases:
        inputs = {"query": case["query"]}
        if case.get("document"):
            inputs["document_path"] = str(HERE / case["document"])
        context = Context(backend="embedded", max_tokens=args.max_tokens, index_dir=str(work / "index"),
                          reports_dir=str(work / "reports"))  # fmt: skip
        result = score_case(case, graph.invoke(inputs, context=context))
        scored.append(result)
        marks = " ".join(f"{c}:{'✓' if result['passed'][c] else '✗'}" for c in CHECKS)
        print(f"{result['name']:<55} {marks}", flush=True)
        for check, why in result["why"].items():
            print(f"    {check}: {why}")
    totals = {c: sum(r["passed"][c] for r in scored) for c in CHECKS}
    print("\ntotals: " + " · ".join(f"{c} {n}/{len(scored)}" for c, n in totals.items()))
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({"max_tokens": args.max_tokens, "cases": scored,
                                                 "totals": totals, "of": len(scored)}, indent=2) + "\n")  # fmt: skip
    print(f"scorecard: {out / 'latest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
