"""Ruff, run as a subprocess, for the rule families it already does well.

The families were chosen by measurement (eval/checks_precision.py): each fires
rarely on well-kept packages and, when it fires, names something worth fixing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass

# rule (or family prefix) -> kind; the longest matching prefix wins.
RUFF_KINDS: dict[str, str] = {
    "ASYNC": "concurrency",
    "S113": "resources",
    "SIM115": "resources",
    "RUF006": "concurrency",
    "B019": "resources",
}
SELECT = ["ASYNC", "S113", "SIM115", "RUF006", "B019"]
# Measured and cut: a `timeout` parameter on an async def, `sleep(0)` and long sleeps are style;
# os.path calls in async code are a stat, not I/O worth a thread; sleep-polling loops (ASYNC110) were
# deliberate shutdown and grace-period waits in every instance measured.
IGNORE = ["ASYNC109", "ASYNC110", "ASYNC115", "ASYNC116", "ASYNC240"]
# Not reported in test code (prefixes): a test's HTTP call to its own local server, blocking calls in
# an async test.
TEST_EXEMPT = ("S113", "ASYNC2")

# Ruff's messages, said in plain words (the rule id stays).
PLAIN: dict[str, str] = {
    "ASYNC100": "a timeout context with no await inside: it can never time anything out",
    "ASYNC105": "a trio function that returns a coroutine is called without await: it never runs",
    "ASYNC110": "a busy-wait loop of sleeps in async code: wait on an Event instead",
    "ASYNC210": "a blocking HTTP call inside async def stops the whole event loop until it returns; await an "
    "async client's call instead (httpx.AsyncClient, aiohttp)",
    "ASYNC212": "a blocking HTTP client call inside async def stops the whole event loop until it returns; await "
    "an async client's call instead (httpx.AsyncClient, aiohttp)",
    "ASYNC220": "a blocking subprocess call inside async def stops the event loop; use asyncio.create_subprocess_exec",
    "ASYNC221": "a blocking subprocess call inside async def stops the event loop; use asyncio.create_subprocess_exec",
    "ASYNC222": "waiting on a process inside async def blocks the event loop; use asyncio.create_subprocess_exec "
    "and await its wait()",
    "ASYNC230": "a blocking open() inside async def stops the event loop during file I/O; read or write the file "
    "in `await asyncio.to_thread(...)`",
    "ASYNC250": "a blocking input() inside async def stops the event loop",
    "ASYNC251": "time.sleep() inside async def stops the whole event loop; use await asyncio.sleep()",
    "S113": "an HTTP request with no timeout can hang forever; pass timeout=",
    "SIM115": "a file opened without `with` is not closed when an exception is raised; use a with block",
    "RUF006": "a task from create_task() that nothing keeps a reference to can be garbage-collected mid-run; "
    "keep it in a set and discard it in a done callback",
    "B019": "functools.cache/lru_cache on a method keeps every instance alive forever (a memory leak); cache a "
    "module-level function of the values it needs instead",
}

# What each selected family catches, in a few words (as Rule.title for Mirador's own rules).
TITLES: dict[str, str] = {
    "ASYNC1": "a timeout or cancel scope that cannot work",
    "ASYNC2": "blocking call inside async def",
    "S113": "HTTP request with no timeout",
    "SIM115": "file opened without with",
    "RUF006": "task from create_task with no reference kept",
    "B019": "lru_cache on a method",
}


def kind_of(rule: str) -> str:
    best = ""
    for prefix in RUFF_KINDS:
        if rule.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return RUFF_KINDS.get(best, "resources")


@dataclass(frozen=True)
class RuffHit:
    filename: str
    rule: str
    line: int
    col: int
    end_line: int
    message: str


def ruff_bin() -> str:
    """The ruff binary that the `ruff` package installed (or the one on PATH)."""
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("ruff")
        if found:
            return found
        raise RuntimeError("ruff is not installed: pip install ruff") from None


def _command(extra: list[str]) -> list[str]:
    return [
        ruff_bin(),
        "check",
        "--isolated",
        "--no-cache",
        "--output-format",
        "json",
        "--select",
        ",".join(SELECT),
        "--ignore",
        ",".join(IGNORE),
        "--exit-zero",
        *extra,
    ]


def _parse(out: str) -> list[RuffHit]:
    hits = []
    for rec in json.loads(out or "[]"):
        code = rec.get("code")
        if not code or code.startswith("E9"):  # syntax errors are not findings
            continue
        loc = rec.get("location") or {}
        end = rec.get("end_location") or loc
        hits.append(
            RuffHit(
                filename=rec.get("filename", ""),
                rule=code,
                line=int(loc.get("row", 1)),
                col=int(loc.get("column", 1)),
                end_line=int(end.get("row", loc.get("row", 1))),
                message=PLAIN.get(
                    code, rec.get("message", "").splitlines()[0] if rec.get("message") else code
                ),
            )
        )
    return hits


def _bounded_cache(hit: RuffHit, lines: list[str]) -> bool:
    """B019 on an lru_cache with a size bound (or the default 128): the instances it keeps are capped."""
    if hit.rule != "B019" or not (0 < hit.line <= len(lines)):
        return False
    text = lines[hit.line - 1].replace(" ", "")
    if "lru_cache" not in text:
        return False
    return "maxsize=None" not in text and "lru_cache(None" not in text


def _explicit_no_timeout(hit: RuffHit, lines: list[str]) -> bool:
    """S113 on an explicit `timeout=None`: a stated decision, not a forgotten timeout."""
    if hit.rule != "S113" or not (0 < hit.line <= len(lines)):
        return False
    return "timeout=None" in lines[hit.line - 1].replace(" ", "")


def _task_kept_in_name(hit: RuffHit, lines: list[str]) -> bool:
    """RUF006 on `task = loop.create_task(...)`: the author took a reference on purpose."""
    if hit.rule != "RUF006" or not (0 < hit.line <= len(lines)):
        return False
    text = lines[hit.line - 1].strip()
    head, sep, _ = text.partition("=")
    return bool(sep) and head.strip().isidentifier() and "create_task" in text


def keep(hit: RuffHit, lines: list[str]) -> bool:
    """Ruff's findings that Mirador keeps: narrowed where measurement showed them not worth a change."""
    return not (
        _bounded_cache(hit, lines) or _explicit_no_timeout(hit, lines) or _task_kept_in_name(hit, lines)
    )


def _run(args: list[str], *, timeout: float, text: str | None = None) -> list[RuffHit]:
    """Ruff's findings for `args` (files, or `-` with `text` on stdin); exit 1 means found."""
    proc = subprocess.run(_command(args), input=text, capture_output=True, text=True, encoding="utf-8",
                          timeout=timeout, check=False)  # fmt: skip
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"ruff failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return _parse(proc.stdout)


def run_on_source(text: str, filename: str) -> list[RuffHit]:
    name = filename if filename.endswith((".py", ".pyi")) else "document.py"
    return _run(["--stdin-filename", name, "-"], timeout=120, text=text)


def run_on_files(files: list[str], chunk: int = 1000) -> list[RuffHit]:
    """Ruff once over all files (in chunks of `chunk` to keep command lines short)."""
    hits: list[RuffHit] = []
    for start in range(0, len(files), chunk):
        part = [os.path.abspath(f) for f in files[start : start + chunk]]
        hits.extend(_run(part, timeout=600))
    return hits
