"""`mirador check PATH... [--json] [--no-color]`: Mirador's checks as a linter.

Exit status, as ruff's: 0 nothing found, 1 something found, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter

from checks import check_paths
from checks.model import Finding

KIND_COLOR = {"concurrency": "35", "cost": "33", "resources": "36"}


def _paint(text: str, code: str, on: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if on else text


def _line(f: Finding, color: bool) -> str:
    where = _paint(f"{f.path}:{f.line}:{f.col}", "1", color)
    rule = _paint(f.rule, "1;" + KIND_COLOR.get(f.kind, "31"), color)
    return f"{where} {rule} {f.message}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mirador check",
        description="Run Mirador's checks (ruff's ASYNC, S113, SIM115, RUF006, B019 and Mirador's MIR rules) "
        "on Python files; no model runs.",
        epilog="Exit status: 0 nothing found, 1 findings, 2 bad input.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="a .py file or a folder (recursive)")
    p.add_argument("--json", action="store_true", help="print a JSON list of findings on stdout")
    p.add_argument("--no-color", action="store_true", help="no ANSI colours")
    return p


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list and args_list[0] == "check" and not os.path.exists("check"):
        args_list = args_list[1:]  # `mirador check ...` may pass its own verb on
    try:
        if any(a in ("-h", "--help") for a in args_list):
            _parser().print_help()
            return 0
        args = _parser().parse_args(args_list)
        findings = check_paths(args.paths)
    except ValueError as exc:
        print(f"mirador check: {str(exc).splitlines()[0] if str(exc) else 'bad input'}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as exc:  # ruff missing or failing: nothing was checked
        print(
            f"mirador check: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr
        )
        return 2
    if args.json:
        json.dump(
            [
                {
                    "path": f.path,
                    "line": f.line,
                    "end_line": f.end_line,
                    "col": f.col,
                    "rule": f.rule,
                    "source": f.source,
                    "kind": f.kind,
                    "message": f.message,
                    "code": f.code,
                }
                for f in findings
            ],
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        color = not args.no_color and "NO_COLOR" not in os.environ and sys.stdout.isatty()
        for f in findings:
            print(_line(f, color))
    if findings:
        kinds = Counter(f.kind for f in findings)
        detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        print(
            f"Found {len(findings)} problem{'s' if len(findings) != 1 else ''} ({detail}).", file=sys.stderr
        )
    else:
        print("No problems found.", file=sys.stderr)
    sys.stdout.flush()
    return 1 if findings else 0
