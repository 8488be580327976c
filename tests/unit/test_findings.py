"""Findings: the grammar's shape, parsing, grounding in the document, merging and ranking.
That llama.cpp compiles the grammars is tested in tests/integration/test_grammars.py."""

from __future__ import annotations

import numpy as np

from graph.findings import (
    NOTES_GRAMMAR,
    PLACES,
    Finding,
    checked,
    cite,
    cite_notes,
    denied,
    fix_targets,
    fixes_grammar,
    grammar,
    ground,
    headline,
    locate,
    merge,
    parse,
    rank,
    relocate,
    render,
    render_places,
    scored,
    sentence_faults,
    summarise,
    summary_grammar,
    unchanged_fixes,
    unfixed,
)

SOURCE = """import requests


class Client:
    def fetch(self, urls):
        out = []
        for url in urls:
            out.append(requests.get(url).json())
        return out
"""


def finding(line: int, kind: str = "cost", by: str = "cost", message: str = "slow") -> Finding:
    return Finding(line=line, end_line=line, function="", code="x", kind=kind, rule="", message=message,
                   fix="", found_by=[by], disputed_by=[])  # fmt: skip


def test_the_grammar_asks_one_to_three_findings_quoting_the_document_then_optional_disputes():
    text = grammar(2, SOURCE)
    assert text.splitlines()[0] == "root ::= finding finding? finding? dispute{0,2}"
    assert grammar(0, SOURCE).splitlines()[0] == "root ::= finding finding? finding?"
    assert r'finding ::= "- `" code "`: " problem " Fix: " fix "\n"' in text.splitlines()
    assert 'number ::= "1" | "2"' in text.splitlines()
    code = next(line for line in text.splitlines() if line.startswith("code ::= "))
    # Only the document's own lines (stripped) can be quoted; blanks and short lines cannot.
    assert '"out.append(requests.get(url).json())"' in code and '"for url in urls:"' in code
    assert '""' not in code and '"x = 1"' not in grammar(0, "x = 1\nlong_enough = 2\n")


def test_parse_reads_disputes_and_findings_and_ignores_other_lines():
    text = (
        "- Check 2 is not a problem here: the list has three items.\n"
        "Some prose the model added.\n"
        "- `out.append(requests.get(url).json())`: one request per URL, no timeout. Fix: pass timeout=10.\n"
        "- Line 7 `for url in urls:`: sequential. Fix: gather.\n"
    )
    disputes, found = parse(text)
    assert disputes == [{"check": 2, "why": "the list has three items."}]
    assert found == [
        {"line": 0, "code": "out.append(requests.get(url).json())", "message": "one request per URL, no timeout.",
         "fix": "pass timeout=10."},
        {"line": 7, "code": "for url in urls:", "message": "sequential.", "fix": "gather."},
    ]  # fmt: skip


def test_locate_finds_the_code_nearest_the_cited_line_or_nothing():
    lines = SOURCE.splitlines()
    assert locate("requests.get(url).json()", lines, 8) == 8
    assert locate("requests.get(url).json()", lines, 2) == 8  # a wrong number is corrected
    assert locate("requests.get(url).json()", lines, 0) == 8  # no number: the code says where
    assert locate("for url in urls:", lines, 7) == 7
    assert locate("time.sleep(1)", lines, 8) is None  # the file has no such code
    assert locate("x", lines, 1) is None  # too short to mean anything


def test_ground_keeps_findings_the_document_holds_and_sets_the_rest_aside():
    found = [
        {"line": 8, "code": "requests.get(url)", "message": "no timeout", "fix": "timeout=10"},
        {"line": 3, "code": "self.lock.acquire()", "message": "lock never released", "fix": ""},
    ]
    kept, dropped = ground(found, SOURCE, "resources", "resources")
    assert [(f["line"], f["function"], f["code"], f["kind"]) for f in kept] == [
        (8, "Client.fetch", "out.append(requests.get(url).json())", "resources")
    ]
    assert dropped == [{**found[1], "stage": "resources", "reason": "the document has no such code"}]


def test_merge_joins_findings_on_one_line_and_kind_and_ranks_confirmed_first():
    merged = merge([[finding(8, by="checks")], [finding(8, by="cost"), finding(20, by="cost")],
                    [finding(9, kind="resources", by="resources", message="no timeout")]])  # fmt: skip
    assert [(f["line"], f["found_by"]) for f in merged] == [(8, ["checks", "cost"]), (20, ["cost"]),
                                                             (9, ["resources"])]  # fmt: skip
    merged[0]["disputed_by"].append("x: not here")  # shown, not ranked on
    assert [f["line"] for f in rank(merged)] == [8, 9, 20]


