"""Scoring a report against the ground-truth code cases in eval/code_cases.toml.

Standard library only: the unit tests load every case in CI without the models.

A report gets credit for a known problem only in its own words: fenced code blocks and lines
copied from the analysed file are removed first (`own_words`), so a report that pastes the
code back names nothing. A problem is named when one of its patterns matches those words
(`named`), or when a structured finding cites a line inside the problem's range
(`named_by_line`; each finding names at most one problem).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

KINDS = ("concurrency", "cost", "resources")
MIN_LINES, MAX_LINES = 40, 250
MIN_COPIED = 12  # a line shorter than this is too common to call a copy

_FENCE = re.compile(r"^\s*(```|~~~)")
_MARKUP = re.compile(r"^(?:\s*(?:[-*+]|\d+[.)]|>)\s+)+")
_SUMMARY = re.compile(r"^## Key Findings Summary[^\n]*\n(.*?)(?=^## |\Z)", re.M | re.S)


def _bare(line: str) -> str:
    """A line without markdown bullets, quote marks, backticks and surrounding whitespace."""
    return _MARKUP.sub("", line).replace("`", "").strip()


def _without_fences(text: str) -> list[str]:
    kept, fence = [], ""
    for line in text.splitlines():
        m = _FENCE.match(line)
        if fence:
            if m and m.group(1) == fence:
                fence = ""
            continue
        if m:
            fence = m.group(1)
            continue
        kept.append(line)
    return kept


def _copied(bare: str, source_lines: list[str]) -> bool:
    if len(bare) >= MIN_COPIED and any(bare in src for src in source_lines):
        return True
    return any(len(src) >= MIN_COPIED and src in bare and 2 * len(src) > len(bare) for src in source_lines)


def own_words(report: str, source: str) -> str:
    """The report's own words: fenced code blocks and lines copied from `source` removed.

    A line is copied when, stripped of markdown bullets, quotes, backticks and whitespace, it
    is at least 12 characters and appears inside a source line, or a source line of at least
    12 characters appears inside it and makes up most of it. Inline code spans in prose stay:
    they are how a report names things.
    """
    source_lines = [s for s in (line.strip() for line in source.splitlines()) if s]
    kept = [line for line in _without_fences(report) if not _copied(_bare(line), source_lines)]
    return "\n".join(kept)


def named(text: str, problems: list[dict[str, Any]]) -> set[str]:
    """Ids of the problems with at least one pattern found in `text` (case-insensitive, re.S)."""
    return {p["id"] for p in problems if any(re.search(pat, text, re.I | re.S) for pat in p["patterns"])}


def named_by_line(findings: list[tuple[int, int]], problems: list[dict[str, Any]]) -> set[str]:
    """Ids of the problems cited by line: each finding (line, end_line) names at most one
    problem, the first not yet claimed whose `lines` range overlaps it."""
    claimed: list[str] = []
    for line, end_line in findings:
        lo, hi = min(line, end_line), max(line, end_line)
        for p in problems:
            first, last = p["lines"]
            if p["id"] not in claimed and lo <= last and first <= hi:
                claimed.append(p["id"])
                break
    return set(claimed)


def on_problem(finding: dict[str, Any], case: dict[str, Any]) -> bool:
    """A reported finding is on a known problem when its line is in the problem's range and,
    for a stage's finding (no `rule`), its own words (message and fix) name that problem: a
    stage's remark about the character set of a line that also holds a known problem is an
    extra finding, to be labelled, not a hit."""
    words = own_words(f"{finding['message']} {finding.get('fix', '')}", case["source"])
    return any(
        p["lines"][0] <= finding["line"] <= p["lines"][1] and (finding.get("rule") or named(words, [p]))
        for p in case["problem"]
    )


def checks_by_line(case: dict[str, Any]) -> tuple[list[Any], set[str]]:
    """The checks' findings on a loaded case's file, and the problems they name by line."""
    from checks import check_source  # standard library and ruff only: no model runtime

    found = check_source(case["source"], case["file"])
    return found, named_by_line([(f.line, f.end_line) for f in found], case["problem"])


def summary_section(report: str) -> str:
    """The text of the `## Key Findings Summary` section (up to the next `## ` heading)."""
    m = _SUMMARY.search(report)
    return m.group(1).strip() if m else ""


def score(report: str, case: dict[str, Any], findings: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
    """Which of a case's problems a report names: anywhere, in its summary, and by cited line."""
    source = case["source"]
    problems = case["problem"]
    anywhere = named(own_words(report, source), problems)
    in_summary = named(own_words(summary_section(report), source), problems)
    by_line = named_by_line(list(findings), problems)
    return {
        "named": sorted(anywhere | by_line),
        "in_summary": sorted(in_summary),
        "by_pattern": sorted(anywhere),
        "by_line": sorted(by_line),
        "of": len(problems),
    }


