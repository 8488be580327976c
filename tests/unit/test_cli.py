"""`mirador` argument errors: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import pytest

from graph.cli import main


@pytest.fixture
def binary(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00\x01\x02" * 100)
    return path


@pytest.fixture
def latin1(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    return path


CASES = {
    "empty query": (["ask", "   "], "the query is empty"),
    "missing document": (["ask", "q", "--document", "{tmp}/nope.py"], "document not found"),
    "folder as document": (["ask", "q", "--document", "{tmp}"], "document is not a file"),
    "binary document": (["ask", "q", "--document", "{binary}"], "document looks binary"),
    "undecodable document": (["ask", "q", "--document", "{latin1}"], "not valid UTF-8"),
    "unknown chain": (["ask", "q", "--chain", "nope"], "unknown chain 'nope'"),
    "unknown backend": (["ask", "q", "--backend", "gpu"], "invalid choice: 'gpu'"),
    "zero max tokens": (["ask", "q", "--max-tokens", "0"], "must be 1 or more"),
    "word max tokens": (["ask", "q", "--max-tokens", "many"], "not a whole number"),
    "no command": ([], "required: command"),
    "thread id with a path": (["ask", "q", "--thread", "../../etc/passwd"], "bad thread id"),
    "thread id with a slash": (["ask", "q", "--thread", "a/b"], "bad thread id"),
    "index that is not one": (["ask", "q", "--index", "{tmp}"], "is not a Mirador index"),
    "index of nothing": (["index", "{tmp}/nope"], "path not found"),
    "index kind": (["index", "{tmp}", "--kind", "diary"], "invalid choice: 'diary'"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_arguments_get_one_line_and_status_2(case, tmp_path, binary, latin1, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = CASES[case]
    argv = [a.format(tmp=tmp_path, binary=binary, latin1=latin1) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("mirador")
    assert not (tmp_path / "reports").exists()


def test_help_lists_the_ask_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--document", "--chain", "--backend", "--max-tokens", "--json", "--reports-dir"):
        assert option in out


def test_chains_lists_every_chain_stage_model_and_threshold(capsys):
    from graph.chains import load_chains

    assert main(["chains"]) == 0
    out = capsys.readouterr().out
    for chain in load_chains().chains.values():
        assert f"{chain.name}: {chain.description}" in out
        for stage in chain.stages:
            assert stage.name in out and stage.model in out
    assert "min confidence 0.45" in out and "optional" in out and "persona" in out


def test_doctor_names_missing_models_with_the_command_to_fetch_them(capsys, monkeypatch, tmp_path):
    from tests.ollama_server import FakeOllama

    with FakeOllama({"llama3.2:3b": "hi", "qwen2.5-coder:7b": "hi"}) as server:
        monkeypatch.setenv("MIRADOR_OLLAMA_BASE_URL", server.url)
        code = main(["doctor"])
    out = capsys.readouterr().out
    assert f"ollama   {server.url}: answering, 2 models" in out
    assert "ok      qwen2.5-coder:7b" in out
    assert "missing qwen2.5:7b  → ollama pull qwen2.5:7b" in out
    assert "index" in out and "threads" in out
    assert code == 0  # a missing Ollama model is not a failure: the embedded model runs the stage


def test_doctor_says_plainly_when_nothing_answers_and_an_index_is_broken(capsys, monkeypatch, tmp_path):
    broken = tmp_path / "not-an-index"
    broken.mkdir()
    (broken / "x.txt").write_text("x")
    monkeypatch.setenv("MIRADOR_INDEX_DIR", str(broken))
    monkeypatch.setenv("MIRADOR_OLLAMA_BASE_URL", "http://127.0.0.1:9")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "not answering (stages fall back to the embedded model)" in out
    assert f"problem: {broken} exists but is not a Mirador index" in out


def test_an_option_given_beats_the_environment_even_at_its_default(monkeypatch, tmp_path):
    import graph.builder
    import graph.cli.run

    contexts = []

    def run(graph, inputs, thread, context, args):
        contexts.append(context)
        return 0

    monkeypatch.setattr(graph.builder, "build_graph", lambda **kwargs: None)
    monkeypatch.setattr(graph.cli.run, "stream", run)
    monkeypatch.setenv("MIRADOR_REPORTS_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("MIRADOR_BACKEND", "ollama")
    assert main(["ask", "q", "--no-retrieval", "--reports-dir", "reports", "--backend", "auto"]) == 0
    assert main(["ask", "q", "--no-retrieval"]) == 0
    given, left_out = contexts
    assert (given.reports_dir, given.backend) == ("reports", "auto")
    assert (left_out.reports_dir, left_out.backend) == (str(tmp_path / "from-env"), "ollama")