def test_scored_findings_rank_by_relevance_to_the_question_among_the_confirmed():
    """The demo's case: a check and a stage agree on the history list (memory); the checks
    alone find the blocking call the question ("why is it slow") is about. Relevance, not
    agreement, puts the blocking call first; one stage's finding stays after the confirmed."""
    calls = []

    def embed(texts):  # a toy embedding: "slow"/"blocks" near the question, "memory" not
        calls.append(list(texts))
        return np.array([[1.0, 0.0] if "slow" in t or "blocks" in t else [0.0, 1.0] for t in texts])

    grows = finding(59, kind="resources", by="checks", message="the history list grows: memory")
    blocks = finding(70, kind="concurrency", by="checks", message="the call blocks the event loop")
    lead = finding(64, by="cost", message="blocks on every token")
    merged = merge([[grows, blocks], [finding(59, kind="resources", by="cost", message="memory"), lead]])
    assert [f["line"] for f in rank(merged)] == [59, 70, 64]  # unscored: confirmed, then by line
    ranked = rank(scored(merged, "why is it slow", embed))
    assert [(f["line"], f["relevance"]) for f in ranked] == [(70, 1.0), (59, 0.0), (64, 1.0)]
    assert scored(ranked, "why is it slow", embed) == ranked and len(calls) == 1  # scored once
    assert scored(merged, "  ", embed) == merged and len(calls) == 1  # no question: nothing to score by


def test_a_relevance_tie_goes_to_the_function_with_more_confirmed_findings():
    """The demo's case: the same blocking call (two checks' rules, the same words, so the
    same relevance) in warm_up, run once, and in process, run per stage, where the growing
    history is too. The per-stage call comes first, though its line is later."""

    def at(line, function, rule, message):
        return Finding(**{**finding(line, by="checks", message=message), "function": function, "rule": rule})

    warm = [at(42, "warm_up", "ASYNC210", "blocks"), at(42, "warm_up", "S113", "no timeout")]
    hot = [at(49, "process", "ASYNC210", "blocks"), at(49, "process", "S113", "no timeout"),
           at(59, "process", "MIR008", "grows")]  # fmt: skip
    ranked = rank(merge([warm, hot]))
    assert [(f["line"], f["rule"]) for f in ranked][:2] == [(49, "ASYNC210"), (49, "S113")]
    assert [f["line"] for f in rank(merge([warm]))] == [42, 42]  # no tie to break: by line


def test_merge_keeps_the_higher_relevance_of_two_finders():
    a = {**finding(8, by="checks"), "relevance": 0.2}
    b = {**finding(8, by="cost"), "relevance": 0.5}
    assert merge([[a], [b]])[0]["relevance"] == 0.5 and merge([[b], [a]])[0]["relevance"] == 0.5


def test_render_names_the_line_function_code_fix_and_finders():
    f = Finding(line=8, end_line=8, function="Client.fetch", code="requests.get(url)", kind="resources",
                rule="S113", message="no timeout", fix="pass timeout=10", found_by=["checks", "resources"],
                disputed_by=["cost: fine"])  # fmt: skip
    assert render([f]) == ("1. **line 8 in `Client.fetch`** S113 — `requests.get(url)`: no timeout "
                           "Fix: pass timeout=10 *[checks, resources]* *(disputed: cost: fine)*")  # fmt: skip


def test_lines_the_checks_already_flagged_for_a_stage_cannot_be_quoted_again():
    code = next(
        line for line in grammar(1, SOURCE, frozenset({8})).splitlines() if line.startswith("code ::=")
    )
    assert "requests.get(url)" not in code and '"for url in urls:"' in code


def summary_findings() -> list[Finding]:
    """Two findings at one place (the first confirmed: two finders), one with no function, then
    ten more places than are shown."""
    agreed = _finding(42, "requests.post(url)", "a blocking HTTP call", "Orchestrator.warm_up")
    agreed["found_by"] = ["cost", "resources"]
    return [
        agreed,
        _finding(42, "requests.post(url)", "no timeout", "Orchestrator.warm_up"),
        _finding(7, "TIMEOUT = None", "no timeout"),
    ] + [_finding(n, "x = 1", "later", "f") for n in range(60, 70)]


def test_the_summary_grammar_opens_with_the_biggest_problem_at_a_top_findings_place():
    top = summary_findings()
    text = summary_grammar(top)
    assert 'answer ::= "In short, the biggest problem is " first ": "' in text
    # the answer itself at one of the top two places; the "Also," sentence at any of the six
    assert 'first ::= "in `Orchestrator.warm_up` (line 42)" | "at line 7"\n' in text
    assert 'also ::= "Also, " where ": "' in text
    where = next(line for line in text.splitlines() if line.startswith("where ::= "))
    # each place once, the top six places only: a line-42 finding twice is one place
    assert where.split(" | ")[:3] == ['where ::= "in `Orchestrator.warm_up` (line 42)"', '"at line 7"',
                                      '"in `f` (line 60)"']  # fmt: skip
    assert len(where.split(" | ")) == PLACES and "line 64" not in where
    assert "[#" not in text  # Mirador cites the findings, not the model


def test_the_notes_grammar_is_prose_opening_in_short():
    """A chain with no findings answers in sentences, not bullets: asked for bullets, the
    1.5B re-typed the stage before it."""
    assert NOTES_GRAMMAR.startswith("root ::= answer also? also?")
    assert '"In short, "' in NOTES_GRAMMAR
    # no markdown, one sentence a line
    assert all(r"[^\n.*`#]" in rule for rule in NOTES_GRAMMAR.splitlines()[1:])


