"""Backend resolution and model assembly (the real model runs in the integration tests)."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import pytest

from graph.chains import load_chains
from graph.runtime.backends import resolve_backend
from graph.runtime.embedded import EMBEDDED_MODEL, assemble, terminal_bar

SPEC = load_chains().get("code").stages[1]  # cost, model qwen2.5-coder:7b
URL = "http://127.0.0.1:9"


def test_auto_uses_ollama_when_it_has_the_model():
    spec, note = resolve_backend(SPEC, "auto", URL, probe=lambda url: {"qwen2.5-coder:7b"})
    assert (spec.backend, spec.model, spec.base_url) == ("ollama", "qwen2.5-coder:7b", URL)
    assert note == f"cost: ollama at {URL}"


def test_auto_falls_back_to_embedded_and_says_why():
    spec, note = resolve_backend(SPEC, "auto", URL, probe=lambda url: None)
    assert (spec.backend, spec.model) == ("embedded", EMBEDDED_MODEL)
    assert "no Ollama server answered" in note
    spec, note = resolve_backend(SPEC, "auto", URL, probe=lambda url: {"llama3.2:1b"})
    assert spec.backend == "embedded" and "has no model qwen2.5-coder:7b" in note


def test_untagged_model_names_match_latest():
    bare = SPEC.__class__(**{**SPEC.to_dict(), "model": "mistral"})
    spec, _ = resolve_backend(bare, "auto", URL, probe=lambda url: {"mistral:latest"})
    assert spec.backend == "ollama"


def test_explicit_backends_do_not_probe_and_stage_base_url_wins():
    def never(url):
        raise AssertionError("probed")

    own = SPEC.__class__(**{**SPEC.to_dict(), "base_url": "http://gpu-box:11434"})
    spec, _ = resolve_backend(own, "ollama", URL, probe=never)
    assert spec.base_url == "http://gpu-box:11434"
    spec, note = resolve_backend(SPEC, "embedded", URL, probe=never)
    assert spec.backend == "embedded" and note == "cost: embedded (requested)"


def test_assemble_concatenates_verifies_and_caches(tmp_path):
    parts = []
    for i, data in enumerate([b"alpha-", b"beta-", b"gamma"]):
        parts.append(tmp_path / f"part{i}.bin")
        parts[-1].write_bytes(data)
    target = tmp_path / "cache" / "model.gguf"
    sha = hashlib.sha256(b"alpha-beta-gamma").hexdigest()
    assert assemble(parts, target, sha).read_bytes() == b"alpha-beta-gamma"
    parts[0].unlink()  # a verified file is reused without reading the parts again
    assert assemble(parts, target, sha) == target


def test_assembling_tells_its_progress_and_a_verified_file_tells_nothing(tmp_path):
    told = []
    written = []

    @contextmanager
    def fake(name, total):
        told.append((name, total))
        yield written.append

    parts = [tmp_path / "a.bin", tmp_path / "b.bin"]
    parts[0].write_bytes(b"x" * (5 << 20))  # more than one 4 MiB read
    parts[1].write_bytes(b"tail")
    target = tmp_path / "cache" / "model.gguf"
    sha = hashlib.sha256(b"x" * (5 << 20) + b"tail").hexdigest()
    assemble(parts, target, sha, progress=fake)
    assert told == [("model.gguf", (5 << 20) + 4)]
    assert written == [4 << 20, 1 << 20, 4]  # every piece as it is written
    assemble(parts, target, sha, progress=fake)
    assert len(told) == 1  # already assembled: no bar


def test_the_assembly_bar_draws_nothing_when_stderr_is_piped(capsys, monkeypatch):
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    with terminal_bar("model.gguf", 10) as advance:
        advance(10)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    with terminal_bar("model.gguf", 10) as advance:
        advance(10)
    assert "assembling model.gguf" in capsys.readouterr().err


def test_assemble_refuses_parts_that_do_not_hash(tmp_path):
    part = tmp_path / "p.bin"
    part.write_bytes(b"corrupt")
    target = tmp_path / "model.gguf"
    with pytest.raises(RuntimeError, match="do not hash"):
        assemble([part], target, "0" * 64)
    assert not target.exists() and list(tmp_path.iterdir()) == [part]


def test_each_stage_runs_on_its_own_embedded_model():
    from graph.runtime.backends import embedded_spec
    from graph.runtime.embedded import CODER, SMALL, embedded_model

    quick = load_chains().get("streaming").stages[0]
    assert embedded_spec(quick).model == SMALL.name  # embedded = "coder-0.5b"
    assert embedded_spec(SPEC).model == CODER.name == EMBEDDED_MODEL  # the default
    assert embedded_model("coder-1.5b") is embedded_model(CODER.name) is CODER
    with pytest.raises(ValueError, match="unknown embedded model 'gpt'"):
        embedded_model("gpt")
