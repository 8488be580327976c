"""Faults injected for real: signals to a running `mirador`, a killed indexer."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def _start_and_stop_at_stage_two(args, sig, tmp_path):
    out = (tmp_path / "run.out").open("w+")
    proc = subprocess.Popen([str(BIN / "mirador"), *args], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while "[2/" not in (tmp_path / "run.out").read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "run.out").read_text()
        time.sleep(0.2)
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    return code, (tmp_path / "run.out").read_text()


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_leaves_no_report_and_the_thread_resumes_from_its_last_finished_stage(
    sig, status, sample_doc, tmp_path
):
    reports = tmp_path / "reports"
    args = ["ask", "What does this code do?", "-d", str(sample_doc), "--chain", "code", "--backend", "embedded",
            "--max-tokens", "16", "--embedded-model", "coder-0.5b", "--thread", f"sig{status}",
            "--reports-dir", str(reports)]  # fmt: skip
    code, output = _start_and_stop_at_stage_two(args, sig, tmp_path)
    assert code == status, output
    assert f"Resume with: mirador resume --thread sig{status}" in output
    assert not reports.exists() or list(reports.iterdir()) == []  # nothing half-written
    resumed = subprocess.run(
        [str(BIN / "mirador"), "resume", "--thread", f"sig{status}", "--reports-dir", str(reports), "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming thread" in resumed.stderr and "[1/6] concurrency" not in resumed.stderr  # not re-run
    facts = json.loads(resumed.stdout)
    assert list(dict.fromkeys(s["stage"] for s in facts["stages"]))[0] == "concurrency"
    assert {s["model"] for s in facts["stages"]} == {"qwen2.5-coder-0.5b-instruct-q4"}  # the plan persists
    assert Path(facts["report_path"]).is_file()
    assert sorted(p.suffix for p in reports.iterdir()) == [".json", ".md"]
    again = subprocess.run([str(BIN / "mirador"), "resume", "--thread", f"sig{status}"],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert again.returncode == 2 and "no interrupted run" in again.stderr


def test_an_indexer_killed_half_way_is_completed_by_the_next_run(tmp_path):
    from retrieval.indexer import index_paths
    from retrieval.store import Index

    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(150):
        (docs / f"note{n:03}.md").write_text(
            f"# Note {n}\n\n" + f"Fact number {n} about topic {n % 7}. " * 40
        )
    index_dir = tmp_path / "index"
    proc = subprocess.Popen([str(BIN / "mirador"), "index", str(docs), "--index", str(index_dir), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until some, not all, chunks are in
        if (index_dir / "chroma.sqlite3").exists():
            count = Index(index_dir).count("documents")
            if count > 20:
                break
        time.sleep(0.3)
    proc.kill()
    proc.wait(timeout=30)
    partial = Index(index_dir).count("documents")
    finished = subprocess.run([str(BIN / "mirador"), "index", str(docs), "--index", str(index_dir), "-q"],
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    reference = Index(tmp_path / "clean")
    index_paths([docs], kind="documents", index=reference)
    completed = Index(index_dir)
    ids = set(completed.collections["documents"].get(include=[])["ids"])
    assert 0 < partial < len(ids)
    assert ids == set(reference.collections["documents"].get(include=[])["ids"])  # none lost, none doubled
    assert completed.count("documents") == len(ids)