def test_cite_notes_names_the_stages_each_sentence_draws_on():
    notes = {
        "context": "The material is an essay about remote work and the question asks for its main points.",
        "document_analyst": "- The essay argues remote work raises output but weakens mentoring of juniors.",
        "critic": "- The analyst missed that the essay's evidence is one company's survey.",
    }
    answer = (
        "In short, the essay argues that remote work raises output while it weakens the mentoring of juniors.\n"
        "But its evidence is a single company's survey, which the analyst missed.\n"
        "Also, nothing here matches anything."
    )
    assert cite_notes(answer, notes).splitlines() == [
        "In short, the essay argues that remote work raises output while it weakens the mentoring of juniors."
        " [`document_analyst`]",
        "But its evidence is a single company's survey, which the analyst missed. [`critic`]",
        "Also, nothing here matches anything.",
    ]
    assert cite_notes("", notes) == ""


def _finding(line: int, code: str, message: str, function: str = "") -> Finding:
    return Finding(line=line, end_line=line, function=function, code=code, kind="cost", rule="", message=message,
                   fix="", found_by=["cost"], disputed_by=[])  # fmt: skip


def _check(line: int, code: str, rule: str, function: str = "StreamingOrchestrator.process") -> Finding:
    return Finding(line=line, end_line=line, function=function, code=code, kind="cost", rule=rule,
                   message="m", fix="", found_by=["checks"], disputed_by=[])  # fmt: skip


def test_the_synthesis_sees_each_place_with_its_code_and_its_checks_titles_once():
    """Shown the code alone, the 1.5B guessed what was wrong at line 42; a check's rule title
    names the problem; a stage's finding has none to show."""
    findings = [_check(42, "requests.post(url)", "S113", "warm_up"), _check(42, "requests.post(url)", "ASYNC210", "warm_up"),
                _check(42, "requests.post(url)", "S113", "warm_up"), _finding(64, "context = context + x", "re-sent")]  # fmt: skip
    assert render_places(findings).splitlines() == [
        "1. in `warm_up` (line 42): `requests.post(url)` (HTTP request with no timeout; blocking call inside async def)",
        "2. at line 64: `context = context + x`",
    ]


def test_a_sentence_naming_a_checks_title_at_another_line_moves_to_that_checks_line():
    """The demo's "(line 64): collection that only grows" is MIR008's title, and MIR008 is at
    line 59; a title at its own line stays."""
    findings = [
        _check(59, "self.history.append(token)", "MIR008"),
        _finding(64, "context = context + x", "memory usage issues"),
    ]
    said = "Also, in `StreamingOrchestrator.process` (line 64): collection that only grows; this can lead to memory usage issues."
    assert relocate(said, findings) == said.replace("(line 64)", "(line 59)")
    assert relocate(said.replace("(line 64)", "(line 59)"), findings) == said.replace(
        "(line 64)", "(line 59)"
    )


def test_cite_numbers_each_sentence_by_the_finding_it_talks_about():
    """The demo's model-written numbers were [#4] for the blocking call (a timeout finding)
    and [#6] for the re-sent context (a history finding); cite() reads the words."""
    findings = [
        _finding(
            42, "requests.post(url)", "a blocking HTTP call inside async def stops the whole event loop"
        ),
        _finding(42, "requests.post(url)", "an HTTP request with no timeout can hang forever; pass timeout="),
        _finding(59, "self.history.append(token)", "`self.history` grows for the object's whole life"),
        _finding(64, 'context = context + "\\n" + output', "re-sent the whole context on every step"),
    ]
    summary = (
        "In short, the biggest problem is the blocking HTTP call in warm_up, which freezes the event loop.\n"
        "- The history list grows with every token and is never trimmed.\n"
        "- Each stage re-sends the whole context, so prompts grow with every step.\n"
        "- Nothing here matches."
    )
    assert cite(summary, findings).splitlines() == [
        "In short, the biggest problem is the blocking HTTP call in warm_up, which freezes the event loop. [#1]",
        "- The history list grows with every token and is never trimmed. [#3]",
        "- Each stage re-sends the whole context, so prompts grow with every step. [#4]",
        "- Nothing here matches.",
    ]
    assert cite("- see line 64 for that", findings) == "- see line 64 for that [#4]"
    # the place the answer names wins over words pasted from another finding
    pasted = (
        "In short, the biggest problem is in `process` (line 59): the whole context re-sent on every step."
    )
    assert cite(pasted, findings) == pasted + " [#3]"


