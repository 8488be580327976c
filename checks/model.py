"""The one record every check produces."""

from __future__ import annotations

from dataclasses import asdict, dataclass

KINDS = ("concurrency", "cost", "resources")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int  # 1-based
    col: int  # 1-based
    end_line: int
    rule: str  # e.g. "ASYNC210" or "MIR001"
    source: str  # "ruff" or "mirador"
    kind: str  # one of KINDS
    message: str  # one line: what and why
    code: str  # the source line at `line`, stripped

    def to_dict(self) -> dict:
        return asdict(self)


def code_line(lines: list[str], line: int) -> str:
    """The stripped source line at 1-based `line`, or "" when out of range."""
    return lines[line - 1].strip() if 0 < line <= len(lines) else ""
