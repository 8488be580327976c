"""The ground-truth code evaluation: its cases load and validate, its patterns credit a report
that names a problem and nothing else, and the scorer counts only the report's own words."""

from __future__ import annotations

import importlib.util
import json
import py_compile
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("eval_scoring", ROOT / "eval" / "scoring.py")
assert _spec and _spec.loader
scoring = importlib.util.module_from_spec(_spec)
sys.modules["eval_scoring"] = scoring
_spec.loader.exec_module(scoring)

CASES = scoring.load_cases(ROOT / "eval" / "code_cases.toml")
# Written by helpers who read only eval/scoring.py: never tuned against. The first set was run
# once before the session-5 changes; the second is kept for a measure after them.
HELDOUT_SETS = ["heldout", "heldout2"]
HELDOUT = [c for name in HELDOUT_SETS for c in scoring.load_cases(ROOT / "eval" / f"{name}_cases.toml")]
EVERY = CASES + HELDOUT
BY_NAME = {c["name"]: c for c in CASES}
HELDOUT_BY_NAME = {c["name"]: c for c in HELDOUT}
HELDOUT_SENTENCES: dict[str, dict] = {"naming": {}, "not_naming": {}}
for _name in HELDOUT_SETS:
    _sentences = json.loads(
        (ROOT / "tests" / "fixtures" / f"{_name}_sentences.json").read_text(encoding="utf-8")
    )
    for _key in HELDOUT_SENTENCES:
        HELDOUT_SENTENCES[_key].update(_sentences[_key])
DEMO = (ROOT / "tests" / "fixtures" / "demo_copied_stages.md").read_text(encoding="utf-8")


def _ids(case):
    return [p["id"] for p in case["problem"]]