def test_a_summary_sentence_that_pastes_or_misplaces_a_finding_is_named():
    """The demo's summary (session 6): its first sentence pasted S113's message after the place;
    its second put the re-sent context (an analyst's finding, line 64) at line 59, the history."""
    findings = [
        _finding(
            42, "requests.post(url)", "a blocking HTTP call inside async def stops the whole event loop"
        ),
        _finding(42, "requests.post(url)", "an HTTP request with no timeout can hang forever; pass timeout="),
        _finding(
            59,
            "self.history.append(token)",
            "`self.history` is added to in process() and nothing in the "
            "class ever removes from it: it grows for the object's whole life",
        ),  # fmt: skip
        _finding(
            64, 'context = context + "\\n" + output', "This line re-sent the whole context on every step"
        ),
    ]
    pasted = "In short, the biggest problem is in `StreamingOrchestrator.warm_up` (line 42): an HTTP request with no timeout can hang forever; pass timeout=."
    misplaced = "Also, in `StreamingOrchestrator.process` (line 59): the whole context grows with every stage and is re-sent in full."
    assert sentence_faults(pasted + "\n" + misplaced, findings) == [
        (0, 42, "pasted finding #2's message instead of saying why it matters")
    ]
    # the words say which line the sentence is about: the re-sent context is line 64's
    assert relocate(pasted + "\n" + misplaced, findings) == pasted + "\n" + misplaced.replace(
        "in `StreamingOrchestrator.process` (line 59)", "at line 64"
    )
    assert relocate(misplaced.replace("Also,", "In short, the biggest problem is"), findings).startswith(
        "In short, the biggest problem is at line 64: the whole context grows"
    )
    # shown only the places and code, it said of line 49 what no finding says nor the line does
    unfounded = "Also, in `StreamingOrchestrator.process` (line 49): it uses the same prompt for all stages, which can lead to poor results if the models have different capabilities."
    assert sentence_faults(unfounded, findings) == [(0, 49, "said nothing wrong with line 49")]
    own = (
        "In short, the biggest problem is in `StreamingOrchestrator.warm_up` (line 42): each stage's synchronous "
        "post freezes the loop, so no token of any stage streams while a model loads.\n"
        "Also, in `StreamingOrchestrator.process` (line 59): the tokens kept for every run are never emptied, "
        "so a long-lived orchestrator leaks memory.\n"
        "Also, in `StreamingOrchestrator.process` (line 64): each stage waits longer than the last."
    )
    assert sentence_faults(own, findings) == []
    # held-out 6: the user's symptom handed back at a line, and the answer said twice
    query = (
        "The DBA also complains that the export leaves dozens of idle connections on the reporting database."
    )
    symptom = "In short, the biggest problem is at line 64: it leaves dozens of idle connections on the reporting database."
    again = own.splitlines()[1] + "\n" + own.splitlines()[1].replace("leaks memory", "leaks memory too")
    # the demo's answer was line 63's comment, word for word: the author's remark, not an analysis
    source = "        # The whole context grows with every stage and is re-sent in full.\n        context = context + output\n"
    assert sentence_faults(misplaced, findings, "", source) == [
        (0, 59, "pasted the comment on line 1 instead of saying in its own words what is wrong")
    ]
    assert sentence_faults(own, findings, "", source) == []
    assert sentence_faults(f"{symptom}\n{again}", findings, query) == [
        (0, 64, "handed back the question's words instead of saying what is wrong at line 64"),
        (2, 59, "said again what a sentence before it says"),
    ]
    assert sentence_faults("In short, the biggest problem is the blocking call.", findings) == []  # no place
    # at a line only checks found problems on, the sentence must claim one of theirs (session 10's demo)
    checks = [
        {**f, "rule": rule} for f, rule in zip(findings[:3], ["ASYNC210", "S113", "MIR008"], strict=True)
    ]
    other = "Also, in `StreamingOrchestrator.warm_up` (line 42): the requests are made once per model, which can be inefficient."
    assert sentence_faults(other, checks) == [
        (0, 42, "said of line 42 what none of its findings says (ASYNC210, S113)")
    ]
    assert sentence_faults("\n".join(own.splitlines()[:2]), checks) == []


def test_the_summary_is_the_answer_then_the_top_findings_it_did_not_cite():
    """The 1.5B's own bullets restated its answer, pasted a check's message and added claims no
    finding made ("which could lead to a race condition"); the bullets are Mirador's now."""
    findings = [
        _finding(
            46,
            "with self._rooms_lock:",
            "a threading lock is held across an await: every other task "
            "waits on it while this one is suspended; use asyncio.Lock",
            "ChatServer.broadcast",
        ),  # fmt: skip
        _finding(
            49,
            "await self._send(client, message)",
            "each iteration awaits self._send() for one item "
            "and nothing is carried between iterations: the calls run one after another",
        ),  # fmt: skip
        _finding(
            45,
            "room.history.append(message)",
            "the room history gains every message and nothing trims "
            "it, so memory climbs for as long as the room lives, on every server that runs this",
        ),  # fmt: skip
        _finding(80, "x = 1", "a fourth"),
        _finding(90, "y = 2", "a fifth, never listed"),
    ]
    answer = "In short, the biggest problem is the threading lock held across an await in broadcast.\n"
    assert summarise(answer, findings).splitlines() == [
        "In short, the biggest problem is the threading lock held across an await in broadcast. [#1]",
        "- Line 49: each iteration awaits self._send() for one item and nothing is carried between iterations [#2]",
        "- Line 45: the room history gains every message and nothing trims it, so memory climbs for as long as "
        "the room lives, on every server that runs this [#3]",
        "- Line 80: a fourth [#4]",
    ]
    assert (
        summarise("", findings).splitlines()[0].startswith("- Line 46 in `ChatServer.broadcast`: a threading")
    )
    assert summarise("", []) == ""
    assert headline("x" * 30 + " word " * 40).endswith("…")


