"""The unit tier's guard: a unit test that loads a heavy module while it runs fails, naming
the module (tests/unit/test_tier.py checks what the modules load when imported)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

# Model runtimes, the vector store and llama.cpp: seconds to load each, and the integration tier's.
HEAVY = ("torch", "llama_cpp", "chromadb", "sentence_transformers")


@pytest.fixture(autouse=True)
def _loads_no_heavy_module() -> Iterator[None]:
    # Loaded before (by an integration test earlier in a full run): this test is not to blame.
    before = {name for name in HEAVY if name in sys.modules}
    yield
    loaded = [name for name in HEAVY if name in sys.modules and name not in before]
    assert not loaded, f"this unit test loaded {', '.join(loaded)}: move it to tests/integration"