# One sentence per problem, as a report that found it might write it.
POSITIVE = {
    (
        "rate limiter",
        "blocking-sleep",
    ): "`acquire` calls `time.sleep(wait)` inside an `async def`, which blocks the event loop for every other client; use `await asyncio.sleep(wait)`.",
    (
        "rate limiter",
        "bucket-growth",
    ): "`_buckets` gets a new entry for every API key and idle buckets are never removed, so the dict grows without bound.",
    (
        "web scraper",
        "blocking-requests",
    ): "`sitemap_urls` is async but uses `requests.get`, a blocking call that stalls the event loop; fetch the sitemap and robots.txt through aiohttp.",
    (
        "web scraper",
        "visited-list",
    ): "`self.visited` is a list, so `url in self.visited` is a linear scan per URL; make it a set.",
    (
        "web scraper",
        "sequential-fetch",
    ): "`crawl` awaits `self.fetch` for each URL in the batch one at a time; fetch the batch concurrently with `asyncio.gather`.",
    (
        "job queue",
        "conn-leak",
    ): "`_claim` returns None when the queue is empty without closing the connection, so connections leak.",
    (
        "job queue",
        "lock-during-http",
    ): "`run_one` holds `_claim_lock` while `_notify` makes an HTTP request, so all workers wait on the network.",
    (
        "billing",
        "n-plus-one",
    ): "`build_invoices` runs one usage query per customer: an N+1 pattern; use a single query with GROUP BY customer_id.",
    (
        "billing",
        "string-concat",
    ): "`export_csv` builds the CSV with `out +=` string concatenation, which is quadratic; collect the rows in a list and `join` them.",
    (
        "chat server",
        "lock-across-await",
    ): "`broadcast` holds a `threading.Lock` across `await self._send(...)`; if another coroutine calls `room()` meanwhile, the event loop deadlocks. Use an `asyncio.Lock`.",
    (
        "chat server",
        "sequential-broadcast",
    ): "`broadcast` sends to members one by one, so a slow client delays the whole room.",
    (
        "chat server",
        "history-growth",
    ): "`room.history` grows without limit since every message is appended and never trimmed; use a deque with maxlen.",
    (
        "etl pipeline",
        "regex-recompiled",
    ): "`normalise` calls `re.compile` for every rule on every row; precompile the SKU rules once.",
    (
        "etl pipeline",
        "file-not-closed",
    ): "In `write_batch`, the file is not closed when `RejectedRow` is raised; use `with open(...)`.",
    (
        "ttl cache",
        "recent-list-linear",
    ): "`_touch` does `key in self._recent` and `self._recent.remove(key)`, an O(n) scan on every get; use an OrderedDict with move_to_end.",
    (
        "ttl cache",
        "unbounded-entries",
    ): "Expired entries are never purged unless the same key is read again, and there is no max size, so `_data` grows without bound.",
    (
        "file indexer",
        "sync-read-in-async",
    ): "`index_file` reads the file with a blocking `open().read()` on the event loop; offload the read with `asyncio.to_thread` as the digest already is.",
    (
        "file indexer",
        "posting-list-membership",
    ): "`rel not in files` is a linear scan of a list for every word; the posting lists should be sets.",
    (
        "metrics exporter",
        "slow-requests-growth",
    ): "`slow_requests` grows without bound: every request over a second is appended forever; use a deque with maxlen.",
    (
        "metrics exporter",
        "socket-no-timeout",
    ): "`flush` calls `socket.create_connection` without a timeout, so a dead Graphite host hangs the exporter thread.",
    (
        "shipping api client",
        "no-timeout",
    ): "`_request` calls `session.request` without a timeout, so a stalled server hangs the worker forever; pass `timeout=(3, 30)`.",
    (
        "shipping api client",
        "stream-not-closed",
    ): "`download_label` raises on a wrong content type before `resp.close()`, so the streamed response is never closed and the connection leaks.",
    (
        "ops chat bot",
        "sqlite-in-async",
    ): "`cmd_status` runs a synchronous sqlite3 query in an async handler, blocking the event loop; use aiosqlite or `asyncio.to_thread`.",
    (
        "ops chat bot",
        "sequential-profiles",
    ): "`cmd_whois` looks up profiles one after another; fetch them concurrently with `asyncio.gather`.",
    (
        "ops chat bot",
        "deploy-no-timeout",
    ): "`cmd_deploy` awaits `proc.communicate()` with no timeout; wrap it in `asyncio.wait_for`.",
    (
        "inventory allocation",
        "n-plus-one",
    ): "`allocate` runs a products query for each order line (N+1); load the products in one query up front.",
    (
        "inventory allocation",
        "sort-in-loop",
    ): "The warehouses are re-sorted for every order line although the ranking only depends on the region; sort once per region.",
    (
        "auth sessions",
        "lock-during-idp",
    ): "`login` holds `_lock` during the HTTP calls to the identity provider, so every `get` waits for the IdP.",
    (
        "auth sessions",
        "expired-sessions-kept",
    ): "Expired sessions are never deleted from `_sessions`; `get` only ignores them, so the dict grows with every login.",
    (
        "digest mailer",
        "smtp-no-timeout",
    ): "`smtplib.SMTP(self.host, self.port)` is created without a timeout, so a stalled mail server hangs the run.",
    (
        "digest mailer",
        "render-per-recipient",
    ): "`render_items(posts)` is called for every subscriber although the HTML is identical; render it once before the loop.",
    (
        "digest mailer",
        "smtp-not-closed",
    ): "If `send_message` raises anything other than SMTPRecipientsRefused, the SMTP connection is never closed; use `with smtplib.SMTP(...)`.",
    (
        "backup runner",
        "dump-no-timeout",
    ): "`pg.wait()` and the gzip `subprocess.run` have no timeout, so a stuck pg_dump hangs the nightly job.",
    (
        "backup runner",
        "tar-not-closed",
    ): "`archive` returns None on a small dump without closing the tar file; use `with tarfile.open(...)`.",
    (
        "game leaderboard",
        "lock-across-await",
    ): "`top` holds a `threading.Lock` across `await self._load_top()`; a second caller blocks the event loop and deadlocks. Use `asyncio.Lock`.",
    (
        "game leaderboard",
        "n-plus-one",
    ): "`_load_top` runs one `fetchrow` query per player: N+1; join players in the ranking query.",
}

# Remarks that fit any file and name no problem.
GENERIC = [
    "Consider using async for better performance.",
    "Improve performance by optimizing the loops and reducing overhead.",
    "The code could be refactored for readability and maintainability.",
    "Add more error handling and logging, and write unit tests.",
    "The code is well structured and uses type hints and dataclasses.",
    "Consider caching results to improve performance.",
    "Make sure resources are managed properly.",
    "The main loop processes items and updates the state.",
    "Use a profiler to find the bottlenecks before optimizing.",
    "Concurrency could be improved in places.",
]


# --- the cases ------------------------------------------------------------------------------


