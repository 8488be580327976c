"""Progress while indexing: the indexer's hook walks each file once, the CLI draws a rich bar on
a terminal (uncoloured under NO_COLOR) and nothing when piped. No embedder, no Chroma: the index
here is a fake that counts chunks."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from graph.cli import main
from graph.cli.index import file_bar
from retrieval.indexer import index_paths

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")  # a foreground colour


class FakeIndex:
    """What index_paths uses of an Index: every chunk is new, nothing was indexed before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.written: list[str] = []

    def replace_source(self, source: str, kind: str, chunks: list[Any]) -> dict[str, int]:
        self.written.append(source)
        return {"added": len(chunks), "updated": 0, "unchanged": 0, "removed": 0}

    def sources(self, kind: str) -> set[str]:
        return set()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nThe first note.\n", encoding="utf-8")
    (folder / "b.md").write_text("# B\n\nThe second note.\n", encoding="utf-8")
    (folder / "skip.bin").write_bytes(b"\x00")  # not a text type: never given to the hook
    return folder


def test_the_indexer_walks_every_file_through_the_hook_once_in_order(docs):
    given = []
    walked = []

    def fake(files: Sequence[Path]) -> Iterator[Path]:
        given.append(list(files))
        for path in files:
            walked.append(path)
            yield path

    index = FakeIndex()
    summary = index_paths([docs], kind="documents", index=index, progress=fake)
    assert given == [[docs / "a.md", docs / "b.md"]]  # called once, with every file up front
    assert walked == given[0] and index.written == [str(p) for p in walked]  # each file once
    assert summary.files == 2 and summary.added == 2 and len(summary.skipped) == 1


@pytest.mark.parametrize("progress", [None, False])
def test_without_a_hook_the_indexer_reads_the_same_files(docs, progress):
    index = FakeIndex()
    summary = index_paths([docs], kind="documents", index=index, progress=progress)
    assert index.written == [str(docs / "a.md"), str(docs / "b.md")] and summary.files == 2


def test_piped_there_is_no_bar():
    out = io.StringIO()
    with file_bar(Console(file=out), "documents") as progress:
        assert progress is None
    assert out.getvalue() == ""


def _terminal(out: io.StringIO) -> Console:
    return Console(file=out, force_terminal=True, color_system="standard", width=100)


def test_on_a_terminal_the_bar_counts_the_files_as_the_indexer_reads_them(docs):
    out = io.StringIO()
    with file_bar(_terminal(out), "documents") as progress:
        assert progress is not None
        summary = index_paths([docs], kind="documents", index=FakeIndex(), progress=progress)
    text = out.getvalue()
    assert summary.files == 2
    assert "indexing documents" in text and "2/2" in text
    assert COLOUR.search(text)  # the bar in colour


def test_NO_COLOR_draws_the_bar_without_colour(docs, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    with file_bar(_terminal(out), "persona") as progress:
        assert progress is not None
        list(progress([docs / "a.md"]))
    text = out.getvalue()
    assert "indexing persona" in text and "1/1" in text
    assert not COLOUR.search(text)


@pytest.fixture
def fake_indexing(monkeypatch):
    """`mirador index` with the fake index; what the CLI handed the indexer as its progress."""
    handed = []

    def fake_index_paths(paths, *, kind, index, progress=None):
        handed.append(progress)
        return index_paths(paths, kind=kind, index=FakeIndex(), progress=progress)

    monkeypatch.setattr("retrieval.store.Index", FakeIndex)
    monkeypatch.setattr("retrieval.indexer.index_paths", fake_index_paths)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return handed


def test_the_index_command_piped_prints_only_the_summary(docs, tmp_path, capsys, fake_indexing):
    assert main(["index", str(docs), "--index", str(tmp_path / "idx")]) == 0
    out, err = capsys.readouterr()
    assert fake_indexing == [None]  # stderr is not a terminal: no bar
    assert err == f"skipped {docs / 'skip.bin'}: not a text, code or PDF file (.bin)\n"
    assert out.startswith("documents → ") and "2 files: 2 chunks added" in out


def test_the_index_command_on_a_terminal_draws_the_bar_on_stderr(docs, tmp_path, capsys, monkeypatch,
                                                                 fake_indexing):  # fmt: skip
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich takes stderr for a terminal
    assert main(["index", str(docs), "--index", str(tmp_path / "idx")]) == 0
    out, err = capsys.readouterr()
    assert callable(fake_indexing[0])
    assert "indexing documents" in err and "2/2" in err
    assert "indexing" not in out and "2 files: 2 chunks added" in out
    assert main(["index", str(docs), "--index", str(tmp_path / "idx2"), "--quiet"]) == 0
    assert fake_indexing[1] is None  # --quiet: no bar, even on a terminal
    assert "indexing documents" not in capsys.readouterr().err