def _check_case(case: dict[str, Any], base: Path) -> str:
    """'' when the case is well formed, else what is wrong with it."""
    for key in ("name", "file", "query"):
        if not isinstance(case.get(key), str) or not case[key].strip():
            return f"missing or empty {key!r}"
    if not isinstance(case.get("fine", ""), str):
        return "'fine' must be a string"
    path = base / case["file"]
    if not path.is_file():
        return f"file {case['file']} does not exist"
    n = len(path.read_text(encoding="utf-8").splitlines())
    if not MIN_LINES <= n <= MAX_LINES:
        return f"{case['file']} has {n} lines, not {MIN_LINES}-{MAX_LINES}"
    problems = case.get("problem", [])
    if not 1 <= len(problems) <= 4:
        return f"{len(problems)} problems, not 1-4"
    ids = [p.get("id") for p in problems]
    if len(set(ids)) != len(ids):
        return f"duplicate problem ids {ids}"
    for p in problems:
        pid = p.get("id") or "?"
        if p.get("kind") not in KINDS:
            return f"problem {pid}: kind {p.get('kind')!r} is not one of {', '.join(KINDS)}"
        if not isinstance(p.get("what"), str) or not p["what"].strip():
            return f"problem {pid}: missing 'what'"
        lines = p.get("lines")
        if not (
            isinstance(lines, list)
            and len(lines) == 2
            and all(isinstance(x, int) for x in lines)
            and 1 <= lines[0] <= lines[1] <= n
        ):
            return f"problem {pid}: lines {lines!r} is not [first, last] inside 1-{n}"
        patterns = p.get("patterns")
        if not isinstance(patterns, list) or not 2 <= len(patterns) <= 6:
            return f"problem {pid}: needs 2-6 patterns"
        for pat in patterns:
            try:
                re.compile(pat, re.I | re.S)
            except (re.error, TypeError) as exc:
                return f"problem {pid}: pattern {pat!r} does not compile: {exc}"
    return ""


def load_cases(path: str | Path) -> list[dict[str, Any]]:
    """The validated cases of a code_cases.toml; each gains `path` (the file) and `source` (its text).

    Raises ValueError with a one-line message naming the case when one is malformed.
    """
    path = Path(path)
    base = path.parent
    cases = tomllib.loads(path.read_text(encoding="utf-8")).get("case", [])
    if not cases:
        raise ValueError(f"{path}: no [[case]] entries")
    for i, case in enumerate(cases, start=1):
        problem = _check_case(case, base)
        if problem:
            raise ValueError(f"{path.name}: case {i} ({case.get('name', '?')!r}): {problem}")
        case["path"] = base / case["file"]
        case["source"] = case["path"].read_text(encoding="utf-8")
    return cases


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cases_markdown(cases: list[dict[str, Any]]) -> str:
    """eval/CASES.md: the table of cases and their known problems (`python eval/scoring.py`)."""
    kinds = {k: sum(p["kind"] == k for c in cases for p in c["problem"]) for k in KINDS}
    total = sum(kinds.values())
    out = [
        "# Code evaluation cases",
        "",
        f"{len(cases)} Python files written for Mirador (`eval/code/`), {total} known problems "
        f"({', '.join(f'{n} {k}' for k, n in kinds.items())}), defined in `eval/code_cases.toml` "
        "and scored by `eval/scoring.py`. The files carry no comment that gives a problem away. "
        "A report names a problem when its own words (fenced code and lines copied from the file "
        "removed) match one of the problem's patterns, or when a finding cites a line in its range. "
        "Each file also holds code that looks like a problem and is not (*fine on purpose*), so "
        "invented findings can be counted.",
        "",
        "Generated from the TOML by `python eval/scoring.py > eval/CASES.md`; a test keeps them in step.",
        "",
        "| case | file | lines | question | known problems (id · kind · lines: what) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in cases:
        problems = "<br>".join(
            f"`{p['id']}` · {p['kind']} · {p['lines'][0]}–{p['lines'][1]}: {_cell(p['what'])}"
            for p in c["problem"]
        )
        n = len(c["source"].splitlines())
        out.append(f"| {c['name']} | `{c['file']}` | {n} | {_cell(c['query'])} | {problems} |")
    out += ["", "## Fine on purpose", ""]
    out += [f"- **{c['name']}**: {c['fine']}" for c in cases if c.get("fine")]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(cases_markdown(load_cases(Path(__file__).resolve().parent / "code_cases.toml")), end="")