def test_the_set_is_large_and_covers_every_kind():
    assert len(CASES) >= 14
    kinds = Counter(p["kind"] for c in CASES for p in c["problem"])
    assert set(kinds) == set(scoring.KINDS)
    assert all(n >= 2 for n in kinds.values()), kinds
    assert len({c["file"] for c in CASES}) == len(CASES)
    assert len({c["query"] for c in CASES}) == len(CASES), "vary the questions"


def test_the_held_out_set_covers_every_kind_and_shares_nothing_with_the_tuned_set():
    assert len(HELDOUT) >= 20 and len(HELDOUT_BY_NAME) == len(HELDOUT)
    kinds = Counter(p["kind"] for c in HELDOUT for p in c["problem"])
    assert set(kinds) == set(scoring.KINDS) and all(n >= 5 for n in kinds.values()), kinds
    assert not {c["name"] for c in HELDOUT} & {c["name"] for c in CASES}
    assert not {c["source"] for c in HELDOUT} & {c["source"] for c in CASES}


HELDOUT_NAMING = [(case, pid, sentence) for case, problems in HELDOUT_SENTENCES["naming"].items()
                  for pid, sentences in problems.items() for sentence in sentences]  # fmt: skip


def test_every_held_out_problem_has_sentences_that_name_it():
    assert {(c, p) for c, p, _ in HELDOUT_NAMING} == {
        (c["name"], p["id"]) for c in HELDOUT for p in c["problem"]
    }


@pytest.mark.parametrize(("case", "pid", "sentence"), HELDOUT_NAMING, ids=lambda x: str(x)[:40])
def test_a_sentence_naming_a_held_out_problem_names_it(case, pid, sentence):
    held = HELDOUT_BY_NAME[case]
    assert pid in scoring.named(scoring.own_words(sentence, held["source"]), held["problem"])


@pytest.mark.parametrize("case", HELDOUT, ids=lambda c: c["name"])
def test_true_remarks_about_a_held_out_files_sound_code_name_nothing(case):
    remarks = HELDOUT_SENTENCES["not_naming"][case["name"]]
    assert scoring.named("\n".join(remarks), case["problem"]) == set()


@pytest.mark.parametrize("case", EVERY, ids=lambda c: c["name"])
def test_every_case_is_valid_python_of_the_right_size(case):
    py_compile.compile(str(case["path"]), cfile=None, doraise=True, optimize=-1)
    assert 40 <= len(case["source"].splitlines()) <= 250
    assert 1 <= len(case["problem"]) <= 4


@pytest.mark.parametrize("case", EVERY, ids=lambda c: c["name"])
def test_patterns_never_fire_on_the_code_itself(case):
    """A report that pastes the code back, even outside a fence, gets no credit."""
    assert scoring.named(case["source"], case["problem"]) == set()


def test_every_problem_has_a_positive_example():
    assert set(POSITIVE) == {(c["name"], p["id"]) for c in CASES for p in c["problem"]}


@pytest.mark.parametrize("key", sorted(POSITIVE), ids=lambda k: f"{k[0]}:{k[1]}")
def test_a_sentence_naming_the_problem_names_it_and_nothing_else(key):
    case = BY_NAME[key[0]]
    text = scoring.own_words(POSITIVE[key], case["source"])
    assert scoring.named(text, case["problem"]) == {key[1]}


@pytest.mark.parametrize("case", EVERY, ids=lambda c: c["name"])
def test_generic_remarks_name_nothing(case):
    assert scoring.named("\n".join(GENERIC), case["problem"]) == set()


@pytest.mark.parametrize("case", EVERY, ids=lambda c: c["name"])
def test_describing_what_is_fine_on_purpose_names_nothing(case):
    """The near-misses of each file, described, are not its known problems."""
    assert scoring.named(case["fine"], case["problem"]) == set()


@pytest.mark.parametrize("case", EVERY, ids=lambda c: c["name"])
def test_the_demo_report_that_copies_its_stages_names_nothing(case):
    assert scoring.named(DEMO, case["problem"]) == set()
    result = scoring.score(DEMO, case)
    assert result["named"] == [] and result["in_summary"] == []


def test_the_demo_fixture_is_a_report_of_five_identical_stages():
    stages = DEMO.split("\n### ")[1:]
    assert [s.split(" (")[0].split(". ", 1)[1] for s in stages] == [
        "Context",
        "Code analyst",
        "Master coder",
        "Solution architect",
        "Synthesis",
    ]
    first_two = "- The material is a streaming orchestrator for local models."
    assert all(first_two in s for s in stages)
    assert first_two in scoring.summary_section(DEMO)


