"""Precision of `mirador check` on real, well-kept code.

Runs every check (ruff's chosen families and Mirador's own rules) over the
Python code of packages installed in this environment, prints findings per
1,000 lines per rule and in total, and re-checks the hand-labelled sample in
eval/checks_labels.toml: the share labelled "true" (true and worth fixing) is
the labelled precision; a label whose finding no longer fires is reported as
stale. Results go to eval/results/checks_precision.json.

    .venv/bin/python eval/checks_precision.py [--show-unlabelled]

Goals (issue 14): at most 1 finding per 1,000 lines; at least 75 % of the
labelled sample true and worth fixing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks import RULES, Finding, check_paths  # noqa: E402
from checks.files import python_files  # noqa: E402

# The six, whose rate the goal is measured on ...
PACKAGES = ["httpx", "rich", "requests", "langgraph", "langchain_core", "chromadb"]
# ... and more well-kept packages from the same virtualenv, heavy on async, HTTP and I/O, so that the
# labelled sample is large enough to say something (the six alone give a handful of findings).
MORE_PACKAGES = [
    "langsmith",
    "httpcore",
    "urllib3",
    "anyio",
    "aiohttp",
    "starlette",
    "uvicorn",
    "websockets",
    "sse_starlette",
    "langgraph_api",
    "huggingface_hub",
    "ollama",
    "tqdm",
    "jinja2",
    "click",
    "tenacity",
    "pypdf",
    "langgraph_sdk",
    "langgraph_runtime_inmem",
    "langchain_ollama",
    "langchain_text_splitters",
    "aiosqlite",
    "diskcache",
    "fsspec",
    "requests_toolbelt",
    "requests_oauthlib",
    "websocket",
    "filelock",
    "prometheus_client",
    "sentence_transformers",
    "h11",
    "structlog",
]
LABELS = ROOT / "eval" / "checks_labels.toml"
RESULTS = ROOT / "eval" / "results" / "checks_precision.json"
LABEL_VALUES = ("true", "harmless", "false")
MAX_PER_KLOC = 1.0
MIN_PRECISION = 0.75


def package_dirs(names: list[str]) -> dict[str, Path]:
    found = {}
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec and spec.submodule_search_locations:
            found[name] = Path(next(iter(spec.submodule_search_locations)))
    return found


def count_lines(files: list[str]) -> int:
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            total += fh.read().count(b"\n")
    return total


def relative(path: str, site: Path) -> str:
    return os.path.relpath(path, site)


def match_labels(labels: list[dict], findings: list[Finding], site: Path) -> tuple[list[dict], list[dict]]:
    """(labels with their current finding, stale labels). A label matches the same path, rule and code
    line; the nearest line wins when the code line repeats."""
    by_key: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        by_key.setdefault((relative(f.path, site), f.rule, f.code), []).append(f)
    live, stale = [], []
    for lab in labels:
        candidates = by_key.get((lab["path"], lab["rule"], lab["code"].strip()), [])
        if not candidates:
            stale.append(lab)
            continue
        best = min(candidates, key=lambda f: abs(f.line - int(lab["line"])))
        candidates.remove(best)
        live.append({**lab, "current_line": best.line})
    return live, stale


def measure(names: list[str]) -> dict:
    dirs = package_dirs(names)
    files_by_pkg = {name: python_files([str(d)]) for name, d in dirs.items()}
    lines_by_pkg = {name: count_lines(fs) for name, fs in files_by_pkg.items()}
    t0 = time.perf_counter()
    findings = check_paths([str(d) for d in dirs.values()]) if dirs else []
    seconds = time.perf_counter() - t0
    versions = {}
    for name in dirs:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "?"
    return {
        "dirs": dirs,
        "files": sum(len(v) for v in files_by_pkg.values()),
        "lines_by_pkg": lines_by_pkg,
        "lines": sum(lines_by_pkg.values()),
        "findings": findings,
        "seconds": seconds,
        "versions": versions,
    }


def report(title: str, m: dict, site: Path) -> dict:
    findings: list[Finding] = m["findings"]
    kloc = max(m["lines"], 1) / 1000
    per_rule = Counter(f.rule for f in findings)
    per_pkg = Counter(Path(relative(f.path, site)).parts[0] for f in findings)
    print(f"{title}: {m['lines']:,} lines of Python in {m['files']:,} files, checked in {m['seconds']:.1f} s")
    for name in m["dirs"]:
        lines = m["lines_by_pkg"][name]
        rate = per_pkg[name] / (lines / 1000) if lines else 0.0
        print(f"  {name} {m['versions'][name]}: {lines:,} lines, {per_pkg[name]} findings ({rate:.2f}/kloc)")
    print("  findings (per 1,000 lines) by rule:")
    rules = sorted(set(per_rule) | set(RULES))
    print("   " + "  ".join(f"{r} {per_rule.get(r, 0)} ({per_rule.get(r, 0) / kloc:.3f})" for r in rules))
    rate = len(findings) / kloc
    print(f"  total {len(findings)} ({rate:.3f} per 1,000 lines; goal ≤ {MAX_PER_KLOC})\n")
    return {
        "packages": {
            name: {
                "version": m["versions"][name],
                "lines": m["lines_by_pkg"][name],
                "findings": per_pkg[name],
            }
            for name in m["dirs"]
        },
        "lines": m["lines"],
        "seconds": round(m["seconds"], 2),
        "findings": len(findings),
        "per_kloc": round(rate, 3),
        "per_rule": {
            r: {"findings": per_rule.get(r, 0), "per_kloc": round(per_rule.get(r, 0) / kloc, 4)}
            for r in rules
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show-unlabelled", action="store_true", help="print findings that have no label yet")
    args = ap.parse_args(argv)

    core = measure(PACKAGES)
    if not core["dirs"]:
        print("none of the packages is installed here", file=sys.stderr)
        return 2
    site = next(iter(core["dirs"].values())).parent
    more = measure(MORE_PACKAGES)
    core_out = report("The six packages of issue 14", core, site)
    more_out = report("More well-kept packages", more, site)
    findings: list[Finding] = core["findings"] + more["findings"]
    all_lines = core["lines"] + more["lines"]
    all_rate = len(findings) / (all_lines / 1000)
    print(f"All: {len(findings)} findings in {all_lines:,} lines ({all_rate:.3f} per 1,000 lines)")

    labels = tomllib.loads(LABELS.read_text(encoding="utf-8")).get("finding", []) if LABELS.exists() else []
    bad = [lab for lab in labels if lab.get("label") not in LABEL_VALUES]
    if bad:
        print(f"\n{len(bad)} labels are not one of {LABEL_VALUES}: {bad[0]}", file=sys.stderr)
        return 2
    live, stale = match_labels(labels, findings, site)
    verdicts = Counter(lab["label"] for lab in live)
    precision = verdicts["true"] / len(live) if live else 0.0
    print(f"\nLabelled sample: {len(live)} live labels ({len(stale)} stale) for {len(findings)} findings")
    print("  " + ", ".join(f"{verdicts[v]} {v}" for v in LABEL_VALUES))
    print(f"  precision (share true and worth fixing): {precision:.0%}   (goal ≥ {MIN_PRECISION:.0%})")
    by_rule_labels: dict[str, Counter] = {}
    for lab in live:
        by_rule_labels.setdefault(lab["rule"], Counter())[lab["label"]] += 1
    for rule, c in sorted(by_rule_labels.items()):
        n = sum(c.values())
        print(f"  {rule:<9} {c['true']}/{n} true  ({c['harmless']} harmless, {c['false']} false)")
    for lab in stale:
        print(f"  STALE: {lab['path']}:{lab['line']} {lab['rule']} no longer fires: {lab['code']}")

    labelled_keys = {(lab["path"], lab["rule"], lab.get("current_line")) for lab in live}
    unlabelled = [f for f in findings if (relative(f.path, site), f.rule, f.line) not in labelled_keys]
    if args.show_unlabelled or unlabelled:
        print(f"\n{len(unlabelled)} unlabelled findings:")
        for f in unlabelled:
            print(f"  {relative(f.path, site)}:{f.line} {f.rule} {f.code}")

    met = core_out["per_kloc"] <= MAX_PER_KLOC and precision >= MIN_PRECISION and not stale
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "core": core_out,
                "more": more_out,
                "all": {"lines": all_lines, "findings": len(findings), "per_kloc": round(all_rate, 3)},
                "labelled": len(live),
                "stale": [f"{lab['path']}:{lab['line']} {lab['rule']}" for lab in stale],
                "verdicts": {v: verdicts[v] for v in LABEL_VALUES},
                "precision": round(precision, 3),
                "precision_by_rule": {
                    rule: {"true": c["true"], "labelled": sum(c.values())}
                    for rule, c in sorted(by_rule_labels.items())
                },
                "unlabelled": len(unlabelled),
                "goals": {"per_kloc_at_most": MAX_PER_KLOC, "precision_at_least": MIN_PRECISION, "met": met},
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}; goals {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