def test_findings_saying_the_same_on_several_lines_share_one_summary_line():
    """The demo's summary listed S113 on line 42 and on line 49 as two bullets."""
    findings = [
        _finding(42, "requests.post(a)", "a blocking HTTP call inside async def stops the event loop"),
        _finding(42, "requests.post(a)", "an HTTP request with no timeout can hang forever; pass timeout="),
        _finding(49, "requests.post(b)", "a blocking HTTP call inside async def stops the event loop"),
        _finding(49, "requests.post(b)", "an HTTP request with no timeout can hang forever; pass timeout="),
        _finding(59, "self.history.append(t)", "`self.history` grows for the object's whole life"),
    ]
    assert summarise("In short, the biggest problem is the blocking call in warm_up.", findings).splitlines()[
        1:
    ] == [
        "- Lines 42, 49: an HTTP request with no timeout can hang forever [#2, #4]",
        "- Line 49: a blocking HTTP call inside async def stops the event loop [#3]",
        "- Line 59: `self.history` grows for the object's whole life [#5]",
    ]


def test_the_fixes_grammar_asks_for_code_under_an_existing_finding():
    """Left free, the 1.5B master coder pasted the finding it was asked to fix, with no code."""
    findings = [_finding(46, "with lock:", "a lock"), _finding(49, "await send(c)", "one after another")]
    text = fixes_grammar(findings)
    assert 'ref ::= "#1, line 46\\nBefore: `with lock:`\\nAfter:" | "#2, line 49\\nBefore:' in text
    assert text.startswith("root ::= fix fix?\n") and "```python" in text


def test_a_fix_that_repeats_the_line_unchanged_is_dropped():
    """Asked for a code block alone, the 1.5B copied the line it was to fix."""
    text = (
        "#1, line 46\nBefore: `with self._rooms_lock:`\nAfter:\n```python\nwith self._rooms_lock:\n```\n"
        "Why: this lock is held across an await\n\n"
        "#2, line 49\nBefore: `await self._send(client, message)`\nAfter:\n```python\n"
        "await asyncio.gather(*(self._send(c, message) for c in clients))\n```\nWhy: sends side by side\n"
    )
    kept, dropped = unchanged_fixes(text)
    assert dropped == [1]
    assert kept.startswith("#2, line 49") and "gather" in kept and "#1" not in kept
    assert unchanged_fixes(kept) == (kept, [])
    assert (
        unchanged_fixes(kept + "\n\n#3, line 80\nBefore: `x`\nAfter:\n```python\nwith smtp:\n    try")[0]
        == kept
    )
    new_lock = text.replace("```python\nwith self._rooms_lock:", "```python\nasync with asyncio.Lock():")
    assert unchanged_fixes(new_lock)[1] == [1]
    for bad in (
        "async with asyncio.gather(*[self.profile(u) for u in ids]):",  # not a context manager
        "async with conn.execute('SELECT service, state FROM status') as",
    ):  # cut at its cap
        assert unchanged_fixes(text.replace("```python\nwith self._rooms_lock:", f"```python\n{bad}"))[1] == [
            1
        ]
    awaited = text.replace(
        "```python\nwith self._rooms_lock:", "```python\nr = await asyncio.wait_for(requests.post(u), 5)"
    )
    assert unchanged_fixes(awaited)[1] == [1]
    header = text.replace("```python\nwith self._rooms_lock:", "```python\nasync with self._rooms_lock:")
    assert unchanged_fixes(header)[1] == []  # a block header alone is a fix
    # The demo's second fix repeated its first, Before line and all, and cleaning cut that line
    # as a repeat: without it the fix is still judged (here: requests awaited, and cut off).
    lost = (
        "#2, line 42\nAfter:\n```python\nasync def warm_up(self):\n    for stage in self.stages:\n"
        '        response = await requests.post(f"{self.base_url}/api/generate", json={"model": stage.}\n'
        "```\nWhy: This change ensures that the HTTP request is asynchronous\n"
    )
    assert unchanged_fixes(lost) == ("", [2])


def test_an_empty_fix_is_not_part_of_the_message():
    """A problem cut at its cap left 'object,  Fix:' in the message, which hid the cut."""
    _, found = parse("- `x: str`: a string, which is immutable, so it needs a new object,  Fix:\n")
    assert found[0]["message"].endswith("object,") and found[0]["fix"] == ""


def test_a_fix_after_which_the_checks_still_find_the_problem_is_set_aside():
    """The held-out log shipper's master coder 'fixed' a lock held across a send by wrapping
    the send in the same lock again; the checks, run on the fixed code, still flag it."""
    source = (
        "import threading\nimport requests\n\n\nclass Client:\n    def __init__(self):\n"
        "        self.lock = threading.Lock()\n\n    def fetch(self, url):\n"
        "        with self.lock:\n            return requests.get(url)\n"
    )
    top = [f for f in checked(source, "client.py") if f["rule"] == "S113"]
    assert [f["line"] for f in top] == [11]
    fix = "#1, line 11\nBefore: `return requests.get(url)`\nAfter:\n```python\n{}\n```\nWhy: {}.\n\n"
    good = fix.format("return requests.get(url, timeout=10)", "a silent server no longer hangs the call")
    same = fix.format("with self.lock:\n    return requests.get(url)", "holding the lock keeps it safe")
    assert unfixed(good, top, source, "client.py") == (good.strip(), [])
    assert unfixed(same + good, top, source, "client.py") == (good.strip(), [(1, "S113")])
    header = fix.format("with self.lock:", "a header alone does not fit in place")  # not judged
    assert unfixed(header, top, source, "client.py")[1] == []
    stage_finding = [{**top[0], "rule": ""}]
    assert unfixed(same, stage_finding, source, "client.py")[1] == []  # no rule to re-run


