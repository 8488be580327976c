"""Threads in a real PostgreSQL server, started here on a free loopback port.

A thread written by one process and continued by another, `mirador resume` after SIGTERM
(on the real embedded model, as the SQLite test does), two runs at once on a fresh
database, and bad URLs. The other processes run the real CLI on the scripted models
(tests/fake_cli.py): the thread store is under test, not the model.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers import free_port, wait_until_up

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PASSWORD = "pw-mirador-3c9e71d5"  # distinctive, so a leak anywhere is found by grep; trust auth ignores it
QUERY = "Where are the performance bottlenecks in the streaming code?"
PG_USER = "mirador-pg"  # postgres refuses to run as root


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


def _as_server_user(args: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server of its own; yields a URL without a database name (add one)."""
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin/postgres); .ci/run installs it")
    import psycopg

    base = Path(tempfile.mkdtemp(prefix="mirador-pg-"))  # under /tmp: the server user can reach it
    data, log = base / "data", base / "server.log"
    if os.geteuid() == 0:
        if subprocess.run(["id", "-u", PG_USER], capture_output=True, check=False).returncode != 0:
            subprocess.run(["useradd", "-r", PG_USER], check=True)
        shutil.chown(base, PG_USER)
    subprocess.run(_as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "mirador",
                                    "--no-sync", "-E", "UTF8", "--no-locale"]),
                   check=True, capture_output=True)  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        _as_server_user([str(bin_dir / "postgres"), "-D", str(data), "-k", str(base), "-p", str(port),
                         "-h", "127.0.0.1"]),
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"postgresql://mirador:{PASSWORD}@127.0.0.1:{port}"

    def created() -> bool:
        try:
            with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE mirador_threads")
            return True
        except psycopg.OperationalError:
            return False

    wait_until_up(created, server, log, "postgres", timeout=60)
    yield url
    subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "stop", "-m", "fast"]),
                   capture_output=True, check=False)  # fmt: skip
    server.wait(timeout=60)
    shutil.rmtree(base, ignore_errors=True)


