#!/usr/bin/env python3
"""Mirador's evaluation, scored automatically. Prints scorecards and writes
eval/results/<name>.json.

    python eval/run.py [--part code|classic|all] [--case SUBSTRING] [--embedded-model NAME]
                       [--no-baseline] [--max-tokens N] [--name NAME] [--cases FILE]
    python eval/run.py --relabel --name NAME    # rescore a run after labelling its findings

**code** (eval/code_cases.toml, eval/CASES.md): files with known problems. For each case,
the checks alone, one plain call to the analysis model (the document, the question, the
chain's whole token budget) and the code chain, scored on the same ground truth:
- named: known problems the answer names in its own words (fenced code and lines copied
  from the file removed; the case's regexes), anywhere and in the Key Findings Summary;
- by line: known problems a finding's line falls in (checks, and the chain's findings);
- findings: what the chain reported, split into known problems, labelled true extras,
  labelled false (eval/finding_labels.toml, by hand) and unlabelled; set aside: findings
  whose code the file lacks (never reported);
- copies: stages the graph passed although they copy an earlier stage or echo their
  instructions (must be 0);
- seconds and tokens.

**classic** (eval/cases.toml): query type, persona gating, clean output, no copies and a
summary that is not a copy, as before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("MIRADOR_DATA_DIR", tempfile.mkdtemp(prefix="mirador-eval-"))

from scoring import (  # noqa: E402
    checks_by_line,
    load_cases,
    named,
    named_by_line,
    on_problem,
    own_words,
    summary_section,
)

from graph import Context, build_graph, nodes  # noqa: E402
from graph.chains import configured_chains  # noqa: E402
from graph.clean import SPECIAL_TOKEN, clean_output  # noqa: E402
from graph.confidence import span_overlap  # noqa: E402
from graph.findings import Finding, confirmed  # noqa: E402
from graph.state import kept_results  # noqa: E402

SHARED_MESSAGES = nodes.build_messages  # Mirador's layout, before use_layout swaps it

CLASSIC = ("type", "persona", "clean", "no_copy", "summary")
ECHOES = ("Please add your perspective and insights", "Please provide a comprehensive", "### Specialist")
BASELINE_SYSTEM = "You are an expert code reviewer. Answer the user's question about the code."


# --- the code cases -------------------------------------------------------------------


def load_labels() -> dict[tuple[str, int, str], dict[str, str]]:
    """Hand labels for reported findings that match no known problem: (case, line, who) ->
    {label: true|false, why}. `who` is the rule for a check's finding, else the first finder."""
    path = HERE / "finding_labels.toml"
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {(x["case"], x["line"], x["who"]): x for x in data.get("label", [])}


def who(finding: dict[str, Any]) -> str:
    return finding["rule"] or finding["found_by"][0]


def baseline(case: dict[str, Any], source: str, budget: int, model: str) -> dict[str, Any]:
    """One plain call to the analysis model: the document and the question, the chain's budget."""
    from langchain_core.messages import HumanMessage, SystemMessage

    from graph.models import EmbeddedChat, get_llama

    chat = EmbeddedChat(model_name=model, max_tokens=budget, llama=get_llama(model))
    prompt = f"{case['file']}:\n```python\n{source}\n```\n\nQuestion: {case['query']}"
    start = time.perf_counter()
    tokens, parts = 0, []
    for chunk in chat.stream([SystemMessage(BASELINE_SYSTEM), HumanMessage(prompt)]):
        if chunk.text:
            parts.append(str(chunk.text))
            tokens += 1
    return {"text": "".join(parts), "seconds": round(time.perf_counter() - start, 1), "tokens": tokens}


