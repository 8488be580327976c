"""`mirador ask` and `mirador resume`: a run streamed to the terminal, and the signals that stop it."""

from __future__ import annotations

import argparse
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

from rich.console import Console

from graph.chains import ChainError
from graph.cli.parser import fail
from graph.cli.render import Printer
from graph.runtime import compute
from retrieval.locations import is_index

_SIGNAL = [signal.SIGINT.value]  # the signal that stopped the run: exit status 128 + it


def on_signal(signum: int, _frame: Any) -> None:
    """Ctrl-C or SIGTERM: the model call in flight stops at its next token (its stage is
    not recorded, so a resume runs it again), and the run unwinds."""
    _SIGNAL[0] = signum
    compute.cancel()
    raise KeyboardInterrupt


def interrupted_status() -> int:
    return 128 + _SIGNAL[0]


def ask(args: argparse.Namespace) -> int:
    # Imported here so `--help` and argument errors stay fast.
    from graph.builder import build_graph
    from graph.chains import configured_chains
    from graph.config import Context
    from graph.memory import ThreadStoreError, check_thread_id, open_checkpointer
    from graph.nodes import check_query, read_document
    from retrieval.store import Index, UnusableIndex, index_location, is_server

    try:
        given = {
            "chain": args.chain,
            "backend": args.backend,
            "models": dict(args.model) or None,
            "openai_base_url": args.openai_base_url,
            "embedded_model": args.embedded_model,
            "max_tokens": args.max_tokens,
            "reports_dir": args.reports_dir,
            "retrieval": False if args.no_retrieval else None,
            "index_dir": args.index,
        }
        # Only what the user gave: an option left out falls back to MIRADOR_<FIELD>, one given wins.
        context = Context(**{name: value for name, value in given.items() if value is not None})
        check_query(args.query, context.max_query_chars)
        if args.document:
            read_document(args.document, context.max_document_bytes)
        thread = check_thread_id(args.thread) if args.thread else uuid.uuid4().hex[:8]
    except (ValueError, OSError) as exc:
        fail(str(exc))
    where = index_location(context.index_dir)
    if not args.no_retrieval and is_server(where):
        try:
            Index(where, create=False)
        except UnusableIndex as exc:
            fail(str(exc))
    elif args.index and not args.no_retrieval and not is_index(args.index):
        fail(f"{args.index} is not a Mirador index (no chroma.sqlite3); build one with `mirador index`")
    try:
        if args.chain:
            configured_chains().get(args.chain)
        graph = build_graph(checkpointer=open_checkpointer())
    except (ChainError, ThreadStoreError) as exc:
        fail(str(exc))
    inputs: dict[str, Any] = {"query": args.query}
    if args.document:
        inputs["document_path"] = args.document
    return stream(graph, inputs, thread, context, args)


def resume(args: argparse.Namespace) -> int:
    from graph.builder import build_graph
    from graph.config import Context
    from graph.memory import check_thread_id, open_checkpointer

    try:
        thread = check_thread_id(args.thread)
        graph = build_graph(checkpointer=open_checkpointer())
    except ValueError as exc:  # a bad id, or a thread store that cannot be opened
        fail(str(exc))
    if not graph.get_state({"configurable": {"thread_id": thread}}).tasks:
        fail(f"thread {thread} has no interrupted run to resume")
    context = Context(reports_dir=args.reports_dir) if args.reports_dir is not None else Context()
    return stream(graph, None, thread, context, args)


def stream(
    graph: Any, inputs: dict[str, Any] | None, thread: str, context: Any, args: argparse.Namespace
) -> int:
    """Stream a run (inputs None: resume the thread's interrupted run) to the terminal;
    with --json, progress goes to stderr and the JSON summary to stdout."""
    printer = Printer(Console(file=sys.stderr if args.json else sys.stdout, highlight=False),
                      quiet=args.quiet or args.json)  # fmt: skip
    json_path = ""
    config = {"configurable": {"thread_id": thread}}
    if inputs is None:  # resuming: count the stages already done
        done = graph.get_state(config).values
        printer.total = len(done.get("plan", []))
        printer.number = len({r["stage"] for r in done.get("results", [])})
        printer.write(f"mirador · resuming thread {thread} after {printer.number} finished stages\n")
    events = graph.stream(
        inputs, config, context=context, stream_mode=["messages", "custom"], durability="sync"
    )  # each finished stage is on disk before the next starts, so a run can be resumed
    try:
        for mode, data in events:
            if mode == "custom":
                if not args.json or data.get("event") != "report":
                    printer.custom(data)
                if data.get("event") == "report":
                    json_path = data["json_path"]
            elif mode == "messages":
                chunk, _meta = data
                if chunk.text:
                    printer.token(str(chunk.text))
    except KeyboardInterrupt:
        printer.clear_status()
        print(f"\nmirador: interrupted; no report was written. Resume with: mirador resume --thread {thread}",
              file=sys.stderr)  # fmt: skip
        return interrupted_status()
    finally:
        printer.clear_status()
    if args.json:
        print(Path(json_path).read_text(encoding="utf-8"), end="")
    else:
        printer.write(f"Thread: {thread} (follow up with --thread {thread})\n")
    return 0
