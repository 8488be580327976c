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
