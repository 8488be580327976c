"""`mirador`: the command line."""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Any, NoReturn

from graph.config import BACKENDS
from graph.report import group_notes

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def _fail(message: str, status: int = USAGE_ERROR) -> NoReturn:
    print(f"mirador: error: {message}", file=sys.stderr)
    raise SystemExit(status)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mirador", description="Run a chain of local language models over a question.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ask = sub.add_parser("ask", help="analyse a question (and a document) with a model chain")
    ask.add_argument("query", help="the question")
    ask.add_argument("--document", "-d", metavar="FILE", help="a file to analyse")
    ask.add_argument("--chain", "-c", metavar="NAME", help="chain to run (default: by query type)")
    ask.add_argument("--backend", "-b", choices=BACKENDS, default="auto", help="default: auto")
    ask.add_argument("--max-tokens", type=_positive, metavar="N", help="cap on tokens per stage")
    ask.add_argument("--reports-dir", metavar="DIR", default="reports", help="default: ./reports")
    ask.add_argument("--json", action="store_true", help="print the JSON summary on stdout instead")
    ask.add_argument("--thread", "-t", metavar="ID", help="continue this conversation (default: a new one)")
    ask.add_argument("--index", metavar="DIR", help="index to draw passages from (default: the data dir)")
    ask.add_argument("--no-retrieval", action="store_true", help="use no indexed passages")

    index = sub.add_parser("index", help="load files and folders into the index")
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    index.add_argument("--kind", choices=("documents", "persona"), default="documents",
                       help="documents (code, text, markdown, PDF) or persona (notes about you)")  # fmt: skip
    index.add_argument(
        "--index", metavar="DIR", help="the index (default: MIRADOR_INDEX_DIR or the data dir)"
    )
    index.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser


class _Printer:
    """Streams a run to the terminal: a header per stage, tokens as they come."""

    def __init__(self, out: Any, total: int = 0) -> None:
        self.out = out
        self.total = total
        self.number = 0

    def custom(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "plan":
            self.total = len(event["notes"])
            self.write(f"mirador · chain {event['chain']} · query type {event['query_type']}\n")
            for note in group_notes(event["notes"]):
                self.write(f"  backend: {note}\n")
        elif kind == "retrieval":
            self.write(f"  retrieval: {event['note']}\n")
            for p in event["passages"]:
                self.write(f"    [{p['n']}] {p['source']}:{p['line_start']}-{p['line_end']} "
                           f"({p['kind']}, {p['score']:.2f})\n")  # fmt: skip
        elif kind == "stage_start":
            if event["attempt"] == 1:
                self.number += 1
            again = f" · attempt {event['attempt']}: it {event['correction']}" if event["attempt"] > 1 else ""
            self.write(
                f"\n── [{self.number}/{self.total}] {event['stage']} · {event['model']} "
                f"({event['backend']}){again} ──\n"
            )
        elif kind == "stage_skip":
            self.number += 1
            self.write(f"\n── [{self.number}/{self.total}] {event['stage']} skipped: {event['reason']} ──\n")
        elif kind == "stage_end":
            first = event["first_token_s"]
            first_text = "no token" if first is None else f"first token {first:.2f} s"
            self.write(
                f"\n   [{event['status']} · {first_text} · {event['total_s']:.1f} s · "
                f"{event['tokens']} tokens · {event['tokens_per_s']} tok/s · "
                f"confidence {event['confidence']:.2f}]\n"
            )
            if event["note"]:
                self.write(f"   {event['note']}\n")
            if event["error"]:
                self.write(f"   error: {event['error']}\n")
        elif kind == "report":
            self.write(f"\nReport: {event['path']}\n")

    def token(self, text: str) -> None:
        self.write(text)

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _ask(args: argparse.Namespace) -> int:
    # Imported here so `--help` and argument errors stay fast.
    from graph.builder import build_graph
    from graph.chains import ChainError, load_chains
    from graph.config import Context
    from graph.memory import check_thread_id, open_checkpointer
    from graph.nodes import read_document

    if not args.query.strip():
        _fail("the query is empty")
    if args.document:
        try:
            read_document(args.document)
        except (ValueError, OSError) as exc:
            _fail(str(exc))
    try:
        thread = check_thread_id(args.thread) if args.thread else uuid.uuid4().hex[:8]
    except ValueError as exc:
        _fail(str(exc))
    if args.index and not args.no_retrieval and not (Path(args.index) / "chroma.sqlite3").is_file():
        _fail(f"{args.index} is not a Mirador index (no chroma.sqlite3); build one with `mirador index`")
    try:
        if args.chain:
            load_chains().get(args.chain)
        graph = build_graph(checkpointer=open_checkpointer())
    except ChainError as exc:
        _fail(str(exc))
    context = Context(
        chain=args.chain or "",
        backend=args.backend,
        max_tokens=args.max_tokens or 0,
        reports_dir=args.reports_dir,
        retrieval=not args.no_retrieval,
        index_dir=args.index or "",
    )
    inputs: dict[str, Any] = {"query": args.query}
    if args.document:
        inputs["document_path"] = args.document
    printer = _Printer(sys.stderr if args.json else sys.stdout)
    json_path = ""
    config = {"configurable": {"thread_id": thread}}
    for mode, data in graph.stream(inputs, config, context=context, stream_mode=["messages", "custom"]):
        if mode == "custom":
            if not args.json or data.get("event") != "report":
                printer.custom(data)
            if data.get("event") == "report":
                json_path = data["json_path"]
        elif mode == "messages" and not args.json:
            chunk, _meta = data
            if chunk.text:
                printer.token(chunk.text)
    if args.json:
        print(Path(json_path).read_text(encoding="utf-8"), end="")
    else:
        printer.write(f"Thread: {thread} (follow up with --thread {thread})\n")
    return 0


def _index(args: argparse.Namespace) -> int:
    from retrieval.indexer import index_paths
    from retrieval.store import Index, default_index_dir

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        _fail(f"path not found: {missing[0]}")
    path = Path(args.index) if args.index else default_index_dir()
    if path.exists() and not path.is_dir():
        _fail(f"index path is not a folder: {path}")
    if path.is_dir() and any(path.iterdir()) and not (path / "chroma.sqlite3").is_file():
        _fail(f"{path} is not a Mirador index (no chroma.sqlite3); choose an empty or new folder")
    summary = index_paths(
        args.paths, kind=args.kind, index=Index(path), progress=False if args.quiet else None
    )
    for source, reason in summary.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    print(f"{args.kind} → {path}: {summary.line()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        if args.command == "ask":
            return _ask(args)
        if args.command == "index":
            return _index(args)
    except KeyboardInterrupt:
        print("\nmirador: interrupted; no report was written", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, status=1)
    return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
