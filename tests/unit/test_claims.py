"""graph.claims: a finding whose claim the code contradicts is set aside."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from graph import claims
from graph.claims import parse, refuted
from graph.findings import ground

ROOT = Path(__file__).resolve().parents[2]

SOURCE = textwrap.dedent(
    """\
    \"\"\"Service helpers for the exporter.\"\"\"
    import asyncio
    import time
    from collections import deque

    import requests


    class Service:
        def __init__(self):
            self.seen = []
            self.recent = deque(maxlen=100)
            self.cache = {}
            self.session = requests.Session()
            self.spare = 0

        def remember(self, key):
            self.seen.append(key)
            self.recent.append(key)
            self.cache[key] = time.time()

        def forget(self, key):
            self.cache.pop(key, None)

        async def handle(self, items):
            await asyncio.sleep(0)
            time.sleep(1)
            for item in items:
                await self.fetch(item)
            total = []
            total.append(1)
            return total

        def report(self, path):
            out = open(path, "w")
            if not path:
                raise ValueError(path)
            out.write("x")
            out.close()
            urlopen(path).close()
            with open(path) as f:
                return f.read()

        def call(self, url):
            return self.session.get(url)

        def warm(self, keys):
            for key in keys:
                limit = len(self.seen) * 2
                if key not in self.seen:
                    self.remember(key)

        def again(self, path):
            urlopen(path).close()
            asyncio.run(main())
            note = note + path

        def retry(self, job):
            for attempt in range(3):
                job.attempts += 1
                job.history.append(time.time())
                job.wait = job.wait + 0.5
                log = log + str(attempt)

        def safe(self, path):
            f = open(path)
            try:
                return f.read()
            finally:
                f.close()
    """
)
CODE = parse(SOURCE)


def line_of(text: str) -> int:
    return next(n for n, line in enumerate(SOURCE.splitlines(), 1) if text in line)


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("await self.fetch(item)", "one request per item, repeated on every iteration of the loop, slow"),
        ("time.sleep(1)", "time.sleep stalls the event loop for a second"),
        ("time.sleep(1)", "a blocking call inside async def"),
        ("self.seen.append(key)", "a list that only ever grows, so memory is exhausted"),
        ("self.spare = 0", "the counter is never used anywhere, dead code"),
        ('out = open(path, "w")', "the file is not closed when write raises: a leak"),
        ("out.close()", "the file is not closed when write raises: a leak"),
        ("return self.session.get(url)", "no timeout, so it can hang forever"),
        ("await self.fetch(item)", "independent fetches done one after another that could run concurrently"),
        ("limit = len(self.seen) * 2", "recomputed on every iteration; move it out of the loop"),
        ("if key not in self.seen:", "a membership test on a list in a loop: quadratic"),
        ("urlopen(path).close()", "repeated in the `again` method, so it is duplicated work"),
        ("return self.session.get(url)", "a new request every time it is called: redundant round trips"),
        ("limit = len(self.seen) * 2", "recomputed each time round the loop: repeated work"),
        ("if key not in self.seen:", "a membership test that scans the whole list for every key"),
        ('out = open(path, "w")', "the `raise` on line {raise} leaves without closing `out`, a leak"),
        # the demo's re-sent context: a string that adds to itself on every pass of a loop
        ("log = log + str(attempt)", "it rebuilds the string on every attempt, so memory use grows"),
    ],
)
def test_claims_the_code_bears_out_pass(at: str, message: str) -> None:
    message = message.replace("{raise}", str(line_of("raise ValueError")))
    assert refuted(CODE, line_of(at), message) is None


@pytest.mark.parametrize(
    ("at", "message", "why"),
    [
        ("self.cache[key] = time.time()", "repeated on every iteration of the loop", "in no loop"),
        ("self.cache[key] = time.time()", "It is repeated for each customer, which is slow", "in no loop"),
        ("self.cache = {}", "this cache is never used anywhere", "never used"),
        ("Service helpers", "redundant: the module already exports this", "docstring"),
        ("self.seen.append(key)", "repeated work on", "cut off"),
        ("await asyncio.sleep(0)", "stalls the event loop", "event loop"),
        ("out.write", "a blocking write that stalls the event loop", "event loop"),
        ("self.recent.append(key)", "a list that grows without bound", "grows"),
        ("note = note + path", "the note grows without bound", "grows"),  # once, not in a loop
        ("self.cache[key] = time.time()", "a dict that grows without bound", "grows"),
        ("total.append(1)", "grows indefinitely with many entries", "grows"),
        ("with open(path) as f:", "the file is not closed: a leak", "released"),
        ("f.close()", "the file is never closed, a resource leak", "released"),
        ("urlopen(path).close()", "not in a finally block, so it is not closed on an exception", "released"),
        ("self.seen = []", "this line is not a problem, the list is small", "not a problem"),
        ("self.spare = 0", "a counter that does not affect the performance of the module", "not a problem"),
        (
            "self.seen = []",
            "used to track keys; it does not need to be cleared, as it only grows slowly",
            "not a problem",
        ),
        ("self.cache.pop(key, None)", "removes a key from the cache.", "without naming a problem"),
        ("for key in keys:", "sequential work that could run concurrently", "concurrently"),
        ("out.close()", "fine, and it uses a `with` block", "without naming a problem"),
        (
            "out.close()",
            "closes the file. It costs 0 ms per call, which is not optimal",
            "without naming a problem",
        ),
        (
            "await self.fetch(item)",
            "It should be moved outside the loop to avoid redundant work",
            "out of the loop",
        ),
        ("self.cache[key] = time.time()", "recomputed each time; move it out of the loop", "out of the loop"),
        (
            "urlopen(path).close()",
            "repeated in the `call` method; move it to the constructor",
            "repeated in other",
        ),
        ("self.session.get(url)", "repeated in the `remember` and `forget` methods", "repeated in other"),
        ("f.close()", "the `raise` on line {raise} leaves without closing `f`, a leak", "no later exit"),
        ("self.seen.append(key)", "It is repeated for each customer, which means it is slow,", "cut off"),
        ("self.seen.append(key)", "a list that only grows, which", "cut off"),
        ("asyncio.run(main())", "if this function hangs there is no timeout", "hang"),
        ("self.remember(key)", "repeated on every iteration, which can lead to quadratic time", "quadratic"),
        ("self.cache[key] = time.time()", "quadratic in the number of keys", "in no loop"),
        # held-out cases' cost analysts: a retry loop's counter and log, a constructor's setup
        (
            "self.session = requests.Session()",
            "creates a new session object. It can lead to repeated work if the same request is made",
            "when the object is made",
        ),
        (
            "self.cache = {}",
            "a new dict is created every time, which is redundant",
            "when the object is made",
        ),
        # the telemetry case's cost analyst pasted its mandate onto an append
        (
            "job.history.append(time.time())",
            "membership tests and .index/.remove on a list inside a loop -",
            "tests no membership",
        ),
        (
            "job.attempts += 1",
            "repeated on every iteration of the loop, which can lead to quadratic time complexity",
            "quadratic",
        ),
        ("job.wait = job.wait + 0.5", "rebuilt on every iteration: quadratic", "quadratic"),
        # held-out 6's concurrency analyst: "blocking" said of a sync function's lines and of an
        # awaited call (an index slip had judged it by the repeat claim's test, which passed them)
        ("f.close()", "This line is blocking because it waits for the file to be closed", "blocks"),
        ("await self.fetch(item)", "This is a blocking call that waits for the fetch", "blocks"),
        (
            "self.seen.append(key)",
            "This appends to a list, a linear operation, not quadratic",
            "not a problem",
        ),
        (
            "self.spare = 0",
            "sets a counter, which is not repeated and does not involve repeated work",
            "not a problem",
        ),
        (
            "job.attempts += 1",
            "It should be moved outside the loop for better performance",
            "out of the loop",
        ),
        (
            "job.history.append(time.time())",
            "repeated every time; move it outside the loop",
            "out of the loop",
        ),
    ],
)
def test_claims_the_code_contradicts_are_refuted(at: str, message: str, why: str) -> None:
    message = message.replace("{raise}", str(line_of("raise ValueError")))
    assert why in (refuted(CODE, line_of(at), message) or "")


def test_a_fix_that_moves_a_line_out_of_its_loop_is_held_to_the_line_not_changing() -> None:
    """The digest's cost analyst: `smtp.send_message(msg)` 'repeated on every iteration',
    'Fix: move it outside the loop' - of a line that sends each subscriber's own message."""
    at = line_of("await self.fetch(item)")
    message = "repeated on every iteration of the loop, which is slow"
    assert "fix moves it out" in (refuted(CODE, at, message, "Move it outside the loop.") or "")
    assert refuted(CODE, line_of("limit = len(self.seen)"), message, "Move it outside the loop.") is None


