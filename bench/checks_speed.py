"""How fast `mirador check` reads code: check_paths over installed package code.

    .venv/bin/python bench/checks_speed.py [--runs 5] [--lines 10000]

Takes whole files from well-kept installed packages (httpx, then rich, then requests) until at
least --lines lines are gathered, copies them into a temporary folder (so that each run reads the
same files, outside any git work tree), and times check_paths() over that folder --runs times:
ruff's subprocess and Mirador's own rules together, as `mirador check` runs them. Prints the
median, lines per second and the seconds for 10,000 lines. Goal (issue 14): 10,000 lines in
under 2 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from checks import check_paths  # noqa: E402
from checks.files import python_files  # noqa: E402

SOURCES = ["httpx", "rich", "requests", "langchain_core"]
GOAL_S = 2.0


def gather(min_lines: int, into: Path) -> tuple[int, int]:
    lines = files = 0
    for name in SOURCES:
        spec = importlib.util.find_spec(name)
        if not spec or not spec.submodule_search_locations:
            continue
        pkg = Path(next(iter(spec.submodule_search_locations)))
        for f in python_files([str(pkg)]):
            target = into / name / Path(f).relative_to(pkg)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            lines += target.read_bytes().count(b"\n")
            files += 1
            if lines >= min_lines:
                return lines, files
    return lines, files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lines", type=int, default=10_000)
    ap.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mirador-checks-bench-") as tmp:
        lines, files = gather(args.lines, Path(tmp))
        if lines < args.lines:
            print(f"only {lines} lines of package code found", file=sys.stderr)
            return 2
        times, findings = [], 0
        for _ in range(args.runs):
            t0 = time.perf_counter()
            findings = len(check_paths([tmp]))
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    per_second = lines / median
    per_10k = 10_000 / per_second
    print(
        f"{lines:,} lines in {files} files, {findings} findings; runs: {', '.join(f'{t:.2f}' for t in times)} s"
    )
    print(
        f"median {median:.2f} s: {per_second:,.0f} lines/s, {per_10k:.2f} s per 10,000 lines (goal < {GOAL_S} s)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "lines": lines,
                    "files": files,
                    "runs": [round(t, 3) for t in times],
                    "median_s": round(median, 3),
                    "lines_per_s": round(per_second),
                    "s_per_10k_lines": round(per_10k, 3),
                    "goal_met": per_10k < GOAL_S,
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
