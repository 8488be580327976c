"""The real `langgraph dev` server (what Studio talks to), driven through langgraph-sdk,
running a chain on the embedded model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph_sdk import get_sync_client

from tests.servers import answers, free_port, wait_until_up

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    langgraph = Path(sys.executable).parent / "langgraph"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LANGSMITH_TRACING": "false"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(
            answers(f"{url}/ok"), proc, tmp_path / "server.log", "langgraph dev", timeout=180, every=0.5
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_run_through_the_langgraph_dev_api_streams_every_stage(server, sample_doc, tmp_path):
    client = get_sync_client(url=server)
    assistants = client.assistants.search(graph_id="mirador")
    assert assistants, "the mirador graph is not served"
    thread = client.threads.create()
    nodes, events, final = [], [], None
    for part in client.runs.stream(
        thread["thread_id"],
        "mirador",
        input={"query": "What does this code do?", "document_path": str(sample_doc)},
        context={
            "backend": "embedded",
            "chain": "streaming",
            "max_tokens": 12,
            "embedded_model": "coder-0.5b",
            "reports_dir": str(tmp_path),
        },
        stream_mode=["messages-tuple", "custom", "values"],
    ):
        if part.event == "messages":
            chunk, meta = part.data
            if chunk.get("content"):
                nodes.append(meta["langgraph_node"])
                assert meta["mirador_model"] == "qwen2.5-coder-0.5b-instruct-q4"
        elif part.event == "custom":
            events.append(part.data)
        elif part.event == "values":
            final = part.data
        assert part.event != "error", part.data
    ran = [e["stage"] for e in events if e["event"] == "stage_end"]
    assert set(ran) <= {"quick", "deep_analysis", "synthesis"} and "quick" in ran and "synthesis" in ran
    assert [n for i, n in enumerate(nodes) if i == 0 or nodes[i - 1] != n] == list(dict.fromkeys(ran))
    assert final is not None and final["chain"] == "streaming"
    assert Path(final["report_path"]).is_file() and Path(final["report_path"]).parent == tmp_path
    synthesis = final["results"][-1]
    assert synthesis["stage"] == "synthesis" and synthesis["verdict"] in ("pass", "kept", "dropped")
    # At 12 tokens the 0.5B often copies the quick stage: a copy is dropped, never a summary.
    assert bool(final["summary"]) == (synthesis["verdict"] != "dropped")
    # The server keeps the thread: its state holds the finished turn.
    state = client.threads.get_state(thread["thread_id"])
    assert state["values"]["history"][-1]["query"] == "What does this code do?"


def test_two_concurrent_runs_on_the_server_share_the_model_and_both_finish(server, sample_doc, tmp_path):
    client = get_sync_client(url=server)
    runs = []
    for n in range(2):
        thread = client.threads.create()
        run = client.runs.create(
            thread["thread_id"],
            "mirador",
            input={"query": f"Question {n}: what does this code do?", "document_path": str(sample_doc)},
            context={
                "backend": "embedded",
                "chain": "streaming",
                "max_tokens": 8,
                "embedded_model": "coder-0.5b",
                "reports_dir": str(tmp_path / str(n)),
            },
        )
        runs.append((thread["thread_id"], run["run_id"]))
    for n, (thread_id, run_id) in enumerate(runs):
        final = client.runs.join(thread_id, run_id)
        assert final["query"] == f"Question {n}: what does this code do?"
        report = Path(final["report_path"])
        assert report.parent == tmp_path / str(n) and f"Question {n}:" in report.read_text(encoding="utf-8")
        assert final["results"][-1]["stage"] == "synthesis"
        assert all(r["status"] in ("ok", "truncated", "skipped") for r in final["results"])
