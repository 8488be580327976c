"""The argument parser: every subcommand and option, and the one-line usage error."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from graph.chains import EMBEDDED_CHOICES
from graph.config import BACKENDS

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def fail(message: str, status: int = USAGE_ERROR) -> NoReturn:
    """One line on stderr, then exit (2: bad input; 1: a failure during the run)."""
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
