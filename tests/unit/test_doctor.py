"""`mirador doctor`'s checks as data, and how they are shown: a table on a terminal, lines when piped."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from graph.cli.doctor import Check, checks, doctor, plain, show

URL = "http://ollama.test:11434"


@pytest.fixture(autouse=True)
def _no_servers(monkeypatch):
    monkeypatch.setenv("MIRADOR_OLLAMA_BASE_URL", URL)
    monkeypatch.delenv("MIRADOR_BACKEND", raising=False)
    monkeypatch.delenv("MIRADOR_OPENAI_BASE_URL", raising=False)


def test_each_model_is_checked_on_its_server_with_the_same_rule_as_backend_resolution():
    found = checks(ollama=lambda url: {"llama3.2:3b", "qwen2.5-coder:7b", "qwen2.5:7b:latest"})
    assert found[0] == Check("ollama", True, f"{URL}: answering, 3 models", required=False)
    models = {c.detail: c for c in found if c.name == "model"}
    assert models == {
        "llama3.2:1b": Check("model", False, "llama3.2:1b", "ollama pull llama3.2:1b", required=False),
        "llama3.2:3b": Check("model", True, "llama3.2:3b", required=False),
        "qwen2.5-coder:7b": Check("model", True, "qwen2.5-coder:7b", required=False),
        # A model named with its tag is that tag only: `qwen2.5:7b:latest` is not it.
        "qwen2.5:7b": Check("model", False, "qwen2.5:7b", "ollama pull qwen2.5:7b", required=False),
    }
    rest = [c for c in found if c.name not in ("ollama", "model")]
    assert [c.name for c in rest] == ["embedded", "embedded", "runtime", "embedder", "index", "threads"]
    assert not any(c.problem for c in found)  # a missing Ollama model only means the stage falls back


def test_a_silent_server_is_not_a_problem_and_lists_no_models():
    found = checks(ollama=lambda url: None)
    assert found[0] == Check(
        "ollama", False, f"{URL}: not answering (stages fall back to the embedded model)", required=False
    )
    assert not any(c.name == "model" for c in found) and not any(c.problem for c in found)


def test_openai_servers_are_checked_when_the_openai_backend_is_chosen(monkeypatch):
    monkeypatch.setenv("MIRADOR_BACKEND", "openai")
    monkeypatch.setenv("MIRADOR_OPENAI_BASE_URL", "http://gpu.test:8000/v1")
    found = checks(ollama=lambda url: None, openai=lambda url: None)
    assert Check("openai", False, "http://gpu.test:8000/v1: not answering", required=False) in found
    served = checks(ollama=lambda url: None, openai=lambda url: {"b", "a"})
    assert Check("openai", True, "http://gpu.test:8000/v1: serves a, b", required=False) in served


def test_a_folder_that_is_not_an_index_is_a_problem_and_doctor_exits_1(monkeypatch, tmp_path, capsys):
    broken = tmp_path / "not-an-index"
    broken.mkdir()
    (broken / "x.txt").write_text("x")
    monkeypatch.setenv("MIRADOR_INDEX_DIR", str(broken))
    found = checks(ollama=lambda url: None)
    assert Check("index", False, f"{broken} exists but is not a Mirador index (no chroma.sqlite3)") in found
    assert [c.name for c in found if c.problem] == ["index"]
    assert doctor(Console(file=io.StringIO())) == 1


SAMPLE = [
    Check("ollama", True, f"{URL}: answering, 2 models", required=False),
    Check("model", True, "qwen2.5-coder:7b", required=False),
    Check("model", False, "qwen2.5:7b", "ollama pull qwen2.5:7b", required=False),
    Check("runtime", False, "llama-cpp-python is not installed", "make setup"),
    Check("threads", True, "/tmp/threads.sqlite: none yet"),
]


def test_piped_the_checks_are_one_line_each_with_the_problems_last():
    assert plain(SAMPLE) == [
        f"ollama   {URL}: answering, 2 models",
        "         ok      qwen2.5-coder:7b",
        "         missing qwen2.5:7b  → ollama pull qwen2.5:7b",
        "threads  /tmp/threads.sqlite: none yet",
        "problem: llama-cpp-python is not installed: run `make setup`",
    ]
    out = io.StringIO()
    show(SAMPLE, Console(file=out))
    assert out.getvalue() == "".join(line + "\n" for line in plain(SAMPLE))


def test_on_a_terminal_the_checks_are_a_table_coloured_unless_NO_COLOR(monkeypatch):
    out = io.StringIO()
    show(SAMPLE, Console(file=out, force_terminal=True, color_system="standard", width=160))
    text = out.getvalue()
    assert "\x1b[31m" in text or "\x1b[1;31m" in text  # the problem in red
    bare = re.sub(r"\x1b\[[0-9;]*m", "", text)
    row = next(line for line in bare.splitlines() if "qwen2.5:7b " in line)
    assert row.split() == ["model", "missing", "qwen2.5:7b", "ollama", "pull", "qwen2.5:7b"]
    assert re.search(r"runtime +problem +llama-cpp-python is not installed +make setup", bare)
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    show(SAMPLE, Console(file=out, force_terminal=True, color_system="standard", width=160))
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", out.getvalue()) and "problem" in out.getvalue()
