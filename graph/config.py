"""Runtime configuration: one typed object, read by nodes through `runtime.context`.

Every field has a description (Studio renders it). A field left at its default
falls back to the environment variable MIRADOR_<FIELD>, converted to the
field's type.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Where Mirador keeps the index and conversation threads."""
    if os.environ.get("MIRADOR_DATA_DIR"):
        return Path(os.environ["MIRADOR_DATA_DIR"])
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mirador"


Backend = Literal["auto", "embedded", "ollama"]
BACKENDS: tuple[str, ...] = get_args(Backend)


@dataclass(kw_only=True)
class Context:
    """How one Mirador run is carried out."""

    chain: str = field(
        default="",
        metadata={"description": "Chain to run (see chains.toml). Empty: chosen from the query type."},
    )
    backend: Backend = field(
        default="auto",
        metadata={
            "description": "Model backend: 'embedded' (llama.cpp in-process), 'ollama', or 'auto' "
            "(Ollama when it answers and has the stage's model, else embedded)."
        },
    )
    ollama_base_url: str = field(
        default="http://127.0.0.1:11434",
        metadata={"description": "Ollama server for stages that name no base_url of their own."},
    )
    max_tokens: int = field(
        default=0,
        metadata={"description": "Cap on tokens per stage; 0 keeps each stage's own cap."},
    )
    max_document_chars: int = field(
        default=12_000,
        metadata={"description": "The document is cut to this many characters in prompts."},
    )
    retrieval: bool = field(
        default=True,
        metadata={"description": "Draw passages from the index (gated by query type). Off: none."},
    )
    index_dir: str = field(
        default="",
        metadata={
            "description": "The index (`mirador index` builds it). Empty: MIRADOR_INDEX_DIR or "
            "~/.local/share/mirador/index."
        },
    )
    retrieval_k: int = field(
        default=4,
        metadata={"description": "At most this many passages enter the prompt."},
    )
    reports_dir: str = field(
        default="reports",
        metadata={"description": "Where reports are written (relative paths: to the working dir)."},
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) != f.default:
                continue
            raw = os.environ.get(f"MIRADOR_{f.name.upper()}")
            if raw is None:
                continue
            if isinstance(f.default, bool):
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(f"MIRADOR_{f.name.upper()} must be true or false, got {raw!r}")
                value: object = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(f.default, int):
                try:
                    value = int(raw)
                except ValueError:
                    raise ValueError(f"MIRADOR_{f.name.upper()} must be an integer, got {raw!r}") from None
            else:
                value = raw
            setattr(self, f.name, value)
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r} (choose from {', '.join(BACKENDS)})")
        if self.max_tokens < 0:
            raise ValueError("max_tokens must be 0 or more")
        if self.max_document_chars <= 0:
            raise ValueError("max_document_chars must be positive")
