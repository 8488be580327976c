"""Retrieval with real parts: Chroma on a temp dir and the real MiniLM embedder.
(Chunking and the index command's refusals need neither: tests/unit/test_retrieval.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from graph import Context, build_graph
from graph.cli import main
from graph.runtime.compute import embed
from retrieval.indexer import index_paths
from retrieval.retriever import retrieve
from retrieval.store import Index
from tests.corpus import BILLING, SEED_QUERY, make_tree
from tests.fakes import Script

pytestmark = pytest.mark.integration


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


@pytest.fixture
def index(tree):
    idx = Index(tree / "index", embedder=embed)
    index_paths([tree / "project"], kind="documents", index=idx)
    index_paths([tree / "me"], kind="persona", index=idx)
    return idx


# --- indexing ----------------------------------------------------------------------------


def test_indexing_twice_adds_nothing(tree, index):
    again = index_paths([tree / "project"], kind="documents", index=index)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged == index.count("documents") and again.files == 3


def test_an_edited_file_replaces_its_chunks_and_a_deleted_file_is_pruned(tree, index):
    before = index.count("documents")
    (tree / "project" / "src" / "billing.py").write_text(BILLING.replace("paid invoices", "settled bills"))
    (tree / "project" / "docs" / "recipes.md").unlink()
    summary = index_paths([tree / "project"], kind="documents", index=index)
    assert (summary.updated, summary.removed, summary.added) == (1, 1, 0)  # one chunk each
    sources = index.sources("documents")
    assert not any(s.endswith("recipes.md") for s in sources)
    assert index.count("documents") < before
    billing = [
        c for c in index.search("sum of settled bills", "documents", 3) if c.source.endswith("billing.py")
    ]
    assert billing and "settled bills" in billing[0].text


def test_unreadable_files_are_skipped_with_a_reason(tree):
    bad = tree / "bad"
    bad.mkdir()
    (bad / "blob.bin").write_bytes(b"\x00\x01" * 50)
    (bad / "image.png").write_bytes(b"\x89PNG\r\n")
    (bad / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    (bad / "huge.txt").write_text("x" * 2_000_001)
    (bad / "nul.txt").write_bytes(b"text\x00more")
    (bad / "fine.txt").write_text("A perfectly readable note about gardening.")
    summary = index_paths([bad], kind="documents", index=Index(tree / "i2", embedder=embed))
    reasons = {Path(p).name: why for p, why in summary.skipped}
    assert reasons == {
        "blob.bin": "not a text, code or PDF file (.bin)",
        "image.png": "not a text, code or PDF file (.png)",
        "latin.txt": "file is not valid UTF-8",
        "huge.txt": "file is too large: 2000001 bytes (the limit is 2000000)",
        "nul.txt": "file looks binary",
    }
    assert summary.added == 1 and summary.files == 4


def _pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (written by hand: no PDF writer needed)."""
    stream = b"BT /F1 12 Tf 20 100 Td (" + text.encode() + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


def test_pdfs_are_indexed_by_their_text_and_broken_ones_skipped(tmp_path):
    docs = tmp_path / "pdfs"
    docs.mkdir()
    (docs / "q3.pdf").write_bytes(_pdf("Quarterly revenue grew by twelve percent."))
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a PDF")
    idx = Index(tmp_path / "index", embedder=embed)
    summary = index_paths([docs], kind="documents", index=idx)
    assert summary.added == 1 and [Path(p).name for p, _ in summary.skipped] == ["broken.pdf"]
    top = retrieve(idx, "how much did revenue grow", ["documents"])
    assert top and top[0].text == "Quarterly revenue grew by twelve percent." and top[0].language == "pdf"


