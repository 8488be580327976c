"""The index on a real Chroma server (`chroma run`, started here on a free loopback port),
with the real MiniLM embedder: the same summaries, chunks, scores and gating as on disk,
an index built by one process and searched by another, and a server that is not there.
The chat models are the scripted ones: the index is under test, not the model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graph import Context, build_graph
from graph.runtime.compute import embed
from retrieval import KINDS
from retrieval.indexer import index_paths
from retrieval.retriever import retrieve
from retrieval.store import Index
from tests.corpus import BILLING, SEED_QUERY, make_tree
from tests.fakes import Script
from tests.servers import answers, free_port, wait_until_up

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
QUERIES = [
    "where does the orchestrator build strings quadratically while streaming",
    "how are paid invoice amounts summed",
    "how long should pancake batter rest",
    "music streaming platforms",
]


def _start_chroma(base: Path) -> tuple[str, subprocess.Popen]:
    """`chroma run` on a free loopback port, once its heartbeat answers: its URL and process."""
    port = free_port()
    log = base / "server.log"
    server = subprocess.Popen(
        [str(BIN / "chroma"), "run", "--path", str(base / "db"), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_until_up(answers(f"{url}/api/v2/heartbeat"), server, log, "chroma run", timeout=60)
    return url, server


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    """A Chroma server of its own for the module; yields its URL."""
    url, server = _start_chroma(tmp_path_factory.mktemp("chroma-server"))
    yield url
    server.kill()
    server.wait(timeout=30)


@pytest.fixture
def server(chroma):
    """The server, emptied of Mirador's collections before the test."""
    import chromadb

    port = int(chroma.rsplit(":", 1)[1])
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    for collection in client.list_collections():
        if collection.name in KINDS:
            client.delete_collection(collection.name)
    return chroma


def _index_both(tree: Path, indexes: list[Index]) -> list[list[tuple[Any, ...]]]:
    """Index the tree into each index; each one's summaries (seconds left out)."""
    out = []
    for idx in indexes:
        summaries = [index_paths([tree / "project"], kind="documents", index=idx),
                     index_paths([tree / "me"], kind="persona", index=idx)]  # fmt: skip
        out.append([(s.files, s.added, s.updated, s.unchanged, s.removed, s.skipped) for s in summaries])
    return out


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path)


def test_indexing_pruning_and_search_are_the_same_as_on_disk(tree, server):
    disk, remote = Index(tree / "index", embedder=embed), Index(server, embedder=embed)
    first = _index_both(tree, [disk, remote])
    assert first[0] == first[1] and first[0][0][1] == 3  # a chunk for each of the three files
    for kind in KINDS:
        assert remote.count(kind) == disk.count(kind) and remote.sources(kind) == disk.sources(kind)
    for query in QUERIES:
        for kinds in (["documents"], ["persona"], ["documents", "persona"]):
            assert retrieve(remote, query, kinds, floor=0.0) == retrieve(disk, query, kinds, floor=0.0)
    again = _index_both(tree, [disk, remote])  # idempotent: nothing embedded, nothing added
    assert again[0] == again[1] and again[1][0][1:3] == (0, 0)
    assert remote.count("documents") == disk.count("documents")
    # An edited file's chunks replaced, a deleted file's pruned, on both alike.
    (tree / "project" / "src" / "billing.py").write_text(BILLING.replace("paid invoices", "settled bills"))
    (tree / "project" / "docs" / "recipes.md").unlink()
    edited = _index_both(tree, [disk, remote])
    assert edited[0] == edited[1] and edited[1][0][2] == 1 and edited[1][0][4] == 1  # one chunk each
    assert remote.sources("documents") == disk.sources("documents")
    assert not any(s.endswith("recipes.md") for s in remote.sources("documents"))
    assert retrieve(remote, "sum of settled bills", ["documents"]) == retrieve(
        disk, "sum of settled bills", ["documents"]
    )


def _run(index_dir: str, query: str, tmp_path: Path):
    script = Script()
    graph = build_graph(chat_model_factory=script, embedder=embed)
    context = Context(backend="embedded", index_dir=index_dir, reports_dir=str(tmp_path / "reports"))
    return script, graph.invoke({"query": query}, context=context)