def test_the_fixes_stage_gets_one_place_per_line_and_a_partial_fix_says_what_remains():
    """The demo's line 42 has a blocking call and no timeout: asked for a fix per finding, the
    1.5B spent two of its three fixes there. A fix that mends one of the two (a timeout) stays,
    and says the checks still find the other."""
    source = (
        "import requests\n\n\nasync def warm(url):\n    requests.post(url)\n\n\n"
        "async def fetch(url):\n    return requests.get(url)\n"
    )
    top = checked(source, "client.py")
    assert [(f["line"], f["rule"]) for f in top] == [
        (5, "ASYNC210"),
        (5, "S113"),
        (9, "ASYNC210"),
        (9, "S113"),
    ]
    assert [(numbers, f["line"]) for numbers, f in fix_targets(top)] == [([1, 2], 5), ([3, 4], 9)]
    assert 'ref ::= "#1 and #2, line 5\\nBefore: `requests.post(url)`\\nAfter:" | "#3 and #4, line 9' in (
        fixes_grammar(top)
    )
    fix = "#1 and #2, line 5\nBefore: `requests.post(url)`\nAfter:\n```python\n{}\n```\nWhy: {}.\n\n"
    timeout = fix.format("requests.post(url, timeout=10)", "a silent server no longer hangs it")
    kept, dropped = unfixed(timeout, top, source, "client.py")
    assert dropped == [] and kept.endswith("(The checks still find ASYNC210 here after this fix.)")
    same = fix.format("requests.post(url)  # fixed", "it is fixed")
    assert unfixed(same, top, source, "client.py") == ("", [(1, "ASYNC210")])
    both = fix.format("await client.post(url, timeout=10)", "the loop runs on while it waits")
    assert unfixed(both, top, source, "client.py") == (both.strip(), [])
    entered = fix.format("async with requests.post(url, timeout=10) as r:", "it no longer blocks")
    assert unchanged_fixes(entered)[1] == [1]  # requests has no async API


def test_a_finding_cut_off_after_a_whole_sentence_keeps_that_sentence():
    """The demo's cost analyst named line 64's re-sent context, then was cut at its token cap
    in a third sentence: the finding read as cut off, and the demo lost its one find beyond
    the checks."""
    text = (
        "- `context = context + output`: This line rebuilds the context string for every stage. "
        "It can use a lot of memory if the context is large. A ` Fix: join the parts once.\n"
        "- `self.history.append(token)`: This appends each token to a list that is\n"
    )
    first, second = parse(text)[1]
    assert first["message"] == (
        "This line rebuilds the context string for every stage. It can use a lot of memory if the context is large."
    )
    assert second["message"] == "This appends each token to a list that is"  # nothing whole to keep


def test_a_fix_cut_off_keeps_its_whole_sentences_and_its_opening_backtick():
    """The demo's cost analyst opened its fixes' code before "Fix:" ("A ` Fix: context = ""`
    before the loop") and was cut inside the last ("self.history = []` at the beginning of"):
    the report showed a stray backtick and a fix that stops mid-phrase."""
    text = (
        '- `context = context + output`: This rebuilds the string each time. A ` Fix: context = ""` before the loop.\n'
        "- `self.history.append(token)`: The list only grows. A ` Fix: self.history = []` at the beginning of\n"
        "- `requests.get(url)`: No timeout. Fix: pass timeout=10. Then retry the call in\n"
    )
    fixes = [f["fix"] for f in parse(text)[1]]
    assert fixes == ['`context = ""` before the loop.', "", "pass timeout=10."]


def test_a_fix_says_when_it_uses_a_name_its_class_lacks_or_drops_an_argument():
    """The demo's fixes passed `timeout=self.timeout`, which the class never sets, and the one
    for its streaming call dropped `stream=True`: both read as finished fixes that would fail."""
    source = (
        "import requests\n\n\nclass Client:\n    def __init__(self, url):\n        self.url = url\n\n"
        "    async def pull(self):\n        return requests.get(\n            self.url,\n            stream=True,\n        )\n"
    )
    top = checked(source, "client.py")
    assert [(f["line"], f["rule"]) for f in top][0] == (9, "ASYNC210")
    fix = "#1 and #2, line 9\nBefore: `return requests.get(`\nAfter:\n```python\n{}\n```\nWhy: it no longer blocks.\n\n"
    wrong = fix.format(
        "async with httpx.AsyncClient() as c:\n    return await c.get(self.url, timeout=self.timeout)"
    )
    kept, _ = unfixed(wrong, top, source, "client.py")
    assert kept.endswith(
        "(`self.timeout` is not set anywhere in `Client`.)\n(This fix drops `stream=True`, which the line passed.)"
    )
    cut = wrong[: wrong.index("\nWhy:")]  # the stage's token cap fell after the block: still a fix
    assert unfixed(cut, top, source, "client.py")[0].endswith("which the line passed.)")
    right = fix.format(
        "self.timeout = 10\nasync with httpx.AsyncClient() as c:\n"
        "    async with c.stream('GET', self.url, timeout=self.timeout) as r:\n        return r"
    )
    assert unfixed(right, top, source, "client.py") == (right.strip(), [])


