"""A run on the terminal (graph/cli/render.py): plain text when piped, colours on a terminal
and none under NO_COLOR, the live status in quiet mode; the stage facts as the report gives them."""

from __future__ import annotations

import io
import re
from typing import Any

from rich.console import Console

from graph.cli.render import Printer, confidence_style
from graph.report import stage_timing, stage_where

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7])m")  # a foreground colour

END = {
    "event": "stage_end", "stage": "concurrency", "status": "ok", "first_token_s": 0.54, "total_s": 24.7,
    "tokens": 260, "tokens_per_s": 10.8, "confidence": 0.78, "note": "", "error": "",
    "backend": "embedded", "base_url": "",
}  # fmt: skip
EVENTS: list[str | dict[str, Any]] = [
    {"event": "plan", "chain": "code", "query_type": "code", "warm": [],
     "notes": ["concurrency: embedded (no Ollama)", "design: embedded (no Ollama)"]},
    {"event": "facts", "count": 1, "findings": [{"line": 3, "rule": "MIR001", "message": "grows"}]},
    {"event": "stage_start", "stage": "concurrency", "model": "coder", "backend": "embedded", "base_url": "",
     "attempt": 1, "correction": ""},
    "def f():\n\treturn [1]",
    END,
    {"event": "stage_skip", "stage": "design", "reason": "does not apply to general queries"},
    {"event": "report", "path": "reports/r.md", "json_path": "reports/r.json"},
]  # fmt: skip


def _play(console: Console, quiet: bool = False) -> Printer:
    printer = Printer(console, quiet=quiet)
    for event in EVENTS:
        if isinstance(event, str):
            printer.token(event)
        else:
            printer.custom(event)
    return printer


def _terminal(out: io.StringIO) -> Console:
    return Console(file=out, force_terminal=True, color_system="standard", width=100)


def test_piped_a_run_is_plain_text_and_tokens_pass_byte_for_byte():
    out = io.StringIO()
    _play(Console(file=out))
    assert out.getvalue() == (
        "mirador · chain code · query type code\n"
        "  backend: embedded (no Ollama): concurrency, design\n"
        "  checks: 1 finding(s) before any model\n"
        "    line 3 MIR001: grows\n"
        "\n── [1/2] concurrency · coder (embedded) ──\n"
        "def f():\n\treturn [1]"
        "\n   [ok · first token 0.54 s · total 24.70 s · 260 tokens · 10.8 tok/s · confidence 0.78]\n"
        "\n── [2/2] design skipped: does not apply to general queries ──\n"
        "\nReport: reports/r.md\n"
    )


def test_piped_and_quiet_a_run_shows_no_tokens():
    out = io.StringIO()
    _play(Console(file=out), quiet=True)
    assert "return" not in out.getvalue() and "\n── [1/2] concurrency" in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_on_a_terminal_stages_and_confidence_are_coloured():
    out = io.StringIO()
    _play(_terminal(out))
    text = out.getvalue()
    assert "\x1b[1;36m── [1/2] concurrency · coder (embedded) ──" in text  # the first stage in cyan
    assert "\x1b[32mconfidence 0.78" in text  # over 0.70: green
    assert "\x1b]0;mirador: concurrency · " in text  # the live status in the terminal's title


def test_NO_COLOR_on_a_terminal_removes_every_colour(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    _play(_terminal(out))
    assert not COLOUR.search(out.getvalue())
    assert "── [1/2] concurrency · coder (embedded) ──" in out.getvalue()


def test_quiet_on_a_terminal_the_live_status_line_ends_with_its_stage():
    out = io.StringIO()
    printer = Printer(_terminal(out), quiet=True)
    printer.custom(EVENTS[0])
    printer.custom(EVENTS[2])
    assert printer.live is not None
    printer.token("TOKEN")
    printer.custom(END)
    assert printer.live is None
    assert re.search(r"concurrency · [0-9.]+ s · 1 tokens", out.getvalue()) and "TOKEN" not in out.getvalue()


def test_confidence_colours():
    assert confidence_style(0.7, "") == "green"
    assert confidence_style(0.5, "") == "yellow"  # kept as it was, just not sure
    assert confidence_style(0.5, "under the threshold, repeated") == "red"


def test_the_stage_facts_are_formatted_once_for_the_terminal_and_the_report():
    r = {**END, "first_token_s": None, "usage": {"input_tokens": 90, "output_tokens": 12}}
    assert (
        stage_timing(r) == "first token — · total 24.70 s · 260 tokens (server: 90 in, 12 out) · 10.8 tok/s"
    )
    assert stage_where(r) == "embedded"
    assert stage_where({**r, "backend": "ollama", "base_url": "http://h:1"}) == "ollama at http://h:1"
    out = io.StringIO()
    Printer(Console(file=out)).custom(r)
    assert f"[ok · {stage_timing(r)} · confidence 0.78]" in out.getvalue()