def test_gating_on_the_server_is_the_gating_on_disk(tree, server, tmp_path):
    _index_both(tree, [Index(tree / "index", embedder=embed), Index(server, embedder=embed)])
    for query in (SEED_QUERY, "What should I focus on this year with my music?"):
        (_, on_disk), (script, remote) = (_run(str(tree / "index"), query, tmp_path),
                                          _run(server, query, tmp_path))  # fmt: skip
        assert remote["query_type"] == on_disk["query_type"]
        assert remote["retrieved"] == on_disk["retrieved"] and remote["retrieved"]
        kinds = {c["kind"] for c in remote["retrieved"]}
        if query == SEED_QUERY:  # a code question: no persona text reaches any stage
            assert kinds == {"documents"}
            assert not any("Annapurna" in str(m.content) for _, messages in script.calls for m in messages)
        else:
            assert "persona" in kinds
        assert f"at {server} (floor" in Path(remote["report_path"]).read_text(encoding="utf-8")


def test_a_server_that_stops_answering_leaves_the_run_without_passages(tree, tmp_path):
    url, proc = _start_chroma(tmp_path)
    try:
        _index_both(tree, [Index(url, embedder=embed)])
        script = Script()
        graph = build_graph(chat_model_factory=script, embedder=embed)
        context = Context(backend="embedded", index_dir=url, reports_dir=str(tmp_path / "reports"))
        assert graph.invoke({"query": SEED_QUERY}, context=context)["retrieved"]
    finally:
        proc.kill()
        proc.wait(timeout=30)
    out = graph.invoke({"query": SEED_QUERY}, context=context)  # the same graph: its client is held
    assert out["retrieved"] == [] and out["report_path"]
    assert f"the index at {url} did not answer" in Path(out["report_path"]).read_text(encoding="utf-8")


def _mirador(*args: str, fake: bool = False, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.fake_cli"] if fake else [str(BIN / "mirador")]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, **env})  # fmt: skip


def test_an_index_built_by_one_process_is_searched_by_another(tree, server, tmp_path):
    built = _mirador("index", str(tree / "project"), "--index", server, "-q")
    assert built.returncode == 0, built.stderr
    assert f"documents → {server}: 3 files" in built.stdout
    persona = _mirador("index", str(tree / "me"), "--kind", "persona", "-q", MIRADOR_INDEX_DIR=server)
    assert persona.returncode == 0, persona.stderr
    count = Index(server, create=False).count("documents")
    asked = _mirador("ask", SEED_QUERY, "--index", server, "--backend", "embedded", "--json",
                     "--reports-dir", str(tmp_path / "reports"), fake=True, MIRADOR_TEST_EMBEDDER="minilm")  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    facts = json.loads(asked.stdout)
    assert facts["sources"] and {s["kind"] for s in facts["sources"]} == {"documents"}
    assert any(s["source"].endswith("orchestrator.py") for s in facts["sources"])
    again = _mirador("index", str(tree / "project"), "--index", server, "-q")  # re-indexing is idempotent
    assert again.returncode == 0 and " 0 chunks added, 0 updated" in again.stdout
    assert Index(server, create=False).count("documents") == count
    doctor = _mirador("doctor", MIRADOR_INDEX_DIR=server)
    assert f"index    {server}: {count} document chunks" in doctor.stdout


def test_a_server_with_no_index_is_named_plainly(server):
    asked = _mirador("ask", "What is in my notes?", "--index", server)
    assert asked.returncode == 2 and asked.stderr == (
        f"mirador: error: no index at {server}; build one with `mirador index PATH --index {server}`\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["index", "{tree}/project", "--index", "{url}"],
        ["ask", "What does my code do?", "--index", "{url}"],
        ["ask", "What does my code do?"],  # the server named by MIRADOR_INDEX_DIR
        ["index", "{tree}/me", "--kind", "persona"],
    ],
)
def test_a_server_that_is_down_is_one_line_and_status_2(command, tree):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    args = [a.format(tree=tree, url=url) for a in command]
    proc = _mirador(*args, MIRADOR_INDEX_DIR=url)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"mirador: error: no Chroma server answers at {url}: Could not connect")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mirador:pw-chroma-51e2@127.0.0.1:8000", "carries a user or password"),
        ("http://127.0.0.1:8000/index", "with no path"),
        ("http://127.0.0.1:notaport", "is not a URL"),
    ],
)
def test_a_bad_server_url_is_one_line_and_status_2(url, says, tree):
    proc = _mirador("index", str(tree / "me"), "--index", url)
    assert proc.returncode == 2 and says in proc.stderr and proc.stderr.count("\n") == 1
    assert "pw-chroma-51e2" not in proc.stderr
