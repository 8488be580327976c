from __future__ import annotations

import pytest

from graph.config import Context


def test_defaults():
    ctx = Context()
    assert ctx.backend == "auto" and ctx.chain == "" and ctx.max_tokens == 0


def test_environment_fills_fields_left_at_default(monkeypatch):
    monkeypatch.setenv("MIRADOR_BACKEND", "embedded")
    monkeypatch.setenv("MIRADOR_MAX_TOKENS", "64")
    ctx = Context()
    assert ctx.backend == "embedded" and ctx.max_tokens == 64
    assert Context(backend="ollama").backend == "ollama"  # an explicit value wins


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MIRADOR_MAX_TOKENS": "lots"}, "MIRADOR_MAX_TOKENS must be an integer"),
        ({"MIRADOR_BACKEND": "gpu"}, "unknown backend 'gpu'"),
        ({"MIRADOR_MAX_TOKENS": "-3"}, "max_tokens must be 0 or more"),
    ],
)
def test_bad_values_are_refused(monkeypatch, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message):
        Context()