# --- validation -----------------------------------------------------------------------------

_GOOD_PROBLEM = """
[[case.problem]]
id = "p"
kind = "cost"
lines = [2, 3]
what = "something"
patterns = ['a{n}b', 'other']
"""


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('kind = "cost"', 'kind = "style"'), "kind 'style'"),
        (("lines = [2, 3]", "lines = [2, 99]"), "lines [2, 99]"),
        (("'a{n}b'", "'a(b'"), "does not compile"),
        (("['a{n}b', 'other']", "['a{n}b']"), "needs 2-6 patterns"),
        (('file = "x.py"', 'file = "missing.py"'), "does not exist"),
    ],
)
def test_a_malformed_case_fails_with_a_line_naming_it(tmp_path, change, message):
    (tmp_path / "x.py").write_text("x = 1\n" * 45)
    toml = '[[case]]\nname = "the broken one"\nfile = "x.py"\nquery = "why?"\n' + _GOOD_PROBLEM
    (tmp_path / "cases.toml").write_text(toml.replace(*change))
    with pytest.raises(ValueError) as err:
        scoring.load_cases(tmp_path / "cases.toml")
    assert "the broken one" in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_file_of_the_wrong_size_is_refused(tmp_path):
    (tmp_path / "x.py").write_text("x = 1\n" * 10)
    toml = '[[case]]\nname = "tiny"\nfile = "x.py"\nquery = "why?"\n' + _GOOD_PROBLEM
    (tmp_path / "cases.toml").write_text(toml)
    with pytest.raises(ValueError, match="tiny.*10 lines"):
        scoring.load_cases(tmp_path / "cases.toml")


# --- own words, summary, lines --------------------------------------------------------------

SOURCE = """\
def export_csv(invoices):
    out = "id,total\\n"
    for inv in invoices:
        out += f"{inv.id},{inv.total}\\n"
    return out
"""


def test_own_words_drop_fenced_code_and_copied_lines_but_keep_prose_with_inline_code():
    report = "\n".join(
        [
            "## Findings",
            "`export_csv` builds its output with `out +=` in a loop, which copies the string each time.",
            "```python",
            "slow_but_new_code = compute_everything()",
            "```",
            "~~~",
            "another_fence_line = 1",
            "~~~",
            "- `for inv in invoices:`",
            '> out += f"{inv.id},{inv.total}\\n"',
            "Line 4: " + 'out += f"{inv.id},{inv.total}\\n"',
            "Use a list and join.",
        ]
    )
    words = scoring.own_words(report, SOURCE)
    assert "`export_csv` builds its output with `out +=` in a loop" in words
    assert "Use a list and join." in words
    assert "## Findings" in words
    for gone in ("slow_but_new_code", "another_fence_line", "for inv in invoices", "inv.total"):
        assert gone not in words


def test_an_unclosed_fence_drops_the_rest():
    assert scoring.own_words("before\n```\ncode\nmore code", SOURCE) == "before"


def test_short_lines_are_not_taken_for_copies():
    assert scoring.own_words("return out\nout", SOURCE) == "return out\nout"


def test_summary_section_stops_at_the_next_heading():
    report = "# R\n\n## Key Findings Summary\n\n- one\n\n### sub stays\n\n## Stages\n\n- two\n"
    assert scoring.summary_section(report) == "- one\n\n### sub stays"
    assert scoring.summary_section("# R\n\n## Stages\n") == ""


PROBLEMS = [
    {"id": "a", "lines": [10, 20], "patterns": ["alpha"]},
    {"id": "b", "lines": [15, 30], "patterns": ["beta"]},
    {"id": "c", "lines": [40, 40], "patterns": ["gamma"]},
]


def test_named_by_line_claims_each_problem_once():
    assert scoring.named_by_line([(12, 12)], PROBLEMS) == {"a"}
    assert scoring.named_by_line([(16, 16), (17, 17)], PROBLEMS) == {"a", "b"}
    assert scoring.named_by_line([(16, 16), (17, 17), (18, 18)], PROBLEMS) == {"a", "b"}
    assert scoring.named_by_line([(35, 45)], PROBLEMS) == {"c"}
    assert scoring.named_by_line([(41, 39)], PROBLEMS) == {"c"}


def test_a_finding_outside_every_range_names_nothing():
    assert scoring.named_by_line([(1, 9), (31, 39), (41, 100)], PROBLEMS) == set()
    assert scoring.named_by_line([], PROBLEMS) == set()