def test_a_document_that_is_not_python_is_judged_by_its_words_only() -> None:
    assert refuted(parse("def broken(:\n"), 1, "repeated on every iteration of the loop") is None
    assert refuted(parse("def broken(:\n"), 1, "this line sets a value.") is not None


def test_ground_sets_refuted_findings_aside_with_the_reason() -> None:
    found = [
        {"line": 0, "code": "await asyncio.sleep(0)", "message": "stalls the event loop", "fix": ""},
        {
            "line": 0,
            "code": "time.sleep(1)",
            "message": "stalls the event loop",
            "fix": "await asyncio.sleep",
        },
    ]
    kept, aside = ground(found, SOURCE, "concurrency", "concurrency")
    assert [f["code"] for f in kept] == ["time.sleep(1)"]
    assert aside[0]["refuted"] and "event loop" in aside[0]["reason"]


def test_most_findings_labelled_false_on_the_eval_are_refuted() -> None:
    """The 1.5B's own findings on the eval cases (session 2), labelled by hand: the filter
    must set aside most of the false ones (it set aside none before graph.claims)."""
    rows = json.loads((ROOT / "tests/fixtures/labelled_stage_findings.json").read_text())
    sources = {r["file"]: parse((ROOT / "eval" / r["file"]).read_text()) for r in rows}
    false = [r for r in rows if r["label"] == "false"]
    refuted_false = [r for r in false if refuted(sources[r["file"]], r["line"], r["message"])]
    assert len(false) == 51
    assert len(refuted_false) / len(false) >= 0.9  # 47 of 51 (session 10; 44 before the blocking claim's fix)


