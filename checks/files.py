"""Which files a `mirador check PATH...` run reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SKIP_DIRS = frozenset(
    {
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".eggs",
        "node_modules",
        ".git",
        ".hg",
        ".svn",
        "build",
        "dist",
        "site-packages",
    }
)


def _skip_dir(path: str, name: str) -> bool:
    if name in SKIP_DIRS or name.endswith(".egg-info"):
        return True
    return os.path.isfile(os.path.join(path, name, "pyvenv.cfg"))


def _git_ignored(root: str, candidates: list[str]) -> set[str]:
    """The candidates that the .gitignore files of root's work tree ignore ({} outside git)."""
    if not candidates:
        return set()
    try:
        inside = subprocess.run(
            ["git", "-C", root, "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return set()
        absolute = [os.path.abspath(c) for c in candidates]
        # A root the user named explicitly is checked even when it is itself ignored.
        root_abs = os.path.abspath(root)
        probe = subprocess.run(
            ["git", "-C", root, "check-ignore", "--stdin"],
            input="\n".join([root_abs, *absolute]) + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    ignored = {line.strip() for line in probe.stdout.splitlines() if line.strip()}
    if root_abs in ignored:
        return set()
    return {c for c, a in zip(candidates, absolute, strict=True) if a in ignored}


def _walk(root: str) -> list[str]:
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _skip_dir(dirpath, d))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py"))
    ignored = _git_ignored(root, found)
    return [f for f in found if f not in ignored]


def python_files(paths: list[str]) -> list[str]:
    """Every .py file under `paths`; ValueError (one line) for a path that cannot be checked."""
    if not paths:
        raise ValueError("no path given")
    out: list[str] = []
    seen: set[str] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise ValueError(f"{raw}: no such file or directory")
        if p.is_dir():
            if not os.access(p, os.R_OK | os.X_OK):
                raise ValueError(f"{raw}: folder is not readable")
            files = _walk(str(raw))
        elif p.is_file():
            if p.suffix not in (".py", ".pyi"):
                raise ValueError(f"{raw}: not a Python file (.py) or a folder")
            if not os.access(p, os.R_OK):
                raise ValueError(f"{raw}: file is not readable")
            files = [str(raw)]
        else:
            raise ValueError(f"{raw}: not a regular file or folder")
        for f in files:
            key = os.path.abspath(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def read_source(path: str) -> str:
    """The file's text; ValueError when it cannot be read as UTF-8."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text") from exc