def test_named_is_case_insensitive_and_spans_lines():
    assert scoring.named("ALPHA and\nGamma", PROBLEMS) == {"a", "c"}


# --- three cases, a good review and a plausible wrong one -----------------------------------

REVIEWS = {
    "billing": (
        """The invoice run is slow for two reasons. First, `build_invoices` issues a separate
SELECT against `usage` for each customer, an N+1 pattern: 40k customers means 40k round trips.
Fetch the month's usage in one query grouped by customer_id instead. Second, `export_csv`
grows the output with `out +=`; that string concatenation is quadratic in the number of
invoices, so collect the rows in a list and join them at the end.""",
        """`build_invoices` walks the active customers and computes net and VAT for each one using
Decimal, rounding half up to the cent. `export_csv` writes one row per invoice and quotes
fields containing commas. The currency check against SUPPORTED_CURRENCIES is a good guard.
Consider adding more tests for the VAT rates and logging the totals per currency.""",
        {"n-plus-one", "string-concat"},
    ),
    "chat server": (
        """The freeze comes from `broadcast`: it holds `self._rooms_lock`, a threading.Lock, across
`await self._send(...)`. While one broadcast is suspended in `drain`, any other coroutine that
calls `room()` blocks the only thread and the event loop deadlocks; use an asyncio.Lock or
no lock at all. It also sends to the members one by one, so a slow client stalls everyone.
Memory climbs because `room.history` grows without limit: make it a deque with maxlen=100.""",
        """`broadcast` takes the rooms lock, loops over the members and calls `_send` for each one,
removing members whose connection failed. `handle` performs the handshake, replays the last
twenty messages and then relays each line. The code is readable and uses dataclasses well;
consider adding authentication and rate limiting per client.""",
        {"lock-across-await", "sequential-broadcast", "history-growth"},
    ),
    "ops chat bot": (
        """Three things can freeze the bot. `cmd_status` runs a synchronous sqlite3 query inside an
async handler, which blocks the event loop; move it to `asyncio.to_thread` or use aiosqlite.
`cmd_whois` awaits each profile lookup sequentially; gather them concurrently. And
`cmd_deploy` awaits `proc.communicate()` with no timeout, so a hung deploy.sh never reports
back: wrap it in `asyncio.wait_for` and kill the process on timeout.""",
        """`on_message` dispatches `!status`, `!whois` and `!deploy` to the matching `cmd_` method
and reports failures to the channel. `cmd_status` reads the service table and formats one
line per service. `cmd_whois` builds a line per user with name, team and timezone.
`cmd_deploy` checks the environment and the deployers group before running deploy.sh.""",
        {"sqlite-in-async", "sequential-profiles", "deploy-no-timeout"},
    ),
}


@pytest.mark.parametrize("name", sorted(REVIEWS))
def test_a_good_review_names_the_problems(name):
    case = BY_NAME[name]
    good, _, expected = REVIEWS[name]
    assert expected == set(_ids(case))
    assert scoring.score(good, case)["named"] == sorted(expected)


@pytest.mark.parametrize("name", sorted(REVIEWS))
def test_a_review_about_the_right_functions_but_not_the_problems_names_none(name):
    case = BY_NAME[name]
    _, wrong, _ = REVIEWS[name]
    assert scoring.score(wrong, case)["named"] == []


def test_score_counts_the_summary_separately():
    case = BY_NAME["billing"]
    report = (
        "# Mirador Analysis Report\n\n## Key Findings Summary\n\n"
        "- `export_csv` uses string concatenation with `+=`, which is quadratic.\n\n"
        "## Stages\n\n### 1. Code analyst\n\n"
        "- `build_invoices` runs one query per customer (N+1).\n"
    )
    result = scoring.score(report, case, findings=[(200, 201)])
    assert result["named"] == ["n-plus-one", "string-concat"]
    assert result["in_summary"] == ["string-concat"]
    assert result["by_line"] == []
    assert scoring.score("nothing here", case, findings=[(50, 50)])["named"] == ["n-plus-one"]


def test_cases_md_is_generated_from_the_toml():
    """eval/CASES.md is regenerated with `python eval/scoring.py > eval/CASES.md`."""
    assert (ROOT / "eval" / "CASES.md").read_text(encoding="utf-8") == scoring.cases_markdown(CASES)
    assert all(c.get("fine") for c in CASES), "say what in each file is fine on purpose"