def score_code_case(
    case: dict[str, Any],
    graph: Any,
    context: Context,
    labels: dict[Any, Any],
    with_baseline: bool,
    model: str,
) -> dict[str, Any]:
    source = (HERE / case["file"]).read_text(encoding="utf-8")
    problems = case["problem"]
    ids = [p["id"] for p in problems]
    checks, checks_named = checks_by_line(case)
    row: dict[str, Any] = {"name": case["name"], "problems": ids,
                           "checks": {"by_line": sorted(checks_named), "findings": len(checks)}}  # fmt: skip
    chain = configured_chains().get("code")
    budget = sum(context.max_tokens or s.max_tokens for s in chain.stages)
    if with_baseline:
        base = baseline(case, source, budget, model)
        row["baseline"] = {"named": sorted(named(own_words(base["text"], source), problems)),
                           "seconds": base["seconds"], "tokens": base["tokens"]}  # fmt: skip
    start = time.perf_counter()
    out = graph.invoke({"query": case["query"], "document_path": str(HERE / case["file"])}, context=context)
    seconds = round(time.perf_counter() - start, 1)
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    words = own_words(report, source)
    findings = out.get("findings", [])
    in_range = named_by_line([(f["line"], f["end_line"]) for f in findings], problems)
    reported = [as_reported(f) for f in findings]
    results = out["results"]
    passed_copies = [f"{r['stage']} ({', '.join(r['reasons'])})" for r in kept_results(results)
                     if r["verdict"] in ("pass", "kept") and copy_or_echo(r)]  # fmt: skip
    row["chain"] = {
        "named": sorted(named(words, problems)),
        "named_in_summary": sorted(named(own_words(summary_section(report), source), problems)),
        "by_line": sorted(in_range),
        "findings": len(findings), "reported": reported,
        "set_aside": sum(len(r.get("set_aside") or []) for r in results),
        "passed_copies": passed_copies,
        "flagged": [f"{r['stage']} #{r['attempt']}" for r in results if copy_or_echo(r)],
        "dropped": [r["stage"] for r in kept_results(results) if r["verdict"] == "dropped"],
        "seconds": seconds, "tokens": sum(r["tokens"] for r in results),
        "report": out["report_path"],
    }  # fmt: skip
    sort_findings(row, case, labels)
    return row


def copy_or_echo(result: Mapping[str, Any]) -> bool:
    """Whether an attempt was judged a copy of an earlier stage or an echo of its instructions."""
    return any(w in " ".join(result["reasons"]) for w in ("repeated the", "restated"))


def sort_findings(row: dict[str, Any], case: dict[str, Any], labels: dict[Any, Any]) -> None:
    """Split a scored case's reported findings into known problems, labelled true extras,
    labelled false and unlabelled (eval/finding_labels.toml, by hand)."""
    c = row["chain"]
    c["known"], c["true_extra"], c["false"], c["unlabelled"] = 0, [], [], []
    c["findings"] = sum(f["confirmed"] for f in c["reported"])  # the Findings list; the rest are leads
    lead = {
        "reported": len(c["reported"]) - c["findings"],
        "known": 0,
        "true_extra": [],
        "false": [],
        "unlabelled": [],
    }
    for f in c["reported"]:
        item = {"line": f["line"], "who": f["who"], "code": f["code"], "message": f["message"][:160]}
        label = labels.get((row["name"], f["line"], f["who"]))
        into = c if f["confirmed"] else lead
        if on_problem(f, case):
            into["known"] += 1
        elif label is None:
            into["unlabelled"].append(item)
        else:
            into["true_extra" if label["label"] == "true" else "false"].append(item)
    c["unconfirmed"] = lead