def test_a_stage_finding_that_claims_what_a_check_found_on_its_line_merges_into_it():
    """The demo's cost analyst said of line 59 what MIR008 says ("inefficient if the history
    list grows very large"), in other words and under another kind; it was listed apart, as an
    unconfirmed finding, and the summary cited it rather than the check's."""
    check = {**finding(59, kind="resources", by="checks"), "rule": "MIR008",
             "message": "`self.history` is added to in process() and nothing in the class ever removes from it"}  # fmt: skip
    grows = finding(
        59, message="This appends each token to the history list, which is slow if the list grows very large."
    )
    assert [f["found_by"] for f in merge([[check], [grows]])] == [["checks", "cost"]]
    other = finding(59, message="This rebuilds the token object on every chunk, which is wasteful.")
    assert [f["found_by"] for f in merge([[check], [other]])] == [["checks"], ["cost"]]
    timeout = {**check, "rule": "S113", "message": "an HTTP request with no timeout can hang forever"}
    assert len(merge([[timeout], [grows]])) == 2  # the growth claim is not S113's


def test_a_fix_says_when_it_reads_a_name_its_function_does_not_bind_and_a_bare_header_is_cut():
    """The demo's fix for warm_up() posted `prompt`, a local of process(); and the stage's
    token cap fell after its third fix's "After:", which the report showed with no code."""
    source = (
        "import requests\n\n\nasync def warm(url):\n    requests.post(url)\n\n\n"
        "async def fetch(url, prompt):\n    return requests.post(url, json=prompt)\n"
    )
    top = checked(source, "client.py")
    fix = "#1 and #2, line 5\nBefore: `requests.post(url)`\nAfter:\n```python\n{}\n```\nWhy: it no longer blocks.\n\n"
    borrowed = fix.format(
        "async with httpx.AsyncClient() as c:\n    await c.post(url, json=prompt, timeout=10)"
    )
    assert unfixed(borrowed, top, source, "client.py")[0].endswith("(`prompt` is not defined in `warm`.)")
    own = fix.format(
        "async with httpx.AsyncClient() as c:\n    await c.post(url, json={'n': len(url)}, timeout=10)"
    )
    assert unfixed(own, top, source, "client.py") == (
        own.strip(),
        [],
    )  # httpx. is a new import, len a builtin
    bare = "#3 and #4, line 9\nBefore: `return requests.post(url, json=prompt)`\nAfter:"
    assert unchanged_fixes(own + bare) == (own.strip(), [])
    assert '"." [a-z0-9]' in fixes_grammar(top) and '"." [a-z0-9_]' not in fixes_grammar(top)


def test_a_fix_is_read_against_the_documents_own_line_numbers():
    """A document opening with blank lines: its tree must keep their lines, or the fix's
    function is looked up a few lines off and its borrowed name goes unsaid."""
    source = "\n\nimport requests\n\n\nasync def warm(url):\n    requests.post(url)\n"
    top = checked(source, "client.py")
    assert [(f["line"], f["rule"]) for f in top] == [(7, "ASYNC210"), (7, "S113")]
    fix = (
        "#1 and #2, line 7\nBefore: `requests.post(url)`\nAfter:\n```python\n"
        "async with httpx.AsyncClient() as c:\n    await c.post(url, json=prompt, timeout=10)\n```\nWhy: it no longer blocks.\n\n"
    )
    assert unfixed(fix, top, source, "client.py")[0].endswith("(`prompt` is not defined in `warm`.)")


ARCHITECT = """#### Structure
The current design is a straightforward implementation of a streaming orchestrator.

#### Concurrency Model
The concurrency model is based on asynchronous HTTP requests using `requests`. This approach allows for efficient handling of multiple concurrent requests. The use of `asyncio` ensures that the event loop does not block while waiting for responses from the models.

#### Change
Switch to `httpx.AsyncClient` so the event loop does not block while a model answers."""


def test_a_design_paragraph_denying_a_checks_finding_is_set_aside_and_said_so():
    """The demo's solution architect, verbatim: the paragraph that says the blocking calls
    do not block goes, with a note; its heading, the other paragraphs and advice stay."""
    blocking = [
        _check(42, "requests.post(url)", "ASYNC210", "warm_up"),
        _check(49, "response = requests.post(", "ASYNC210"),
    ]
    text, aside = denied(ARCHITECT, blocking)
    paragraphs = text.split("\n\n")
    assert paragraphs[0] == ARCHITECT.split("\n\n")[0] and paragraphs[2] == ARCHITECT.split("\n\n")[2]
    assert paragraphs[1] == ("#### Concurrency Model\n*(Mirador set this paragraph aside: it said the code is free of "
                             "what ASYNC210 found at line 42, 49: blocking call inside async def.)*")  # fmt: skip
    assert aside == [
        {"line": 42, "code": "requests.post(url)", "reason": "a paragraph denied the ASYNC210 finding there"}
    ]
    # no check found it, or a stage alone did: nothing to deny
    assert denied(ARCHITECT, []) == (ARCHITECT, [])
    alone = {**blocking[0], "found_by": ["concurrency"]}
    assert denied(ARCHITECT, [alone]) == (ARCHITECT, [])
    # another rule's problem is not denied by "does not block"
    assert denied(ARCHITECT, [_check(59, "self.history.append(token)", "MIR008")]) == (ARCHITECT, [])


