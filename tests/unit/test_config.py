from __future__ import annotations

from dataclasses import fields

import pytest

from graph.config import Context, Settings, data_dir


def test_defaults():
    ctx = Context()
    assert ctx.backend == "auto" and ctx.chain == "" and ctx.max_tokens == 0


def test_environment_fills_fields_left_at_default(monkeypatch):
    monkeypatch.setenv("MIRADOR_BACKEND", "embedded")
    monkeypatch.setenv("MIRADOR_MAX_TOKENS", "64")
    ctx = Context()
    assert ctx.backend == "embedded" and ctx.max_tokens == 64
    assert Context(backend="ollama").backend == "ollama"  # an explicit value wins
    monkeypatch.setenv("MIRADOR_MODELS", '{"code_analyst": "qwen2.5-coder:14b"}')
    monkeypatch.setenv("MIRADOR_MIN_CONFIDENCE", "0.6")
    monkeypatch.setenv("MIRADOR_RETRIEVAL", "off")
    ctx = Context()
    assert ctx.models == {"code_analyst": "qwen2.5-coder:14b"} and ctx.min_confidence == 0.6
    assert ctx.retrieval is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MIRADOR_MAX_TOKENS": "lots"}, "MIRADOR_MAX_TOKENS must be an integer"),
        ({"MIRADOR_BACKEND": "gpu"}, "unknown backend 'gpu'"),
        ({"MIRADOR_MAX_TOKENS": "-3"}, "max_tokens must be 0 or more"),
        ({"MIRADOR_MODELS": "qwen"}, "MIRADOR_MODELS must be a JSON object"),
        ({"MIRADOR_MODELS": '{"a": 3}'}, "models must map stage names to model names"),
        ({"MIRADOR_MIN_CONFIDENCE": "high"}, "MIRADOR_MIN_CONFIDENCE must be a number"),
        ({"MIRADOR_MIN_CONFIDENCE": "1.5"}, r"min_confidence must be within \[0, 1\]"),
        ({"MIRADOR_RETRIEVAL": "maybe"}, "MIRADOR_RETRIEVAL must be true or false"),
    ],
)
def test_bad_values_are_refused(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        Context()


def test_a_field_passed_at_its_default_beats_the_environment(monkeypatch):
    monkeypatch.setenv("MIRADOR_REPORTS_DIR", "elsewhere")
    monkeypatch.setenv("MIRADOR_RETRIEVAL", "off")
    monkeypatch.setenv("MIRADOR_MAX_TOKENS", "64")
    assert Context().reports_dir == "elsewhere"  # left out: the environment's
    ctx = Context(reports_dir="reports", retrieval=True, max_tokens=0)  # each one the default
    assert (ctx.reports_dir, ctx.retrieval, ctx.max_tokens) == ("reports", True, 0)
    assert Context(reports_dir="reports").max_tokens == 64  # only the fields passed are pinned


def test_settings_cover_every_context_field_and_read_the_environment_when_asked(monkeypatch, tmp_path):
    assert {f.name for f in fields(Context)} <= set(Settings.model_fields)
    monkeypatch.setenv("MIRADOR_CHAINS_FILE", str(tmp_path / "chains.toml"))
    monkeypatch.setenv("MIRADOR_N_CTX", "4096")
    monkeypatch.setenv("MIRADOR_THREADS_DB", "postgresql://mirador:hunter2@db/threads")
    settings = Settings.read()
    assert settings.chains_file == tmp_path / "chains.toml" and settings.n_ctx == 4096
    assert "hunter2" not in repr(settings)  # a thread store's URL may carry a password
    monkeypatch.setenv("MIRADOR_N_CTX", "big")
    with pytest.raises(ValueError, match="MIRADOR_N_CTX must be an integer, got 'big'"):
        Settings.read()


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("MIRADOR_MAX_TOKENS", "")
    monkeypatch.setenv("MIRADOR_DATA_DIR", "")
    assert Context().max_tokens == 0 and data_dir().name == "mirador"


def test_where_things_live_is_read_when_asked(monkeypatch, tmp_path):
    from graph.memory import threads_db
    from graph.models import cache_dir
    from retrieval.store import index_location

    monkeypatch.setenv("MIRADOR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MIRADOR_CACHE_DIR", str(tmp_path / "cache"))
    assert threads_db() == str(tmp_path / "threads.sqlite") and index_location() == str(tmp_path / "index")
    assert cache_dir() == tmp_path / "cache"
    monkeypatch.setenv("MIRADOR_INDEX_DIR", "http://chroma.internal:8000")
    monkeypatch.setenv("MIRADOR_THREADS_DB", "postgresql://db.internal/threads")
    assert index_location() == "http://chroma.internal:8000" and index_location("mine") == "mine"
    assert threads_db() == "postgresql://db.internal/threads"