def reported_from_report(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The findings of a run scored before `reported` was stored, from its report's JSON twin."""
    facts = json.loads(Path(row["chain"]["report"]).with_suffix(".json").read_text(encoding="utf-8"))
    return [as_reported(f) for f in facts["findings"]]


def as_reported(f: dict[str, Any]) -> dict[str, Any]:
    return {"line": f["line"], "who": who(f), "rule": f["rule"], "code": f["code"], "message": f["message"],
            "fix": f["fix"], "confirmed": confirmed(cast(Finding, f))}  # fmt: skip


def print_code_row(row: dict[str, Any]) -> None:
    n = len(row["problems"])
    c = row["chain"]
    base = row.get("baseline")
    b = f"baseline {len(base['named'])}/{n} ({base['seconds']:.0f} s)" if base else "baseline —"
    print(f"{row['name'][:38]:<38} checks {len(row['checks']['by_line'])}/{n} · {b} · "
          f"chain {len(c['named'])}/{n} (summary {len(c['named_in_summary'])}, by line {len(c['by_line'])}) "
          f"· findings {c['findings']}: false {len(c['false'])}, unlabelled {len(c['unlabelled'])}, "
          f"set aside {c['set_aside']} · {c['seconds']:.0f} s, {c['tokens']} tokens", flush=True)  # fmt: skip
    for f in c["unlabelled"] + c["unconfirmed"]["unlabelled"]:
        print(f"    unlabelled: line {f['line']} [{f['who']}] {f['code'][:60]!r}: {f['message'][:100]}")
    for s in c["passed_copies"]:
        print(f"    PASSED A COPY/ECHO: {s}")


def code_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    problems = sum(len(r["problems"]) for r in rows)
    chain = [r["chain"] for r in rows]
    reported = sum(c["findings"] for c in chain)
    false = sum(len(c["false"]) for c in chain)
    unlabelled = sum(len(c["unlabelled"]) + len(c["unconfirmed"]["unlabelled"]) for c in chain)
    totals = {
        "cases": len(rows),
        "problems": problems,
        "checks_by_line": sum(len(r["checks"]["by_line"]) for r in rows),
        "chain_named": sum(len(c["named"]) for c in chain),
        "chain_named_in_summary": sum(len(c["named_in_summary"]) for c in chain),
        "chain_by_line": sum(len(c["by_line"]) for c in chain),
        "findings": reported,
        "false": false,
        "unlabelled": unlabelled,
        "invented_share": round(false / reported, 3) if reported else 0.0,
        "unconfirmed": sum(c["unconfirmed"]["reported"] for c in chain),
        "unconfirmed_false": sum(len(c["unconfirmed"]["false"]) for c in chain),
        "unconfirmed_true": sum(
            len(c["unconfirmed"]["true_extra"]) + c["unconfirmed"]["known"] for c in chain
        ),
        "set_aside": sum(c["set_aside"] for c in chain),
        "passed_copies": sum(len(c["passed_copies"]) for c in chain),
        "flagged_attempts": sum(len(c.get("flagged", [])) for c in chain),
        "chain_seconds_median": statistics.median(c["seconds"] for c in chain) if chain else 0,
        "chain_tokens": sum(c["tokens"] for c in chain),
    }
    if all("baseline" in r for r in rows) and rows:
        totals["baseline_named"] = sum(len(r["baseline"]["named"]) for r in rows)
        totals["baseline_seconds_median"] = statistics.median(r["baseline"]["seconds"] for r in rows)
    return totals


def print_code_totals(t: dict[str, Any]) -> None:
    p = t["problems"]

    def pct(n: int) -> str:
        return f"{n}/{p} ({100 * n / p:.0f} %)" if p else "0/0"

    print(f"\ncode totals over {t['cases']} cases, {p} known problems:")
    print(f"  checks alone (by line)      {pct(t['checks_by_line'])}")
    if "baseline_named" in t:
        print(
            f"  single call (named)         {pct(t['baseline_named'])} · median {t['baseline_seconds_median']:.0f} s"
        )
    print(f"  chain (named)               {pct(t['chain_named'])} · in the summary {pct(t['chain_named_in_summary'])}"
          f" · by line {pct(t['chain_by_line'])} · median {t['chain_seconds_median']:.0f} s")  # fmt: skip
    print(f"  chain findings              {t['findings']} reported: {t['false']} labelled false "
          f"({100 * t['invented_share']:.0f} % invented), {t['unlabelled']} unlabelled; "
          f"{t['set_aside']} set aside (ungrounded or refuted)")  # fmt: skip
    print(f"  unconfirmed (listed apart)  {t['unconfirmed']}: {t['unconfirmed_false']} labelled false, "
          f"{t['unconfirmed_true']} true")  # fmt: skip
    print(f"  copies/echoes passed        {t['passed_copies']} (attempts flagged as a copy or echo: "
          f"{t.get('flagged_attempts', 0)})")  # fmt: skip


# --- the prompt layouts -----------------------------------------------------------------


def continuing_messages(
    state: Any, spec: Any, max_document_chars: int, correction: str = "", prompts: Any = None
) -> list[Any]:
    """The old scripts' layout, for `--layout continuing`: each stage continues the previous
    stage's conversation, every earlier stage's instructions and answer a turn of it under a
    `### Specialist N` header, then its own. The material opens the first turn, so the
    document prefix is cached as in the shared layout; what differs is that every stage,
    the analysts included, reads every earlier stage's words."""
    from langchain_core.messages import AIMessage, HumanMessage

    from graph import nodes
    from graph.chains import StageSpec

    system, human = SHARED_MESSAGES(state, spec, max_document_chars, correction, prompts)
    body, question = str(human.content), f"Question: {state['query']}"
    material = body[: body.index(question) + len(question)]  # the document, passages, turns, question
    plan = {s["name"]: StageSpec.from_dict(s) for s in state["plan"]}
    turns = [r for r in kept_results(state.get("results", [])) if r["text"] and r["stage"] != spec.name]
    messages: list[Any] = [system]
    for n, r in enumerate(turns, start=1):
        head = f"{material}\n\n" if n == 1 else ""
        said = nodes.instructions(plan[r["stage"]], state, prompts=prompts)
        messages += [HumanMessage(f"{head}### Specialist {n}\n{said}"), AIMessage(r["text"])]
    own = body[len(material) :].strip()  # the merged findings (for later stages), then its instructions
    head = f"{material}\n\n" if not turns else ""
    messages.append(HumanMessage(f"{head}### Specialist {len(turns) + 1}\n{own}"))
    return messages


def use_layout(layout: str) -> None:
    """Run the graph with `layout`'s prompts: "shared" (Mirador's) or "continuing" (the old one)."""
    from graph import nodes

    nodes.build_messages = SHARED_MESSAGES if layout == "shared" else continuing_messages  # type: ignore[assignment]


# --- the classic cases ------------------------------------------------------------------


def _clean(text: str) -> bool:
    if SPECIAL_TOKEN.search(text) or any(echo in text for echo in ECHOES):
        return False
    again, removed = clean_output(text)
    return not removed.get("repetition") and not removed.get("after_end_token")


def score_classic_case(case: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    results = out["results"]
    kept = [r for r in kept_results(results) if r["status"] != "skipped" and r["verdict"] != "dropped"]
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    persona_seen = any(c["kind"] == "persona" for c in out.get("retrieved", []))
    copies = [f"{r['stage']} copies {e['stage']}" for i, r in enumerate(kept) for e in kept[:i]
              if r["text"] and e["text"] and span_overlap(r["text"], e["text"]) >= 0.5
              and r["verdict"] == "pass"]  # fmt: skip
    stages = [r for r in kept if r["role"] != "synthesis" and r["text"]]
    summary = out.get("summary", "")
    copied_from = [r["stage"] for r in stages if summary and span_overlap(summary, r["text"]) >= 0.8]
    section = summary_section(report)
    named_all = all(f"`{r['stage']}`" in report.split("## Key Findings Summary", 1)[1] for r in stages)
    verdict = {
        "type": out["query_type"] == case["type"],
        "persona": persona_seen == case["persona"],
        "clean": all(_clean(r["text"]) for r in results) and not SPECIAL_TOKEN.search(report),
        "no_copy": not copies,
        "summary": bool(summary) and not copied_from and named_all and bool(section.strip()),
    }
    why = {
        "type": f"got {out['query_type']} ({'; '.join(out.get('query_type_reasons', []))})",
        "persona": f"persona chunks {'seen' if persona_seen else 'not seen'}",
        "no_copy": ", ".join(copies),
        "summary": f"copies {', '.join(copied_from)}"
        if copied_from
        else ("" if named_all else "stages not named"),
    }
    return {"name": case["name"], "passed": verdict, "why": {k: v for k, v in why.items() if not verdict[k] and v},
            "report": out["report_path"], "chain": out["chain"]}  # fmt: skip


def run_classic(graph: Any, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.indexer import index_paths
    from retrieval.store import Index

    cases = [c for c in tomllib.loads((HERE / "cases.toml").read_text())["case"] if args.case in c["name"]]
    index = Index(work / "index")
    index_paths([HERE / "files" / "project", ROOT / "samples"], kind="documents", index=index)
    index_paths([HERE / "files" / "persona.md"], kind="persona", index=index)
    scored = []
    for case in cases:
        inputs = {"query": case["query"]}
        if case.get("document"):
            inputs["document_path"] = str(HERE / case["document"])
        context = Context(backend="embedded", max_tokens=args.max_tokens, index_dir=str(work / "index"),
                          reports_dir=str(work / "reports"), embedded_model=args.embedded_model)  # fmt: skip
        result = score_classic_case(case, graph.invoke(inputs, context=context))
        scored.append(result)
        marks = " ".join(f"{c}:{'✓' if result['passed'][c] else '✗'}" for c in CLASSIC)
        print(f"{result['name']:<55} {marks}", flush=True)
        for check, why in result["why"].items():
            print(f"    {check}: {why}")
    totals = {c: sum(r["passed"][c] for r in scored) for c in CLASSIC}
    print("\nclassic totals: " + " · ".join(f"{c} {n}/{len(scored)}" for c, n in totals.items()))
    return {"cases": scored, "totals": totals, "of": len(scored)}


def main() -> int:
    parser = argparse.ArgumentParser(description="Mirador evaluation")
    parser.add_argument("--part", choices=("code", "classic", "all"), default="all")
    parser.add_argument("--case", default="", help="run only cases whose name contains this")
    parser.add_argument("--cases", default=str(HERE / "code_cases.toml"),
                        help="the code cases (eval/heldout_cases.toml: written without reading the checks)")  # fmt: skip
    parser.add_argument("--embedded-model", default="", help="coder-0.5b or coder-1.5b for every stage")
    parser.add_argument("--no-baseline", action="store_true", help="skip the single-call baseline")
    parser.add_argument("--layout", choices=("shared", "continuing"), default="shared",
                        help="prompt layout: Mirador's shared material, or the old continuing conversation")  # fmt: skip
    parser.add_argument("--max-tokens", type=int, default=0, help="cap per stage (0: each stage's own)")
    parser.add_argument("--name", default="latest", help="results file name under eval/results/")
    parser.add_argument("--relabel", action="store_true",
                        help="rescore eval/results/<name>.json with eval/finding_labels.toml; run nothing")  # fmt: skip
    args = parser.parse_args()
    if args.relabel:
        path = HERE / "results" / f"{args.name}.json"
        saved = json.loads(path.read_text())
        labels = load_labels()
        cases = {c["name"]: c for c in load_cases(saved.get("cases_file", args.cases))}
        for row in saved["code"]["cases"]:
            reported = row["chain"].get("reported")
            if reported is None or any(
                "confirmed" not in f for f in reported
            ):  # scored before they were stored
                row["chain"]["reported"] = reported_from_report(row)
            sort_findings(row, cases[row["name"]], labels)
            print_code_row(row)
        saved["code"]["totals"] = code_totals(saved["code"]["cases"])
        print_code_totals(saved["code"]["totals"])
        path.write_text(json.dumps(saved, indent=2) + "\n")
        return 0
    work = Path(tempfile.mkdtemp(prefix="mirador-eval-"))
    use_layout(args.layout)
    graph = build_graph()
    from graph.models import EMBEDDED_MODEL

    model = args.embedded_model or EMBEDDED_MODEL
    results: dict[str, Any] = {"embedded_model": model, "max_tokens": args.max_tokens, "layout": args.layout,
                               "cases_file": args.cases, "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    if args.part in ("code", "all"):
        labels = load_labels()
        context = Context(backend="embedded", chain="code", retrieval=False, max_tokens=args.max_tokens,
                          reports_dir=str(work / "reports"), embedded_model=args.embedded_model)  # fmt: skip
        rows = []
        for case in load_cases(args.cases):
            if args.case in case["name"]:
                rows.append(score_code_case(case, graph, context, labels, not args.no_baseline, model))
                print_code_row(rows[-1])
        results["code"] = {"cases": rows, "totals": code_totals(rows)}
        print_code_totals(results["code"]["totals"])
    if args.part in ("classic", "all"):
        results["classic"] = run_classic(graph, work, args)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"scorecard: {out / f'{args.name}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
