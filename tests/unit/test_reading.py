"""One home for each rule: reading a file, code extensions, where the index is and whether it is one."""

from __future__ import annotations

import pytest

from graph.nodes import read_document
from graph.routing import classify_query
from retrieval.chunking import CODE_EXTENSIONS, INDEXABLE, Unreadable, read_text
from retrieval.locations import INDEX_FILE, index_location, is_index, is_server


@pytest.fixture
def files(tmp_path):
    (tmp_path / "big.txt").write_text("x" * 101)
    (tmp_path / "nul.txt").write_bytes(b"text\x00more")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "fine.txt").write_text("café", encoding="utf-8")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4\x00 not text")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("big.txt", "is too large: 101 bytes (the limit is 100)"),
        ("nul.txt", "looks binary"),
        ("latin.txt", "is not valid UTF-8"),
    ],
)
def test_the_index_and_a_run_refuse_a_file_in_the_same_words(files, name, reason):
    with pytest.raises(Unreadable) as skipped:
        read_text(files / name, 100)
    assert str(skipped.value) == f"file {reason}"
    with pytest.raises(ValueError) as refused:
        read_document(str(files / name), 100)
    assert str(refused.value) == f"document {reason}: {files / name}"


def test_a_readable_file_reads_the_same_both_ways(files):
    assert read_text(files / "fine.txt") == read_document(str(files / "fine.txt")) == "café"


def test_a_pdf_document_is_read_as_it_is_not_extracted(files):
    with pytest.raises(ValueError, match="document looks binary"):
        read_document(str(files / "scan.pdf"))


def test_document_that_is_missing_or_a_folder(tmp_path):
    with pytest.raises(ValueError, match="document not found"):
        read_document(str(tmp_path / "none.py"))
    with pytest.raises(ValueError, match="document is not a file"):
        read_document(str(tmp_path))


@pytest.mark.parametrize("suffix", [".sh", ".sql", ".zig", ".hs", ".bash", ".m", ".ex", ".pl", ".py", ".rs"])
def test_one_list_of_code_extensions_types_the_query_and_feeds_the_index(suffix):
    assert suffix in CODE_EXTENSIONS and suffix in INDEXABLE
    assert classify_query("Summarise it", f"src/tool{suffix}")[0] == "code"


def test_prose_is_not_code():
    assert not {".md", ".txt", ".pdf", ".html", ".rst"} & CODE_EXTENSIONS
    assert classify_query("Summarise it", "notes.md")[0] == "document"


def test_which_index_and_whether_it_is_one(monkeypatch, tmp_path):
    monkeypatch.setenv("MIRADOR_DATA_DIR", str(tmp_path))
    assert index_location() == str(tmp_path / "index") and index_location("mine") == "mine"
    folder = tmp_path / "index"
    assert not is_index(folder)  # missing
    folder.mkdir()
    assert not is_index(folder)  # a folder, but no database in it
    (folder / INDEX_FILE).write_bytes(b"")
    assert is_index(folder) and is_index(str(folder))
    assert is_server("http://chroma:8000") and is_index("https://chroma:8000")  # asked when opened
    assert not is_server(folder)
