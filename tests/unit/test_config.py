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
