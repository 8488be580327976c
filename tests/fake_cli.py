"""`mirador` as it is, on the scripted models: `python -m tests.fake_cli ARGS...` from the repo root.

For tests where a second process matters and a real model does not (the thread store, the
index server). MIRADOR_TEST_DELAY: seconds between streamed tokens (default 0);
MIRADOR_TEST_EMBEDDER=minilm: the real embedder (for an index that it built), else bag-of-words.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import graph.builder
from graph.cli import main
from graph.runtime.compute import embed
from tests.fakes import Script, bow_embed, chains

_real_build_graph = graph.builder.build_graph


def _build_graph(**kwargs: Any) -> Any:
    delay = float(os.environ.get("MIRADOR_TEST_DELAY", "0"))
    script = Script(delays=dict.fromkeys(chains().stage_names(), delay))
    embedder = embed if os.environ.get("MIRADOR_TEST_EMBEDDER") == "minilm" else bow_embed
    return _real_build_graph(chat_model_factory=script, embedder=embedder, chains=chains(), **kwargs)


graph.builder.build_graph = _build_graph

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
