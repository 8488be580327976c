"""A run on the terminal: a header per stage, tokens as they come, each stage's facts, a live status.

On a terminal the output is coloured with rich (by stage, and each stage's confidence green,
yellow or red), without colour under `NO_COLOR`; piped, it is plain text, written as it comes.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.status import Status
from rich.text import Text

from graph.report import group_notes, stage_timing, stage_where, warm_line

STAGE_STYLES = ("cyan", "magenta", "blue", "yellow", "green", "bright_cyan", "bright_magenta")


def confidence_style(confidence: float, note: str) -> str:
    """Green at 0.70 or more; under it, yellow when the stage was kept as it was, red when it
    was not (its note says why: repeated, dropped, under the threshold)."""
    return "green" if confidence >= 0.7 else "yellow" if not note else "red"


class Printer:
    """Streams a run's events and tokens to `console`. `quiet` shows no tokens, only progress
    and results; its live status is then a spinner line, else the terminal's title."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.plain = not console.is_terminal
        self.total = 0
        self.number = 0
        self.style = ""
        self.stage = ""
        self.started = 0.0
        self.tokens = 0
        self.shown = 0.0
        self.live: Status | None = None

    def custom(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "plan":
            self.total = len(event["notes"])
            self.write(f"mirador · chain {event['chain']} · query type {event['query_type']}\n")
            for note in group_notes(event["notes"]):
                self.write(f"  backend: {note}\n")
            if event.get("warm"):
                self.write(f"  warm-up: {warm_line(event['warm'])}\n")
        elif kind == "facts":
            self.write(f"  checks: {event['count']} finding(s) before any model\n")
            for f in event["findings"]:
                self.write(f"    line {f['line']} {f['rule']}: {f['message']}\n")
        elif kind == "retrieval":
            self.write(f"  retrieval: {event['note']}\n")
            for p in event["passages"]:
                self.write(f"    [{p['n']}] {p['source']}:{p['line_start']}-{p['line_end']} "
                           f"({p['kind']}, {p['score']:.2f})\n")  # fmt: skip
        elif kind == "stage_start":
            if event["attempt"] == 1:
                self.number += 1
            self.style = STAGE_STYLES[(self.number - 1) % len(STAGE_STYLES)]
            self.stage, self.started, self.tokens, self.shown = event["stage"], time.monotonic(), 0, 0.0
            again = f" · attempt {event['attempt']}: it {event['correction']}" if event["attempt"] > 1 else ""
            header = f"── [{self.number}/{self.total}] {event['stage']} · {event['model']} ({stage_where(event)}){again} ──"  # fmt: skip
            self.write("\n")
            self.write(header, f"bold {self.style}")
            self.write("\n")
            if self.quiet and not self.plain:
                self.live = self.console.status(Text(f"{self.stage} · starting"))
                self.live.start()
        elif kind == "stage_skip":
            self.number += 1
            self.write("\n")
            self.write(
                f"── [{self.number}/{self.total}] {event['stage']} skipped: {event['reason']} ──", "dim"
            )
            self.write("\n")
        elif kind == "stage_end":
            self.clear_status()
            self.write(("" if self.quiet else "\n") + f"   [{event['status']} · {stage_timing(event)} · ")
            self.write(
                f"confidence {event['confidence']:.2f}", confidence_style(event["confidence"], event["note"])
            )
            self.write("]\n")
            if event["note"]:
                self.write(f"   {event['note']}\n")
            if event.get("context_overflow"):
                self.write(f"   context: {event['context_overflow']}", "yellow")
                self.write("\n")
            if event["error"]:
                self.write(f"   error: {event['error']}", "red")
                self.write("\n")
        elif kind == "report":
            self.write(f"\nReport: {event['path']}\n")

    def token(self, text: str) -> None:
        self.tokens += 1
        if not self.quiet:
            self.write(text, self.style)
        self.status()

    def status(self) -> None:
        """The live line (stage, elapsed, tokens/s), at most four times a second."""
        now = time.monotonic()
        if self.plain or now - self.shown < 0.25:
            return
        self.shown = now
        elapsed = now - self.started
        line = f"{self.stage} · {elapsed:.1f} s · {self.tokens} tokens · {self.tokens / max(elapsed, 1e-6):.1f} tok/s"
        if self.live is not None:
            self.live.update(Text(line))
        elif not self.quiet:
            self.console.set_window_title(f"mirador: {line}")

    def clear_status(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def write(self, text: str, style: str | None = None) -> None:
        """Text as it comes: styled on a terminal, byte for byte (and flushed) when piped."""
        if self.plain:
            self.console.file.write(text)
            self.console.file.flush()
        else:
            self.console.out(text, style=style, highlight=False, end="")