def test_a_finding_that_repeats_a_checks_message_on_another_line_is_set_aside() -> None:
    """The eval's 1.5B put MIR014's message ('the `raise` on line 53 leaves without closing
    `resp`') on a different `resp.close()`; a finding in words of its own stays."""
    fact = {"line": 35, "rule": "MIR014", "message": "the `raise` on line 33 leaves without closing `out` "
            "(`out.close()` is not in a `finally`), so it stays open; use `with` or try/finally"}  # fmt: skip
    found = [
        {
            "line": 0,
            "code": "f.close()",
            "message": "the `raise` on line 33 leaves without closing `out`, so it stays open",
            "fix": "",
        },  # fmt: skip
        {
            "line": 0,
            "code": 'out = open(path, "w")',
            "message": "a write error leaks the file handle",
            "fix": "",
        },
    ]
    kept, aside = ground(found, SOURCE, "resources", "resources", [fact])  # type: ignore[list-item]
    assert [f["code"] for f in kept] == ['out = open(path, "w")']
    assert aside[0]["reason"] == "repeats the MIR014 finding about line 35"


@pytest.mark.parametrize(
    ("rule", "sentence", "denial"),
    [
        ("ASYNC210", "The use of `asyncio` ensures that the event loop does not block while waiting.", True),
        ("ASYNC210", "The HTTP calls are non-blocking, so streams interleave.", True),
        ("MIR010", "The client never hangs: every call has a timeout.", True),
        ("MIR008", "The history does not grow past one run.", True),
        ("ASYNC210", "Switch to httpx so the event loop does not block.", False),  # advice
        ("ASYNC210", "It should use an async client so that it does not block.", False),
        ("ASYNC210", "The blocking call stalls the event loop.", False),  # a claim, not a denial
        ("MIR008", "The event loop does not block here.", False),  # another rule's problem
    ],
)
def test_a_sentence_denies_a_rules_problem_only_when_it_says_the_code_is_free_of_it(rule, sentence, denial):
    assert claims.denies(rule, sentence) is denial
