"""Mirador's static checks: ruff's rule families that fit, plus Mirador's own ast rules.

Standard library only (ruff runs as a subprocess): importing this package loads
no model runtime, torch, Chroma or LangGraph.

    from checks import check_source, check_paths
    for f in check_paths(["src/"]):
        print(f.path, f.line, f.rule, f.message)
"""

from __future__ import annotations

import ast
import os

from checks.files import python_files, read_source
from checks.model import KINDS, Finding, code_line
from checks.ruff import TEST_EXEMPT, TITLES, RuffHit, keep, kind_of, run_on_files, run_on_source
from checks.rules import RULES, handed_on, is_test_path, run_rules

__all__ = ["KINDS", "RULES", "Finding", "check_paths", "check_source", "title"]


def title(rule: str) -> str:
    """What a rule catches, in a few words; "" for a rule Mirador does not know."""
    if rule in RULES:
        return RULES[rule].title
    return next((t for prefix, t in TITLES.items() if rule.startswith(prefix)), "")


def _own(text: str, path: str) -> list[Finding]:
    lines = text.splitlines()
    out = []
    for h in run_rules(text, path):
        rule = RULES[h.rule]
        out.append(
            Finding(
                path=path,
                line=h.line,
                col=h.col + 1,
                end_line=h.end_line,
                rule=h.rule,
                source="mirador",
                kind=rule.kind,
                message=h.message,
                code=code_line(lines, h.line),
            )
        )
    return out


def _from_ruff(hit: RuffHit, path: str, lines: list[str]) -> Finding:
    return Finding(
        path=path,
        line=hit.line,
        col=hit.col,
        end_line=hit.end_line,
        rule=hit.rule,
        source="ruff",
        kind=kind_of(hit.rule),
        message=hit.message,
        code=code_line(lines, hit.line),
    )


def _owned_elsewhere(findings: list[Finding], texts: dict[str, str]) -> list[Finding]:
    """SIM115 where the opened file is returned or handed on: its new owner closes it."""
    out = []
    trees: dict[str, ast.Module | None] = {}
    for f in findings:
        if f.rule.startswith(TEST_EXEMPT) and is_test_path(f.path):
            continue
        if f.rule == "SIM115":
            if f.path not in trees:
                try:
                    trees[f.path] = ast.parse(texts.get(f.path, ""))
                except (SyntaxError, ValueError):
                    trees[f.path] = None
            tree = trees[f.path]
            if tree is not None and handed_on(tree, f.line):
                continue
        out.append(f)
    return out


def _merge(own: list[Finding], ruffs: list[Finding]) -> list[Finding]:
    """Own findings that restate a ruff finding of the same kind on the same line are dropped."""
    taken = {(f.path, f.line, f.kind) for f in ruffs}
    kept = [f for f in own if (f.path, f.line, f.kind) not in taken]
    return sorted([*kept, *ruffs], key=lambda f: (f.path, f.line, f.col, f.rule))


def check_source(text: str, path: str = "<document>") -> list[Finding]:
    """Every check over one Python source text, sorted by line. Never raises on a syntax error."""
    lines = text.splitlines()
    ruffs = [
        _from_ruff(h, path, lines) for h in run_on_source(text, os.path.basename(path)) if keep(h, lines)
    ]
    return _merge(_own(text, path), _owned_elsewhere(ruffs, {path: text}))


def check_paths(paths: list[str]) -> list[Finding]:
    """Every check over the .py files in `paths` (files and folders, recursively).

    Raises ValueError, with a one-line message, for a path that does not exist,
    is not a .py file or a folder, or cannot be read.
    """
    files = python_files(list(paths))
    texts: dict[str, str] = {}
    for f in files:
        try:
            texts[f] = read_source(f)
        except ValueError:
            if f in paths:
                raise
            continue  # a file found in a folder that is not UTF-8 text is not Python we can check
    by_abs = {os.path.abspath(f): f for f in texts}
    own: list[Finding] = []
    for f, text in texts.items():
        own.extend(_own(text, f))
    ruffs: list[Finding] = []
    split: dict[str, list[str]] = {}
    for hit in run_on_files(list(texts)) if texts else []:
        path = by_abs.get(os.path.abspath(hit.filename), hit.filename)
        if path not in split:
            split[path] = texts.get(path, "").splitlines()
        if keep(hit, split[path]):
            ruffs.append(_from_ruff(hit, path, split[path]))
    return _merge(own, _owned_elsewhere(ruffs, texts))