# --- ranking, floor and gating ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("where does the orchestrator build strings quadratically while streaming", "orchestrator.py"),
        ("how are paid invoice amounts summed", "billing.py"),
        ("which invoices are overdue", "billing.py"),
        ("how long should pancake batter rest", "recipes.md"),
        ("what goes into the tomato soup", "recipes.md"),
    ],
)
def test_the_right_chunk_ranks_in_the_top_3(index, query, expected):
    top = retrieve(index, query, ["documents"], k=3, floor=0.0)
    assert any(c.source.endswith(expected) for c in top), [(c.source, c.score) for c in top]


def test_nothing_clears_the_floor_for_an_unrelated_query(index):
    assert retrieve(index, "the orbital period of Jupiter's moons", ["documents", "persona"]) == []


def test_gating_keeps_kinds_apart(index):
    assert all(
        c.kind == "documents" for c in retrieve(index, "music streaming platforms", ["documents"], floor=0.0)
    )
    persona = retrieve(index, "music streaming platforms", ["persona"], floor=0.0)
    assert persona and all(c.kind == "persona" for c in persona)


# --- the seed's failure, through the graph ----------------------------------------------------


def _run(tree, query, tmp_path):
    script = Script()
    graph = build_graph(chat_model_factory=script, embedder=embed)
    context = Context(
        backend="embedded", index_dir=str(tree / "index"), reports_dir=str(tmp_path / "reports")
    )
    return script, graph.invoke({"query": query}, context=context)


def test_a_code_question_never_sees_persona_chunks_and_cites_code(tree, index, tmp_path):
    script, out = _run(tree, SEED_QUERY, tmp_path)
    assert out["query_type"] == "code" and out["chain"] == "code"
    assert out["retrieved"] and {c["kind"] for c in out["retrieved"]} == {"documents"}
    assert any(c["source"].endswith("orchestrator.py") for c in out["retrieved"])
    for stage, messages in script.calls:
        prompt = "\n".join(str(m.content) for m in messages)
        assert "Annapurna" not in prompt and "Spotify" not in prompt, stage
    first_prompt = str(script.messages_for("concurrency")[1].content)
    assert '<passage n="1"' in first_prompt and "quadratic string building" in first_prompt
    report = Path(out["report_path"]).read_text(encoding="utf-8")
    assert "## Sources" in report and "orchestrator.py" in report and "about.md" not in report


def test_a_personal_question_gets_the_persona_chunks(tree, index, tmp_path):
    script, out = _run(tree, "What should I focus on this year with my music?", tmp_path)
    assert out["query_type"] == "personal"  # the query says "what should I"
    assert any(c["kind"] == "persona" for c in out["retrieved"])
    assert "After Annapurna" in str(script.messages_for(script.stages_called()[0])[1].content)


def test_retrieval_off_and_missing_index_give_no_passages_and_say_why(tree, index, tmp_path):
    script = Script()
    graph = build_graph(chat_model_factory=script, embedder=embed)
    off = Context(
        backend="embedded", index_dir=str(tree / "index"), retrieval=False, reports_dir=str(tmp_path)
    )
    out = graph.invoke({"query": SEED_QUERY}, context=off)
    assert out["retrieved"] == [] and "retrieval is off" in Path(out["report_path"]).read_text()
    missing = Context(backend="embedded", index_dir=str(tmp_path / "none"), reports_dir=str(tmp_path))
    out = graph.invoke({"query": SEED_QUERY}, context=missing)
    assert out["retrieved"] == [] and "no index at" in Path(out["report_path"]).read_text()


# --- the indexing command --------------------------------------------------------------------


def test_mirador_index_reports_a_summary_and_is_idempotent(tree, capsys):
    target = tree / "cli-index"
    assert main(["index", str(tree / "project"), "--index", str(target), "--quiet"]) == 0
    first = capsys.readouterr().out
    assert "documents" in first and "3 files" in first and "chunks added" in first
    assert main(["index", str(tree / "me"), "--kind", "persona", "--index", str(target), "-q"]) == 0
    assert "persona" in capsys.readouterr().out
    assert main(["index", str(tree / "project"), "--index", str(target), "-q"]) == 0
    assert " 0 chunks added, 0 updated" in capsys.readouterr().out