def _database(url: str, name: str) -> str:
    """A fresh database on the server, its URL."""
    import psycopg

    with psycopg.connect(f"{url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{url}/{name}"


def _fake_cli(args: list[str], db: str, **env: str) -> subprocess.Popen:
    """The real command line on the scripted models, in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fake_cli", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "MIRADOR_THREADS_DB": db, **env},
    )  # fmt: skip


def _ask(query: str, thread: str, db: str, tmp_path: Path, *more: str) -> dict:
    proc = _fake_cli(["ask", query, "--backend", "embedded", "--no-retrieval", "--json",
                      "--thread", thread, "--reports-dir", str(tmp_path / "reports"), *more], db)  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert PASSWORD not in out + err
    return json.loads(out)


def test_a_thread_written_by_one_process_is_continued_by_another(postgres, sample_doc, tmp_path):
    from graph.memory import open_checkpointer

    db = f"{postgres}/mirador_threads"
    first = _ask(QUERY, "pg-follow", db, tmp_path, "--chain", "code", "-d", str(sample_doc))
    second = _ask("And how would you fix the worst one?", "pg-follow", db, tmp_path, "--chain", "code")
    assert first["turn"] == 1 and not first["follow_up"]
    assert second["turn"] == 2 and second["follow_up"] and second["thread"] == "pg-follow"
    assert second["document"] == str(sample_doc)  # the thread keeps its document
    report = Path(second["report_path"]).read_text(encoding="utf-8")
    assert f"**Follow-up**: turn 2 of thread `pg-follow`, after “{QUERY}”" in report
    # This process sees both turns, through a connection of its own.
    saver = open_checkpointer(db)
    checkpoint = saver.get_tuple({"configurable": {"thread_id": "pg-follow"}})
    assert checkpoint is not None and checkpoint.checkpoint["channel_values"]["turn"] == 2
    assert [t["query"] for t in checkpoint.checkpoint["channel_values"]["history"]][0] == QUERY
    for path in (second["report_path"], second["json_path"]):
        assert PASSWORD not in Path(path).read_text(encoding="utf-8")


def test_a_thread_the_real_cli_and_model_wrote_is_continued_by_another_process(
    postgres, sample_doc, tmp_path
):
    """The one real-model path here (test_embedded.py's follow-up, against Postgres): the real
    CLI on the 0.5B model writes the first turn; a second process continues the thread."""
    db = f"{postgres}/mirador_threads"
    first = subprocess.run(
        [str(BIN / "mirador"), "ask", "What does this code do?", "-d", str(sample_doc), "--chain", "streaming",
         "--backend", "embedded", "--max-tokens", "10", "--embedded-model", "coder-0.5b", "--json",
         "--thread", "pg-real", "--reports-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "MIRADOR_THREADS_DB": db},
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert PASSWORD not in first.stdout + first.stderr
    second = _ask("How would you fix it?", "pg-real", db, tmp_path, "--chain", "streaming")
    assert second["follow_up"] is True and second["turn"] == 2 and second["thread"] == "pg-real"
    assert second["document"] == str(sample_doc)
    assert all(PASSWORD not in p.read_text() for p in (tmp_path / "reports").iterdir())


def test_two_runs_at_once_on_different_threads_of_a_fresh_database(postgres, tmp_path):
    db = _database(postgres, "mirador_concurrent")  # both processes create the tables at once
    procs = {
        thread: _fake_cli(["ask", f"{QUERY} ({thread})", "--chain", "code", "--backend", "embedded",
                           "--no-retrieval", "--json", "--thread", thread, "--reports-dir",
                           str(tmp_path / thread)], db, MIRADOR_TEST_DELAY="0.01")
        for thread in ("pg-left", "pg-right")
    }  # fmt: skip
    outputs = {thread: proc.communicate(timeout=120) for thread, proc in procs.items()}
    assert [p.returncode for p in procs.values()] == [0, 0], [err for _, err in outputs.values()]
    from graph.memory import open_checkpointer

    saver = open_checkpointer(db)
    for thread, (out, _) in outputs.items():
        facts = json.loads(out)
        assert facts["thread"] == thread and facts["turn"] == 1
        state = saver.get_tuple({"configurable": {"thread_id": thread}})
        assert state is not None and state.checkpoint["channel_values"]["query"] == f"{QUERY} ({thread})"


def test_resume_after_sigterm_finishes_the_run_from_postgres(postgres, sample_doc, tmp_path):
    """The SQLite test in test_faults.py, against Postgres, on the scripted models."""
    db = f"{postgres}/mirador_threads"
    reports = tmp_path / "reports"
    log = tmp_path / "run.out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_cli", "ask", "What does this code do?", "-d", str(sample_doc),
         "--chain", "code", "--backend", "embedded", "--embedded-model", "coder-0.5b", "--no-retrieval",
         "--thread", "pg-sig", "--reports-dir", str(reports)],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
        env={**os.environ, "MIRADOR_THREADS_DB": db, "MIRADOR_TEST_DELAY": "0.1"},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "[2/" not in log.read_text() and time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143, log.read_text()
    assert "Resume with: mirador resume --thread pg-sig" in log.read_text()
    assert not reports.exists() or list(reports.iterdir()) == []  # nothing half-written
    resumed = _fake_cli(["resume", "--thread", "pg-sig", "--reports-dir", str(reports), "--json"], db)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert "resuming thread pg-sig after 1 finished stages" in err and "[1/6] concurrency" not in err
    facts = json.loads(out)
    assert list(dict.fromkeys(s["stage"] for s in facts["stages"]))[0] == "concurrency"
    assert {s["model"] for s in facts["stages"]} == {"qwen2.5-coder-0.5b-instruct-q4"}  # the plan persists
    assert sorted(p.suffix for p in reports.iterdir()) == [".json", ".md"]
    for text in (log.read_text(), out, err, *(p.read_text() for p in reports.iterdir())):
        assert PASSWORD not in text
    again = _fake_cli(["resume", "--thread", "pg-sig"], db)
    _, err = again.communicate(timeout=60)
    assert again.returncode == 2 and "no interrupted run" in err


def test_doctor_names_the_server_without_its_password(postgres):
    proc = subprocess.run([str(BIN / "mirador"), "doctor"], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "MIRADOR_THREADS_DB": f"{postgres}/mirador_threads"})  # fmt: skip
    assert "threads  postgresql://mirador:***@127.0.0.1:" in proc.stdout
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://mirador:{PASSWORD}@nohost:1/x",  # no such host
        f"postgresql://mirador:{PASSWORD}@127.0.0.1:notaport/x",  # unparsable
        f"postgres://mirador:{PASSWORD}@127.0.0.1:1/x",  # nothing listening
        f"postgresql://127.0.0.1:1/x?password={PASSWORD}",  # the password in the query
        f"mysql://mirador:{PASSWORD}@127.0.0.1/x",  # not Postgres
    ],
)
@pytest.mark.parametrize(
    "command", [["ask", "What is a mutex?", "--no-retrieval"], ["resume", "--thread", "t"]]
)
def test_a_bad_threads_url_is_one_line_and_status_2_without_the_password(url, command):
    proc = subprocess.run([str(BIN / "mirador"), *command], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "MIRADOR_THREADS_DB": url})  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("mirador: error: threads database") and proc.stderr.count("\n") == 1
    assert PASSWORD not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
