"""OpenAI-compatible settings refused by a real `mirador ask`: it types the query with the
real MiniLM embedder (torch) before the plan refuses the run, so it is not a unit test."""

from __future__ import annotations

import pytest

from graph.cli import main
from tests.unit.test_openai import CHAINS

pytestmark = pytest.mark.integration


def test_an_api_key_env_that_is_not_set_is_bad_configuration_status_2(capsys, tmp_path, monkeypatch):
    chain_file = tmp_path / "chains.toml"
    chain_file.write_text(CHAINS.replace('model = "m", max_tokens', 'model = "m", api_key_env = "MIRADOR_TEST_UNSET_KEY", max_tokens', 1))  # fmt: skip
    monkeypatch.setenv("MIRADOR_CHAINS_FILE", str(chain_file))
    monkeypatch.delenv("MIRADOR_TEST_UNSET_KEY", raising=False)
    reports = tmp_path / "reports"
    with pytest.raises(SystemExit) as exit_info:
        main(["ask", "What is this?", "--backend", "openai", "--no-retrieval", "--reports-dir", str(reports)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1, err
    assert "stage 'quick': its api_key_env MIRADOR_TEST_UNSET_KEY is not set" in err
    assert not reports.exists()