# For the other cases: a description of the right functions that names none of their problems.
WRONG = {
    "rate limiter": "`acquire` checks whether the role is exempt, refills the bucket and waits until enough tokens are available, then deducts the cost. `_bucket` creates a bucket the first time an API key is seen, and `remaining` reports the tokens left. The lock keeps refills consistent.",
    "ttl cache": "`get` looks up the entry, checks its expiry and updates the hit and miss counters; `set` stores the value with its expiry time; `_touch` moves the key to the end of the recent list. The lock is released in a finally block, which is correct.",
    "metrics exporter": "`record` updates the histogram for the route, appends the outcome and keeps slow requests in a list for the dashboard. `flush` connects to Graphite and sends the snapshot; the socket is closed in finally.",
    "backup runner": "`dump` pipes pg_dump into gzip and waits for pg_dump to finish; `archive` adds each dump to a tar file and refuses suspiciously small dumps; `upload` sends the archive to S3 with its checksum.",
    "web scraper": "`crawl` loads robots.txt and the sitemap, then takes batches of twenty URLs from the frontier, skips visited or disallowed ones and fetches each page with aiohttp, adding its links to the frontier.",
    "job queue": "`_claim` selects the oldest queued job and marks it running; `run_one` claims a job under the claim lock, notifies the callback URL and runs the handler, recording the outcome in `recent`.",
    "etl pipeline": "`normalise` applies each SKU rule with a regular expression and converts quantity, price and date; `write_batch` writes one JSON line per row and rejects rows with a non-positive quantity.",
    "file indexer": "`index_file` hashes the file in a thread, skips duplicates, reads the text and adds the file to the list of files for each word; `build` runs four workers over a queue.",
    "shipping api client": "`_request` retries on 429 and 5xx with exponential backoff; `download_label` streams the PDF to disk in 64 KiB chunks and checks the content type; `tracking` sorts the events by time.",
    "inventory allocation": "`allocate` reads the order lines, looks up each product's pack size, ranks the warehouses by region and priority, and takes stock from them in order until the line is filled.",
    "auth sessions": "`login` exchanges the code with the identity provider and stores a new session under the lock; `get` returns the session if it has not expired and refreshes `last_seen`.",
    "digest mailer": "`send_all` logs in to the SMTP server, renders the top posts and builds a message for each subscriber, counts refused recipients and quits at the end.",
    "game leaderboard": "`top` returns the cached top 50 under a lock and reloads it from the database when it is older than `cache_s`; `_load_top` reads the ratings and each player's name and country.",
}


def test_every_case_has_a_wrong_review():
    assert set(WRONG) | set(REVIEWS) == set(BY_NAME)


@pytest.mark.parametrize("name", sorted(WRONG))
def test_describing_the_code_without_its_problems_names_none(name):
    case = BY_NAME[name]
    assert scoring.score(WRONG[name], case)["named"] == []


def test_a_stage_finding_on_a_problems_line_counts_only_when_its_words_name_the_problem():
    """The held-out log shipper's resources analyst wrote about the character set of the line
    whose `payload +=` is a known problem; that is an extra finding to label, not a hit."""
    case = HELDOUT_BY_NAME["log shipper"]
    problem = next(p for p in case["problem"] if p["id"] == "quadratic-frame")
    line = problem["lines"][0]
    charset = {
        "line": line,
        "rule": "",
        "message": "The encoding is not specified, which can lead to issues",
        "fix": "",
    }
    quadratic = {**charset, "message": "`payload +=` on bytes copies the whole buffer each time: quadratic"}
    check = {**charset, "rule": "MIR005"}
    assert not scoring.on_problem(charset, case)
    assert scoring.on_problem(quadratic, case) and scoring.on_problem(check, case)
    assert not scoring.on_problem({**quadratic, "line": 1}, case)


@pytest.mark.parametrize("path", sorted((ROOT / "eval").glob("*_cases.toml")), ids=lambda p: p.stem)
def test_every_case_file_loads_and_its_problems_lie_inside_their_files(path):
    """Each held-out set is validated as the eval reads it: a malformed case, a missing file or
    a problem whose lines are past the file's end fails here, not halfway through a 40-minute run."""
    cases = scoring.load_cases(path)
    for case in cases:
        n_lines = len(case["source"].splitlines())
        for problem in case["problem"]:
            first, last = problem["lines"]
            assert 1 <= first <= last <= n_lines, (case["name"], problem["id"])