def test_a_sentence_naming_its_lines_check_by_its_title_must_say_what_it_costs_the_user():
    """Shown the titles, the 1.5B names the problem in them: not a paste of the message, but
    Mirador's words; the sentence must also say what the problem does to the user. The demo's
    answer said two titles and "this can lead to performance issues"."""
    lock = {**_check(70, "async with self._lock:", "MIR001", "Limiter.allow"),
            "message": "a threading lock held across await blocks every other coroutine that wants it; use asyncio.Lock"}  # fmt: skip
    said = "In short, the biggest problem is in `Limiter.allow` (line 70): threading lock held across await."
    why = "named the problem at line 70 by its check's title without saying what it does to the user (what waits, hangs or grows)"
    assert sentence_faults(said, [lock]) == [(0, 70, why)]
    vague = said.replace("await.", "await; this can lead to performance issues.")
    assert sentence_faults(vague, [lock]) == [(0, 70, why)]
    costs = said.replace("await.", "await, so every other request waits while Redis answers.")
    assert sentence_faults(costs, [lock]) == []
    # held-out 8's answers: a cost said in other words than waiting
    left = [_check(85, "proc.wait(timeout=600)", "MIR027", "Runner._execute")]
    stays = "In short, the biggest problem is in `Runner._execute` (line 85): child process left running when its wait times out, so it stays active and consumes resources."
    assert sentence_faults(stays, left) == []
    assert (
        sentence_faults(
            stays.replace("it stays active and consumes resources", "it can lead to issues"), left
        )
        != []
    )
    # a call waiting on its own response is what blocking means, not what it does to anyone
    at49 = [
        _check(49, "response = requests.post(", "S113"),
        _check(49, "response = requests.post(", "ASYNC210"),
    ]
    said49 = "In short, the biggest problem is in `StreamingOrchestrator.process` (line 49): HTTP requests with no timeout; blocking call inside async def, so it waits for the response before proceeding."
    assert [f[2] for f in sentence_faults(said49, at49)] == [why.replace("70", "49")]
    others = said49.replace(
        "it waits for the response before proceeding", "no other stage can stream a token meanwhile"
    )
    assert (
        sentence_faults(
            others.replace("no other stage can stream", "every other stage waits to stream"), at49
        )
        == []
    )
    demo = [
        _check(42, "requests.post(url)", "S113", "warm_up"),
        _check(42, "requests.post(url)", "ASYNC210", "warm_up"),
    ]
    answer = "In short, the biggest problem is in `warm_up` (line 42): a blocking HTTP request with no timeout; this can lead to performance issues."
    assert [f[2] for f in sentence_faults(answer, demo)] == [why.replace("70", "42")]
    # a title's own words ("only grows") are not what it costs: that must be said beyond it
    grows = [_check(59, "self.history.append(token)", "MIR008")]
    assert (
        sentence_faults(
            "Also, in `StreamingOrchestrator.process` (line 59): collection that only grows; this can lead to memory usage issues.",
            grows,
        )
        != []
    )
    elsewhere = {**lock, "line": 90}
    assert sentence_faults(said, [elsewhere]) != []


def test_the_answer_says_what_is_wrong_then_what_that_does_in_ascii():
    """The answer's shape: what is wrong (no comma), a link (", so", ", which"...), what that does
    to the user; printable ASCII only (the 1.5B drifted into Chinese mid-sentence)."""
    text = summary_grammar(summary_findings()).splitlines()
    answer = next(line for line in text if line.startswith("answer ::= "))
    assert answer.endswith('first ": " head{10,200} link text{10,160} ".\\n"')
    rules = dict(line.split(" ::= ", 1) for line in text)
    assert rules["head"] == r"[\x20-\x29\x2B\x2D\x2F-\x5F\x61-\x7E]"  # no "," (0x2C), ".", "*", "`"
    assert rules["text"] == r"[\x20-\x29\x2B-\x2D\x2F-\x5F\x61-\x7E]"  # commas allowed after the link
    assert rules["link"].split(" | ")[0] == '", so "'


def test_an_answer_saying_its_rules_problem_in_other_words_stands():
    """Held-out 9's second attempts, each dropped as saying what none of its line's findings
    says, though each says its rule's problem; a sentence about another problem still is."""
    cases = [
        (_check(112, "await self._fetch(feed)", "MIR003", "FeedPoller.poll_once"),
         "it waits for all fetches to complete one after another in a loop, which can lead to long polling times."),
        (_check(66, "state = json.loads(path.read_text())", "MIR018", "LabelBatchPrinter._reserve_ref"),
         "it loads the counter file again on every call, which makes each label slower to print."),
        (_check(87, "settings = await self.zone_settings(zone)", "MIR007", "IrrigationController.handle_batch"),
         "it makes several queries to Redis for each reading, which makes each batch slower."),
    ]  # fmt: skip
    for f, claim in cases:
        answer = f"In short, the biggest problem is in `{f['function']}` (line {f['line']}): {claim}"
        assert sentence_faults(answer, [f]) == [], claim
    off = "In short, the biggest problem is in `FeedPoller.poll_once` (line 112): the feed titles are never escaped, which lets users inject HTML."
    assert sentence_faults(off, [cases[0][0]]) != []
