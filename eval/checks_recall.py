"""Recall of the checks alone on the code eval cases, by line (issue 14's goal: 60 %).

For each case in eval/code_cases.toml, runs every check (no model) on the case's file
and counts a known problem as named when a finding's line falls in the problem's line
range (one finding names one problem at most: eval/scoring.named_by_line).

    .venv/bin/python eval/checks_recall.py [--cases eval/heldout_cases.toml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from eval.scoring import checks_by_line, load_cases  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description="recall of the checks alone on the code cases")
    parser.add_argument(
        "--cases", default=str(HERE / "code_cases.toml"), help="a cases file (code_cases.toml)"
    )
    args = parser.parse_args()
    named_total = problems_total = 0
    for case in load_cases(args.cases):
        found, named = checks_by_line(case)
        missed = [p["id"] for p in case["problem"] if p["id"] not in named]
        rules = ", ".join(sorted({f"{f.rule}:{f.line}" for f in found})) or "none"
        print(
            f"{case['name']:22} {len(named)}/{len(case['problem'])}  missed: {', '.join(missed) or '-'}  ({rules})"
        )
        named_total += len(named)
        problems_total += len(case["problem"])
    print(
        f"checks alone: {named_total}/{problems_total} ({100 * named_total / problems_total:.0f} %) by line"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
