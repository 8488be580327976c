"""Retrieval's parts that need no embedder and no Chroma: chunking, and the index command
refusing a folder that is not an index. The rest is in tests/integration/test_retrieval.py."""

from __future__ import annotations

import pytest

from graph.cli import main
from retrieval.chunking import chunk_text
from tests.corpus import STREAMER, make_tree


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


# --- chunking ----------------------------------------------------------------------------


def test_code_chunks_follow_the_code_and_keep_line_ranges(tmp_path):
    source = "\n\n".join(f"def f{i}(x):\n    return x * {i}\n" + "    # pad\n" * 30 for i in range(6))
    chunks = chunk_text(source, "/p/m.py", "documents")
    assert len(chunks) > 1 and all(c.language == "python" for c in chunks)
    lines = source.splitlines()
    for c in chunks:
        assert c.text.splitlines()[0] == lines[c.line_start - 1]
        assert c.text.splitlines()[-1] == lines[c.line_end - 1]
        assert c.text.lstrip().startswith("def ")  # split at function boundaries
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_markdown_splits_at_headings_and_text_at_paragraphs():
    md = "\n\n".join(f"# Part {i}\n\n" + ("Some words here. " * 30) for i in range(4))
    assert all(c.text.startswith("# Part") for c in chunk_text(md, "/p/a.md", "documents"))
    txt = "\n\n".join(f"Paragraph {i}. " * 40 for i in range(4))
    chunks = chunk_text(txt, "/p/a.txt", "persona")
    assert all(c.text.startswith("Paragraph") and c.kind == "persona" for c in chunks)


def test_chunk_ids_are_stable_and_change_with_content():
    a = chunk_text(STREAMER, "/p/o.py", "documents")
    assert [c.id for c in a] == [c.id for c in chunk_text(STREAMER, "/p/o.py", "documents")]
    edited = chunk_text(STREAMER.replace("quadratic", "slow"), "/p/o.py", "documents")
    assert {c.id for c in a} != {c.id for c in edited}
    assert {c.id for c in a}.isdisjoint(c.id for c in chunk_text(STREAMER, "/p/x.py", "documents"))


def test_mirador_index_refuses_a_folder_that_is_not_an_index(tree, capsys):
    not_index = tree / "project"  # has files, no chroma.sqlite3
    with pytest.raises(SystemExit) as exit_info:
        main(["index", str(tree / "me"), "--index", str(not_index)])
    assert exit_info.value.code == 2 and "is not a Mirador index" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["index", str(tree / "nope")])
    assert exit_info.value.code == 2 and "path not found" in capsys.readouterr().err
