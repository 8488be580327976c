"""`mirador`: the command line. Each command lives in its own module:

parser (every option), run (`ask`, `resume` and the signals that stop a run), render (a run
on the terminal), index, chains, doctor; `check` is checks.cli's, with its own parser.
"""

from __future__ import annotations

import signal
import sys
import threading

from graph.chains import ChainError
from graph.cli import chains, index
from graph.cli.parser import USAGE_ERROR, fail, make_parser
from graph.cli.run import ask, interrupted_status, on_signal, resume

__all__ = ["main", "make_parser"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:  # the checks have their own parser, and load no model runtime
        from checks.cli import main as check

        return check(argv[1:])
    args = make_parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread()
    previous = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if on_main else {}
    )
    try:
        if args.command == "ask":
            return ask(args)
        if args.command == "resume":
            return resume(args)
        if args.command == "index":
            return index.build(args)
        if args.command == "chains":
            return chains.show()
        if args.command == "doctor":
            from graph.cli.doctor import doctor  # it loads the model clients: not for every command

            return doctor()
    except KeyboardInterrupt:
        print("\nmirador: interrupted; no report was written", file=sys.stderr)
        return interrupted_status()
    except ChainError as exc:
        fail(str(exc))
    except (ValueError, RuntimeError, OSError) as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, status=1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return USAGE_ERROR
