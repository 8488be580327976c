"""The unit tier loads no model runtime, no Chroma and no llama.cpp: that is what keeps
`make test-unit` at seconds. A test that needs one belongs in tests/integration (marker
`integration`). Imports at run time are caught per test by tests/unit/conftest.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.unit.conftest import HEAVY

ROOT = Path(__file__).resolve().parents[2]

# In a fresh interpreter (this one has pytest's plugins and whatever ran before): import the
# unit test modules one by one and name the first that brings in a heavy module (argv).
IMPORT_ALL = """
import importlib, sys
from pathlib import Path
for path in sorted(Path("tests/unit").glob("test_*.py")):
    importlib.import_module(f"tests.unit.{path.stem}")
    loaded = [name for name in sys.argv[1:] if name in sys.modules]
    if loaded:
        sys.exit(f"importing {path} loads {', '.join(loaded)}")
"""


def test_importing_the_unit_tests_loads_no_model_runtime_chroma_or_llama_cpp():
    run = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, *HEAVY],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
