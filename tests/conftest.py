from __future__ import annotations

import pytest

from graph.config import Context


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's index, threads or cache of reports."""
    monkeypatch.setenv("MIRADOR_DATA_DIR", str(tmp_path_factory.mktemp("mirador-data")))
    monkeypatch.delenv("MIRADOR_INDEX_DIR", raising=False)
    monkeypatch.delenv("MIRADOR_THREADS_DB", raising=False)


@pytest.fixture
def sample_doc(tmp_path):
    path = tmp_path / "orchestrator.py"
    path.write_text(
        "class StreamingOrchestrator:\n"
        "    def process(self, query):\n"
        "        context = ''\n"
        "        for stage in self.stages:\n"
        "            context = context + stage.run(query)  # grows without bound\n"
        "        return context\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def checked_doc(sample_doc):
    """The sample (lines 1-6 unchanged) and a method a check finds a problem in (time.sleep in
    async def, line 11): a code run with a confirmed finding, so the synthesis runs (with nothing
    confirmed it is skipped: nodes.skip_reason)."""
    text = sample_doc.read_text(encoding="utf-8")
    sample_doc.write_text(
        text + "\n    async def pause(self):\n        import time\n\n        time.sleep(1)\n"
    )
    return sample_doc


@pytest.fixture
def context(tmp_path):
    """A run context that probes no server, reads no user index, writes under tmp_path."""
    return Context(
        backend="embedded", reports_dir=str(tmp_path / "reports"), index_dir=str(tmp_path / "no-index")
    )
