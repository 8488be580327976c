"""Findings: one shape for what checks and stages find, grounded in the document.

An analyst writes its findings as markdown lines in one shape, held to it by a
grammar on llama.cpp (so the stream and the report show markdown, and the shape
never breaks):

    - `requests.post(url)`: the problem and what it costs. Fix: the fix.
    - Check 2 is not a problem here: why not.             (disputes a check's finding)

On llama.cpp the grammar also holds the quoted code to the document's own lines, so
the model cannot cite code the file lacks (the 1.5B, unconstrained, wrote a
`time.sleep(30)` the demo file does not have). Mirador then grounds every finding:
the quoted code says where it is (small models cite line numbers badly; Mirador
finds the line). A finding whose code is not in the document (a backend without
grammars) is set aside, never reported as a finding; so is one whose claim the code
contradicts (graph.claims: "repeated on every iteration" of a line in no loop). Findings from the checks and every stage are then merged: the same line
and kind found twice is one finding naming everyone who found it.
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, NotRequired, TypedDict

import numpy as np

import checks
from graph import claims

MAX_NEW = 3  # findings a stage may add
PROBLEM_CHARS, FIX_CHARS = 160, 120  # held short: every character is decoded on a laptop CPU
CODE_CHARS = 100


class Finding(TypedDict):
    """A problem in the document, from a check or a stage, as stored and reported."""

    line: int
    end_line: int
    function: str  # the enclosing function or class ("" at module level)
    code: str  # the document's own line(s), stripped
    kind: str  # concurrency | cost | resources | design | other
    rule: str  # a check's rule id; "" for a stage's own finding
    message: str  # the problem and why it matters
    fix: str
    found_by: list[str]  # "checks" and/or stage names
    disputed_by: list[str]  # stages that judged a check's finding not a problem here, with why
    relevance: NotRequired[float]  # the cosine of the message to the question (`scored`); absent: not yet


def quotable(source: str, exclude: frozenset[int] = frozenset()) -> list[str]:
    """The document's lines a finding may quote: stripped, long enough to mean something,
    without backticks, at most CODE_CHARS (a longer line is quoted by its start), and not
    the lines in `exclude` (1-based)."""
    lines = {line.strip()[:CODE_CHARS] for n, line in enumerate(source.splitlines(), 1) if n not in exclude}
    return sorted(line for line in lines if len(line) >= 8 and "`" not in line and not line.startswith("#"))


def _literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def grammar(n_checks: int, source: str, known: frozenset[int] = frozenset(), max_new: int = MAX_NEW) -> str:
    """GBNF for an analyst's answer: one to `max_new` findings, each quoting a line of the
    document verbatim (the model cannot cite code the file lacks) other than the `known`
    lines the checks already flagged for it (small models shown facts repeat them), then
    optional disputes of the `n_checks` check findings it was shown."""
    disputes = f" dispute{{0,{n_checks}}}" if n_checks else ""
    numbers = " | ".join(f'"{n}"' for n in range(1, n_checks + 1)) or '"1"'
    lines = quotable(source, known) or ["pass"]
    return "\n".join(
        [
            "root ::= " + " ".join(["finding"] + ["finding?"] * (max_new - 1)) + disputes,
            r'finding ::= "- `" code "`: " problem " Fix: " fix "\n"',
            r'dispute ::= "- Check " number " is not a problem here: " fix "\n"',
            f"number ::= {numbers}",
            "code ::= " + " | ".join(_literal(line) for line in lines),
            rf"problem ::= [^\n]{{10,{PROBLEM_CHARS}}}",
            rf"fix ::= [^\n]{{5,{FIX_CHARS}}}",
        ]
    )


# The synthesis over findings answers the question: one sentence naming the biggest
# problem, and one more for a second symptom the question asks about. The opening is fixed
# because the 1.5B, left free, opened with a heading or the question restated ("the code has
# several potential performance bottlenecks"). Neither may hold markdown emphasis or code
# (the 1.5B pasted the rendered findings in whole). The bullets under it are Mirador's
# (`glance`): written by the model they restated the answer, pasted a check's message, or
# added claims no finding made ("which could lead to a race condition"). Each sentence
# names first where its problem is, chosen among the top findings' places: left to say it
# in words, the 1.5B answered a held-out case with "the dispatcher does not handle delivery
# failures well", a problem no finding made, and left the real one (#1) uncited.
PLACES = 6  # the top findings whose places the summary may name
# The answer's own place is one of the top two: offered six, the 1.5B followed the earlier
# stages' notes rather than the order, and led the demo's summary with line 59 (the history
# list, fourth of the places by relevance) when the question was about bottlenecks.
ANSWER_PLACES = 2


def places(findings: list[Finding], n: int = PLACES) -> list[str]:
    """The first `n` places of the ranked findings (confirmed ones first), each once. Held to
    the confirmed findings' places, the 1.5B put the demo's re-sent context (line 64, one
    analyst's finding, and real) at line 59 or 49 on three runs of three."""
    return list(dict.fromkeys(place(f) for f in findings))[:n]


# How the answer opens. With no confirmed finding (no check made it, no second finder agrees)
# the synthesis does not run (nodes.skip_reason): on held-out 8 such a lead headed the summary as
# "the biggest problem" ("the endpoint should be set to a more reliable and scalable service").
ANSWER_OPENING = "In short, the biggest problem is "


# The answer's characters: printable ASCII but for ".", "*" and "`". Left any character, the 1.5B
# drifted into Chinese mid-sentence on held-out 8 ("can cause the scratch volume to 填"). What is
# wrong (`head`) has no comma: its first comma is one of the links to what that does. Held to
# ", so" alone, the 1.5B wrote "which can lead to ..." until the length cap forced it in mid-phrase
# ("causing new episodes to show, so late and growing").
SUMMARY_TEXT = [
    r"text ::= [\x20-\x29\x2B-\x2D\x2F-\x5F\x61-\x7E]",
    r"head ::= [\x20-\x29\x2B\x2D\x2F-\x5F\x61-\x7E]",
    'link ::= ", so " | ", which " | ", causing " | ", leading " | ", making " | ", and "',
]


def summary_grammar(findings: list[Finding], n: int = PLACES) -> str:
    """GBNF for the synthesis over findings: "In short, the biggest problem is" + one of the
    top ANSWER_PLACES places + what is wrong there + ", so" (or another link) + what that does to
    the user, and
    an optional "Also," sentence the same way at one of the top `n`. Left to end where it liked, the 1.5B stopped at the check's title ("child
    process's output awaited with no timeout."), and `sentence_faults` dropped 6 of held-out 8's
    10 answers for it on both attempts."""
    where = places(findings, n) or ["in this code"]
    return "\n".join(
        [
            "root ::= answer also?",
            "answer ::= " + _literal(ANSWER_OPENING) + ' first ": " head{10,200} link text{10,160} ".\\n"',
            'also ::= "Also, " where ": " head{10,140} link text{10,140} ".\\n"',
            *SUMMARY_TEXT,
            "first ::= " + " | ".join(_literal(p) for p in where[:ANSWER_PLACES]),
            "where ::= " + " | ".join(_literal(p) for p in where),
        ]
    )


def confirmed(f: Finding) -> bool:
    """A finding a check made or two finders agree on. On held-out code (session 5's eval) one
    analyst's findings alone were 3 true of 21; the rest of the findings, 28 of 30."""
    return "checks" in f["found_by"] or len(f["found_by"]) >= 2


def leading(findings: list[Finding]) -> list[Finding]:
    """The ranked findings the summary and the fixes draw on: the confirmed ones (`rank` puts
    them first) when there are any, else all."""
    return [f for f in findings if confirmed(f)] or findings


def place(f: Finding) -> str:
    """Where a finding is, as the summary names it: in `function` (line N)."""
    return f"in `{f['function']}` (line {f['line']})" if f["function"] else f"at line {f['line']}"


GLANCE = 3  # findings listed under the answer

# The synthesis over notes (a chain with no findings: a document, a decision, a question
# with no code) answers in one to three sentences of prose, the first opening "In short,".
# Asked for bullets, the 1.5B re-typed the stage before it (novelty 0.00 on four of the
# six classic cases), so the copy check dropped it and the report had no summary. Mirador
# says which stage each sentence draws on (`cite_notes`).
NOTES_GRAMMAR = "\n".join(
    [
        "root ::= answer also? also?",
        r'answer ::= "In short, " [^\n.*`#]{10,280} ".\n"',
        r'also ::= ("Also, " | "But " | "Still, ") [^\n.*`#]{10,240} ".\n"',
    ]
)


def fix_targets(findings: list[Finding], n: int = 3) -> list[tuple[list[int], Finding]]:
    """Up to `n` places for the fixes stage, most important first: the numbers of the leading
    findings at one line, and the first of them. The demo's line 42 has two findings (a blocking
    call, no timeout); asked for a fix per finding, the 1.5B spent two of its three on that line."""
    by_line: dict[int, tuple[list[int], Finding]] = {}
    for i, f in enumerate(leading(findings), start=1):
        by_line.setdefault(f["line"], ([], f))[0].append(i)
    return list(by_line.values())[:n]


def fix_ref(numbers: list[int], f: Finding) -> str:
    """How a fix names what it is for: "#1 and #2, line 42"."""
    return f"{' and '.join(f'#{i}' for i in numbers)}, line {f['line']}"


def fixes_grammar(findings: list[Finding], n: int = 3) -> str:
    """GBNF for the fixes stage: for one to `n` of the top places, its findings' numbers, line and
    code ("Before"), the changed code as a fenced block ("After") and one line on why. Left free,
    the 1.5B pasted the finding it was asked to fix (the chat server's "#1, line 46" and MIR001's
    message, no code); asked for a block alone, it copied the line unchanged."""
    top = fix_targets(findings, n)
    refs = " | ".join(
        _literal(f"{fix_ref(numbers, f)}\nBefore: `{f['code'][:CODE_CHARS]}`\nAfter:").replace("\n", "\\n")
        for numbers, f in top
    )
    return "\n".join(
        [
            "root ::= " + " ".join(["fix"] + ["fix?"] * (len(top) - 1)),
            r'fix ::= ref "\n```python\n" codeline codeline? codeline? codeline? codeline? codeline? codeline? '
            r'codeline? codeline? codeline? "```\nWhy: " why ".\n\n"',
            f"ref ::= {refs}",
            r"codeline ::= [^\n`]{1,160} " + '"\\n"',  # a call with its new timeout= runs past 100
            # one sentence: "asyncio.gather", "0.5"; not ".B", nor "._": the demo's 1.5B ran on past
            # its sentence's end as "indefinitely._by_stage = {} for token in self.history: ..."
            r'why ::= ([^\n`.] | "." [a-z0-9]){10,200}',
        ]
    )


_FIX = re.compile(
    r"^#(\d+)(?: and #\d+)*, line \d+\n(?:Before: `([^\n]*)`\n)?After:\n```python\n(.*?)```(?:\n|\Z).*?(?=^#\d+(?: and #\d+)*, line |\Z)",
    re.M | re.S,
)  # the Before line may be gone: the demo's second fix repeated the first's, and cleaning cut it as a repeat


# `with asyncio.Lock():` makes a new lock each time (it excludes no one); gather, wait_for and
# sleep are not context managers; a requests call cannot be awaited nor entered with `async with`.
# All were the 1.5B's fixes.
_NOT_A_FIX = re.compile(
    r"\bwith\s+[\w.]*(Lock|RLock|Semaphore|BoundedSemaphore|Condition)\(|\bwith\s+asyncio\.(gather|wait_for|sleep)\("
    r"|\b(await|wait_for\(|async\s+with)\s*requests\."  # requests has no async API
)


def _tree(code: str) -> ast.Module | None:
    """The code parsed, given a body when it is a lone block header; None when it is not Python."""
    code = textwrap.dedent(code).strip()
    for text in (code, code + "\n    pass"):
        try:
            return ast.parse(text)
        except SyntaxError:
            pass
    return None


def _parses(code: str) -> bool:
    """The fix is Python: it parses, or a lone block header (`async with self._lock:`) does
    once given a body."""
    return _tree(code) is not None


def unchanged_fixes(text: str) -> tuple[str, list[int]]:
    """The fixes stage's text without the fixes that fix nothing: the line it was to fix,
    unchanged (the 1.5B's commonest non-fix), code that is not Python (a line cut at its
    length cap), or one of `_NOT_A_FIX`; and the numbers of the findings those were for."""
    dropped = [m for m in _FIX.finditer(text)
               if _norm(m[3]) == _norm(m[2] or "") or _NOT_A_FIX.search(m[3]) or not _parses(m[3])]  # fmt: skip
    for m in reversed(dropped):
        text = text[: m.start()] + text[m.end() :]
    heads = [m.start() for m in re.finditer(r"^#\d+(?: and #\d+)*, line ", text, re.M)]
    if heads and (
        text.count("```") % 2 or "```" not in text[heads[-1] :]
    ):  # cut off before its fix was whole
        text = text[: heads[-1]]
    return text.strip(), [int(m[1]) for m in dropped]


def _numbers(m: re.Match[str]) -> list[int]:
    """The finding numbers a fix names ("#1 and #2, line 42")."""
    return [int(n) for n in re.findall(r"#(\d+)", m[0][: m[0].index(", line")])]


def unfixed(text: str, findings: list[Finding], source: str, path: str) -> tuple[str, list[tuple[int, str]]]:
    """The fixes stage's text without the fixes after which the checks still find every problem
    they were for, and (finding number, rule) of each. A fix for a check's finding is tried
    on the document: its statement replaced by the After block, the checks run again. On a
    held-out case the 1.5B 'fixed' a lock held across a send by wrapping the send in the same
    lock again, and rebuilt `payload +=` as a join that drops what came before. A fix that mends
    some of its place's problems stays, saying which the checks still find. A fix that does not
    fit in place (it does not parse there), or is for a stage's finding, is not judged."""
    lines = source.splitlines()
    try:  # once: caveats reads it for every fix (not _tree, whose strip would move the line numbers)
        doc: ast.Module | None = ast.parse(source)
    except SyntaxError:
        doc = None
    out: list[str] = []
    dropped: list[tuple[int, str]] = []
    end = 0
    for m in _FIX.finditer(text):
        judged = [n for n in _numbers(m) if 0 < n <= len(findings) and findings[n - 1]["rule"]]
        still = [n for n in judged if _still_found(findings[n - 1], m[3], lines, path)]
        out.append(text[end : m.start()])
        end = m.end()
        if still and still == judged:
            dropped.append((still[0], findings[still[0] - 1]["rule"]))
            continue
        notes = (
            caveats(m[3], findings[_numbers(m)[0] - 1], doc)
            if doc and 0 < _numbers(m)[0] <= len(findings)
            else []
        )
        if still:
            rules = " and ".join(dict.fromkeys(findings[n - 1]["rule"] for n in still))
            notes.append(f"The checks still find {rules} here after this fix.")
        out.append(m[0].rstrip("\n") + "".join(f"\n({n})" for n in notes) + "\n\n" if notes else m[0])
    return ("".join(out) + text[end:]).strip(), dropped


def _self_attrs(tree: ast.AST, ctx: type[ast.expr_context]) -> set[str]:
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ctx)
            and isinstance(n.value, ast.Name) and n.value.id == "self"}  # fmt: skip


def _class_at(tree: ast.Module, line: int) -> ast.ClassDef | None:
    """The innermost class holding `line`."""
    held = [
        n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.lineno <= line <= (n.end_lineno or 0)
    ]
    return max(held, key=lambda n: n.lineno, default=None)


def _binds(tree: ast.AST) -> set[str]:
    """Every name a fix binds, at any depth (a fix is a few lines: its own scopes need no
    telling apart): assignments, parameters, imports, defined functions and classes."""
    out: set[str] = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
            out.add(n.id)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
        elif (
            isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.ExceptHandler)
            and n.name
        ):
            out.add(n.name)
    return out


def caveats(after: str, f: Finding, doc: ast.Module) -> list[str]:
    """What a fix gets wrong that the document shows: a `self.` name its class never sets
    (the demo's fixes passed `timeout=self.timeout`, which StreamingOrchestrator does not
    have), a bare name its function does not bind (its fix for warm_up() posted `prompt`, a
    local of process()), and a keyword argument of the fixed call that the fix leaves out (its
    fix for line 49 dropped `stream=True`, so the reply would be read whole before a token shows)."""
    fix = _tree(after)
    if fix is None:
        return []
    notes = []
    cls = _class_at(doc, f["line"])
    if cls is not None and not cls.bases and not cls.decorator_list:
        has = _self_attrs(cls, ast.Store) | {
            n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        } | {t.id for n in cls.body if isinstance(n, ast.Assign | ast.AnnAssign)
             for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}  # fmt: skip
        if "__getattr__" not in has:
            missing = sorted(_self_attrs(fix, ast.Load) - has - _self_attrs(fix, ast.Store))
            notes += [f"`self.{name}` is not set anywhere in `{cls.name}`." for name in missing]
    scopes = [n for n in ast.walk(doc) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
              and n.lineno <= f["line"] <= (n.end_lineno or 0)]  # fmt: skip
    if scopes:  # a bare name the fix reads that neither it, its function nor the module binds
        from checks.rules import assigned_names  # the document's scopes, as the checks read them

        known = _binds(fix) | assigned_names(doc.body) | set(dir(builtins))
        for scope in scopes:
            known |= assigned_names(scope.body) | {
                a.arg for a in ast.walk(scope.args) if isinstance(a, ast.arg)
            }
        bases = {id(n.value) for n in ast.walk(fix) if isinstance(n, ast.Attribute)}  # `httpx.`: a new import
        loose = {n.id for n in ast.walk(fix) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
                 and id(n) not in bases} - known  # fmt: skip
        notes += [f"`{name}` is not defined in `{scopes[-1].name}`." for name in sorted(loose)]
    used = (
        {n.id for n in ast.walk(fix) if isinstance(n, ast.Name)}
        | {n.attr for n in ast.walk(fix) if isinstance(n, ast.Attribute)}
        | {k.arg for n in ast.walk(fix) if isinstance(n, ast.Call) for k in n.keywords}
    )
    gone = [k for n in ast.walk(doc) if isinstance(n, ast.Call) and n.lineno == f["line"] for k in n.keywords
            if k.arg and k.arg not in used]  # fmt: skip
    return notes + [f"This fix drops `{ast.unparse(k)}`, which the line passed." for k in gone]


def _still_found(f: Finding, after: str, lines: list[str], path: str) -> bool:
    start = f["line"]
    indent = re.match(r"\s*", lines[start - 1])[0]  # type: ignore[index]
    block = [
        indent + line if line.strip() else line for line in textwrap.dedent(after).rstrip("\n").splitlines()
    ]
    for end in dict.fromkeys((f["end_line"], start)):  # the whole statement, else its first line
        patched = "\n".join(lines[: start - 1] + block + lines[end:]) + "\n"
        try:
            ast.parse(patched)
        except SyntaxError:
            continue
        span = range(start, start + len(block))
        return any(g["rule"] == f["rule"] and g["line"] in span for g in checked(patched, path))
    return False


def headline(message: str, limit: int = 150) -> str:
    """A finding's message up to its first ':' or ';' or sentence end (where the checks' messages
    turn from what to why), or cut at a word near `limit`."""
    m = re.search(r"[:;]\s|\.(\s|$)", message)
    head = message[: m.start()] if m and m.start() >= 20 else message
    if len(head) > limit:
        head = head[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return head.strip()


def glance(answer: str, findings: list[Finding], n: int = GLANCE) -> list[str]:
    """One line each for the most important problems the answer did not cite: where, what,
    [#n]. Findings that say the same thing on several lines (S113 on two requests) share one."""
    cited = {int(k) for k in re.findall(r"\[#(\d+)\]", answer)}
    groups: dict[str, list[int]] = {}
    for i, f in enumerate(leading(findings), start=1):
        if i not in cited and (len(groups) < n or headline(f["message"]) in groups):
            groups.setdefault(headline(f["message"]), []).append(i)
    out = []
    for head, numbers in groups.items():
        first = findings[numbers[0] - 1]
        lines = sorted({findings[i - 1]["line"] for i in numbers})
        where = ("Line " if len(lines) == 1 else "Lines ") + ", ".join(map(str, lines))
        if len(lines) == 1 and first["function"]:
            where += f" in `{first['function']}`"
        out.append(f"- {where}: {head} [{', '.join(f'#{i}' for i in numbers)}]")
    return out


def summarise(answer: str, findings: list[Finding]) -> str:
    """The Key Findings Summary: the synthesis's answer (cited) and the rest at a glance."""
    answer = cite(answer.strip(), findings) if answer.strip() else ""
    return "\n".join(([answer] if answer else []) + glance(answer, findings))


_PLACED = re.compile(r"(.*?)(?:in `[^`\n]*` \(line (\d+)\)|at line (\d+)): (.*)")


def _named(text: str) -> tuple[str, int, str] | None:
    """A summary sentence's opening (what comes before its place), the line its place names
    and its claim; None when it names no place."""
    m = _PLACED.fullmatch(text)
    return (m[1], int(m[2] or m[3]), m[4]) if m else None


def denied(text: str, findings: list[Finding]) -> tuple[str, list[dict[str, Any]]]:
    """A design note with each paragraph that denies a confirmed check finding's problem
    replaced by a line saying so, and those paragraphs as set-aside records. The demo's
    solution architect wrote, under "Concurrency Model", that the `requests` calls were
    asynchronous and "the event loop does not block"; the checks had found them blocking it.
    The paragraph goes, not the sentence: its other sentences argued the same."""
    checked = [f for f in findings if f["rule"] and "checks" in f["found_by"]]
    out, aside = [], []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        body = " ".join(line for line in lines if not line.lstrip().startswith("#"))
        sentences = re.split(r"(?<=[.!?])\s+", body)
        hit = next((f for f in checked for t in sentences if claims.denies(f["rule"], t)), None)
        if hit is None:
            out.append(block)
            continue
        heads = [line for line in lines if line.lstrip().startswith("#")]
        lines_of = ", ".join(str(n) for n in sorted({f["line"] for f in checked if f["rule"] == hit["rule"]}))
        note = (f"*(Mirador set this paragraph aside: it said the code is free of what {hit['rule']} "
                f"found at line {lines_of}: {checks.title(hit['rule']) or hit['message']}.)*")  # fmt: skip
        out.append("\n".join([*heads, note]))
        aside.append({"line": hit["line"], "code": hit["code"],
                      "reason": f"a paragraph denied the {hit['rule']} finding there"})  # fmt: skip
    return "\n\n".join(out), aside


def _titled(rule: str, claim: str) -> bool:
    """The claim names the rule's problem in the words of its title: the title itself, or
    three in four of its words ("it runs independent awaits one after another in a loop")."""
    name = checks.title(rule).lower()
    if not name:
        return False
    words = _words(name)
    return name in claim.lower() or (len(words) >= 3 and len(words & _words(claim)) >= 0.75 * len(words))


def relocate(answer: str, findings: list[Finding]) -> str:
    """The answer with each sentence whose words are another line's finding's moved to that
    finding's place: more of them shared with a finding on another line than with any on
    the line it names (at least three). The 1.5B told the demo's re-sent context (an
    analyst's finding, line 64) of line 59, where the history list is, on four runs of five,
    and said again, swapped the two; the words say which line they are about. A sentence
    that names a check's problem by its rule's title (as `render_places` shows it) is about
    that check's line: the 1.5B wrote "(line 64): collection that only grows", MIR008's
    title, of the re-sent context, where the history list (line 59) is what only grows."""
    out = []
    for text in answer.splitlines():
        if named := _named(text):
            opening, line, claim = named
            titled = [f for f in findings if f["rule"] and _titled(f["rule"], claim)]
            if titled:  # at its own line it stays; else it goes to the title's line
                here_too = any(f["line"] == line for f in titled)
                out.append(text if here_too else f"{opening}{place(titled[0])}: {claim}")
                continue
            words = _words(claim)
            shared = [len(words & _words(f"{f['code']} {f['message']}")) for f in findings]
            here = max((n for n, f in zip(shared, findings, strict=True) if f["line"] == line), default=0)
            # the most words shared with another line's finding; the more important on a tie
            most, best = max(((n, -k) for k, (n, f) in enumerate(zip(shared, findings, strict=True)) if f["line"] != line),
                             default=(0, 0))  # fmt: skip
            if most >= 3 and most > here:
                text = f"{opening}{place(findings[-best])}: {claim}"
        out.append(text)
    return "\n".join(out)


def sentence_faults(
    answer: str, findings: list[Finding], query: str = "", source: str = ""
) -> list[tuple[int, int, str]]:
    """What is wrong with each sentence line of a synthesis answer that names a place, as
    (index of the sentence line, the document line it names, why in words for its repeat);
    the answer's other lines are fine.

    The grammar makes each sentence open with a finding's place; on the demo the 1.5B then
    pasted that finding's check message ("an HTTP request with no timeout can hang forever;
    pass timeout=", which the Findings section already says) and, shown only the places and
    code, wrote of line 49 "it uses the same prompt for all stages, which can lead to poor
    results", which names no problem. A sentence's words (after its place) are judged
    against the findings: most of them a finding's message is a paste; words that name no
    problem (graph.claims) say nothing; most of them the question's is the user's symptom
    handed back (held-out 6: "(line 57): it leaves dozens of idle connections on the
    reporting database", the question's words at a line that opens no connection); most of
    them an earlier sentence's is the same sentence again (held-out 6's "Also, in
    `reconcile` (line 85): …", word for word the answer); most of them a comment's in the
    document is the author's remark pasted (the demo's "the context grows with every stage and
    is re-sent in full" is line 63's comment, word for word). (The claims' checks against
    the code, made for an analyst's finding, refused good summaries: "leaks memory" of a
    list that only grows is no unreleased resource, but a fair thing to tell the user.) At a
    line only the checks found problems on, a sentence must claim one of their rules' problems
    (claims.RULE_CLAIMS): the demo's "(line 42): the requests are made for each stage's model
    once, which can be inefficient" cited the blocking call there and said something else."""
    out = []
    said: list[str] = []
    comments = [
        (n, text.partition("#")[2]) for n, text in enumerate(source.splitlines(), start=1) if "#" in text
    ]
    for i, text in enumerate(answer.splitlines()):
        if (named := _named(text)) is None:
            continue
        _, line, claim = named
        copied = next((n for n, comment in comments if _copies(claim, comment)), None)
        if copied is not None:
            out.append(
                (
                    i,
                    line,
                    f"pasted the comment on line {copied} instead of saying in its own words what is wrong",
                )
            )
            continue
        if query and _copies(claim, query):
            out.append(
                (i, line, f"handed back the question's words instead of saying what is wrong at line {line}")
            )
            continue
        if any(_copies(claim, before) for before in said):
            out.append((i, line, "said again what a sentence before it says"))
            continue
        said.append(claim)
        titled = [
            f["rule"] for f in findings if f["rule"] and f["line"] == line and _titled(f["rule"], claim)
        ]
        if titled:
            # The problem named by its rule's title (the synthesis is shown it) is not a paste of
            # the message, but the title is Mirador's words: the sentence must also say what it
            # costs the user. The demo's "(line 42): a blocking HTTP request with no timeout;
            # this can lead to performance issues" said only the titles and a platitude.
            rest = re.sub(r"\b(" + "|".join(sorted({w for r in titled for w in _words(checks.title(r))})) + r")\b",
                          "", claim, flags=re.IGNORECASE)  # fmt: skip
            if not claims.says_user_cost(rest):
                out.append((i, line, f"named the problem at line {line} by its check's title without "
                                     "saying what it does to the user (what waits, hangs or grows)"))  # fmt: skip
            continue
        pasted = next((n for n, f in enumerate(findings) if _copies(claim, f["message"])), None)
        if pasted is not None:
            out.append((i, line, f"pasted finding #{pasted + 1}'s message instead of saying why it matters"))
            continue
        if claims.NOT_A_PROBLEM.search(claim) or not claims.names_problem(claim, consequences=True):
            out.append((i, line, f"said nothing wrong with line {line}"))
            continue
        rules = [f["rule"] for f in findings if f["line"] == line]
        if rules and all(rules) and not any(claims.claims_rule(r, claim, unknown=True) for r in rules):
            out.append((i, line, f"said of line {line} what none of its findings says ({', '.join(rules)})"))
    return out


def cite(summary: str, findings: list[Finding]) -> str:
    """The summary with each sentence line ending in the number of the finding it talks
    about: among the findings on a line it names ("(line 59)", which the grammar makes it
    name), else among all, the one sharing most words with it, the more important on a
    tie; none when no finding shares two words with it. (The demo's answer named line 59,
    then pasted an analyst's words about line 64; the words alone cited line 64.)"""
    out = []
    for text in summary.splitlines():
        words = _words(text)
        lines_named = {int(n) for n in re.findall(r"\bline (\d+)", text)}
        scores = [len(words & _words(f"{f['code']} {f['message']} {f['function']}")) + 100 * (f["line"] in lines_named)
                  for f in findings]  # fmt: skip
        best = max(range(len(scores)), key=lambda i: (scores[i], -i), default=None)
        if text.strip() and best is not None and scores[best] >= 2:
            text = f"{text.rstrip()} [#{best + 1}]"
        out.append(text)
    return "\n".join(out)


def cite_notes(answer: str, notes: dict[str, str]) -> str:
    """The answer with each sentence line ending in the stage(s) it draws on: every stage
    whose output shares at least three words with it and at least two thirds as many as
    the best; none when no stage shares three."""
    out = []
    for text in answer.strip().splitlines():
        words = _words(text)
        shared = {stage: len(words & _words(note)) for stage, note in notes.items()}
        best = max(shared.values(), default=0)
        stages = [s for s, n in shared.items() if n >= 3 and 3 * n >= 2 * best]
        if text.strip() and stages:
            text = f"{text.rstrip()} [{', '.join(f'`{s}`' for s in stages)}]"
        out.append(text)
    return "\n".join(out)


_DISPUTE = re.compile(r"^\s*[-*]\s*Check (\d+) is not a problem here:\s*(.+)$", re.I)
_FINDING = re.compile(r"^\s*[-*]\s*(?:Line (\d+),?\s*)?`([^`]+)`\s*:\s*(.+?)(?:\s+Fix:\s*(.*))?$", re.I)


def parse(text: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An analyst's disputes ({check, why}) and its own findings ({line, code, message, fix};
    line 0 when it cites none: the code says where)."""
    disputes, found = [], []
    for line in text.splitlines():
        if m := _DISPUTE.match(line):
            disputes.append({"check": int(m[1]), "why": m[2].strip()})
        elif m := _FINDING.match(line):
            found.append({"line": int(m[1] or 0), "code": m[2].strip(), "message": whole(m[3].strip()),
                          "fix": whole_fix((m[4] or "").strip())})  # fmt: skip
    return disputes, found


def whole(message: str, none: str | None = None) -> str:
    """The message up to its last whole sentence when the words after it were cut off at the
    stage's token cap (`none`, when given, if no sentence is whole; else the message as it is).
    The demo's cost analyst named line 64's re-sent context in its second sentence and was cut
    in its third ("… if the context is large. A `"); the cut one made the whole finding read as
    cut off, and the demo lost its only find beyond the checks."""
    if not claims.CUT_OFF.search(message):
        return message
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s+\S)", message)]
    return message[: ends[-1]] if ends else message if none is None else none


def whole_fix(fix: str) -> str:
    """A finding's fix with its opening backtick when the model opened it before "Fix:" ("A `Fix:
    context = ""` before the loop"), cut to its last whole sentence when the token cap cut it off,
    or "" when no sentence of it is whole (the demo's "self.history = []` at the beginning of")."""
    return whole("`" + fix if fix.count("`") % 2 else fix, none="")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(":;,").strip()


def locate(code: str, lines: list[str], near: int) -> int | None:
    """The 1-based line holding `code` nearest the cited line `near`; None when the
    document lacks it."""
    want = _norm(code).removesuffix("...").removesuffix("…").strip()
    if len(want) < 3:
        return None
    held = [i for i, line in enumerate(lines, start=1) if want in _norm(line) or (
        len(_norm(line)) >= 8 and _norm(line) in want)]  # fmt: skip
    if not held:
        return None
    return min(held, key=lambda i: abs(i - near))


def functions(source: str | ast.Module) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function and class, innermost last
    (from the source, or its tree when it is already parsed)."""
    try:
        tree = ast.parse(source) if isinstance(source, str) else source
    except SyntaxError:
        return []
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return spans


def enclosing(spans: list[tuple[int, int, str]], line: int) -> str:
    inside = [s for s in spans if s[0] <= line <= s[1]]
    return max(inside, key=lambda s: s[0])[2] if inside else ""


def ground(
    found: list[dict[str, Any]], source: str, stage: str, kind: str, facts: list[Finding] | None = None
) -> tuple[list[Finding], list[dict[str, Any]]]:
    """Findings whose quoted code the document holds (line corrected to where it is), that
    do not repeat a check's finding (`facts`) about another line, and whose claim the code
    does not refute (graph.claims); and the ones set aside with the reason ("refuted"
    marks the last two kinds)."""
    lines = source.splitlines()
    code = claims.parse(source)  # one parse serves the enclosing functions and the claims
    spans = functions(code.tree) if code else []
    kept: list[Finding] = []
    dropped: list[dict[str, Any]] = []
    for f in found:
        at = locate(f["code"], lines, f["line"])
        if at is None:
            dropped.append({**f, "stage": stage, "reason": "the document has no such code"})
            continue
        copied = next(
            (c for c in facts or [] if c["line"] != at and _copies(f["message"], c["message"])), None
        )
        if copied is not None:  # small models shown facts repeat them, on whatever line they quote
            dropped.append({**f, "line": at, "stage": stage, "refuted": True,
                            "reason": f"repeats the {copied['rule']} finding about line {copied['line']}"})  # fmt: skip
            continue
        if why := claims.refuted(code, at, f["message"], f.get("fix", "")):
            dropped.append({**f, "line": at, "stage": stage, "reason": why, "refuted": True})
            continue
        kept.append(Finding(line=at, end_line=at, function=enclosing(spans, at), code=lines[at - 1].strip(),
                            kind=kind, rule="", message=f["message"], fix=f["fix"], found_by=[stage],
                            disputed_by=[]))  # fmt: skip
    return kept, dropped


def checked(source: str, path: str) -> list[Finding]:
    """The checks' findings on a Python document, in the shared shape (the file is parsed
    once for the enclosing functions, not once per finding)."""
    from checks import check_source  # standard library only: no model runtime

    spans = functions(source)
    return [Finding(line=f.line, end_line=f.end_line or f.line, function=enclosing(spans, f.line), code=f.code,
                    kind=f.kind, rule=f.rule, message=f.message, fix="", found_by=["checks"], disputed_by=[])
            for f in check_source(source, path)]  # fmt: skip


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z_]{4,}", text.lower()))


def _copies(message: str, fact: str) -> bool:
    """Most of the message's words are a check's message's words."""
    words = _words(message)
    return len(words) >= 4 and len(words & _words(fact)) / len(words) >= 0.6


def same(a: Finding, b: Finding) -> bool:
    """Two findings about one problem: two checks' findings only when their rule and line
    agree; otherwise the same line and either the same kind, or two stages' findings
    (a model rarely sees two problems in one line), or a stage's that claims what the
    check's rule finds (claims.RULE_CLAIMS), or mostly the same words."""
    if a["rule"] and b["rule"]:
        return a["rule"] == b["rule"] and a["line"] == b["line"]
    if a["line"] != b["line"]:
        return False
    if a["kind"] == b["kind"] or not (a["rule"] or b["rule"]):
        return True
    if claims.claims_rule(a["rule"] or b["rule"], b["message"] if a["rule"] else a["message"]):
        return True
    wa, wb = _words(a["message"]), _words(b["message"])
    return bool(wa and wb) and len(wa & wb) / min(len(wa), len(wb)) >= 0.5


def merge(groups: list[list[Finding]]) -> list[Finding]:
    """One list, de-duplicated: a finding already held gains the new finder (and a fix,
    if it had none); order is first seen."""
    merged: list[Finding] = []
    for group in groups:
        for f in group:
            held = next((m for m in merged if same(m, f)), None)
            if held is None:
                merged.append(Finding(**{**f, "found_by": list(f["found_by"]),
                                         "disputed_by": list(f["disputed_by"])}))  # fmt: skip
                continue
            held["found_by"] += [s for s in f["found_by"] if s not in held["found_by"]]
            if not held["fix"] and f["fix"]:
                held["fix"] = f["fix"]
            if "relevance" in f:
                held["relevance"] = max(held.get("relevance", f["relevance"]), f["relevance"])
    return merged


def scored(
    findings: list[Finding], query: str, embed: Callable[[Sequence[str]], np.ndarray]
) -> list[Finding]:
    """The findings, each with its `relevance` to the question (the cosine of its message to
    the question, unit embeddings); those already scored are kept as they are."""
    todo = [i for i, f in enumerate(findings) if "relevance" not in f]
    if not todo or not query.strip():
        return findings
    vectors = embed([query, *(findings[i]["message"] for i in todo)])
    sims = dict(zip(todo, (vectors[1:] @ vectors[0]).tolist(), strict=True))
    return [
        Finding(**{**f, "relevance": round(sims[i], 4)}) if i in sims else f for i, f in enumerate(findings)
    ]


def rank(findings: list[Finding]) -> list[Finding]:
    """Most important first: the confirmed findings (a check's, or two finders agreeing:
    measured precision) before one stage's alone; then by relevance to the question; then by
    line. Ranked by agreement first, the demo's summary led with the history list that grows
    (a check and a stage), true but not what was asked ("performance bottlenecks"; the blocking
    call that freezes the loop is). Over the findings of 41 recorded eval cases, the top place
    held 40 known problems ranked by relevance, 34 by agreement (the top two places: 58, 54).
    A dispute is shown, not ranked on: the 1.5B disputed the demo's most real finding.
    Relevance ties (the same rules on two lines say the same words) go to the function with
    more confirmed findings: the demo's summary named warm_up's one-off blocking call (line 42)
    before process's, the same call once per stage on the streaming path (line 49)."""
    held = Counter(f["function"] for f in findings if f["function"] and confirmed(f))
    return sorted(
        findings,
        key=lambda f: (not confirmed(f), -f.get("relevance", 0.0), -held[f["function"]], f["line"]),
    )


def render_places(findings: list[Finding]) -> str:
    """Findings as the synthesis sees them: where and the code, once per line, without their
    words. Shown the messages, the 1.5B pasted one after the place (the demo's summary, "an
    HTTP request with no timeout can hang forever; pass timeout=", was dropped as a copy on
    every run, so the report had none); shown each finding's kind too, it pasted "concurrency:"
    and the code. Shown the code alone, it guessed what was wrong there: of the demo's line 42
    (a blocking call with no timeout), "it loads each stage's model once, which can be slow".
    So a check's finding also shows its rule's title ("blocking call inside async def"), a
    name for the problem, not a sentence to paste; `sentence_faults` and `relocate` then hold
    each sentence to the findings."""
    shown = places(findings)
    at: dict[str, tuple[str, list[str]]] = {}
    for f in findings:
        if place(f) in shown:
            code, names = at.setdefault(place(f), (f["code"][:90], []))
            name = checks.title(f["rule"])  # "" for a stage's finding
            if name and name not in names:
                names.append(name)
    lines = [
        f"{p}: `{code}`" + (f" ({'; '.join(names)})" if names else "") for p, (code, names) in at.items()
    ]
    return "\n".join(f"{n}. {line}" for n, line in enumerate(lines, start=1))


def render(findings: list[Finding], numbered: bool = True, start: int = 1) -> str:
    """Findings as markdown lines: where, what, the fix, who found it."""
    out = []
    for n, f in enumerate(findings, start=start):
        where = f"line {f['line']}" + (f" in `{f['function']}`" if f["function"] else "")
        rule = f" {f['rule']}" if f["rule"] else ""
        head = f"{n}. " if numbered else "- "
        text = f"{head}**{where}**{rule} — `{f['code'][:90]}`: {f['message']}"
        if f["fix"]:
            text += f" Fix: {f['fix']}"
        text += f" *[{', '.join(f['found_by'])}]*"
        if f["disputed_by"]:
            text += f" *(disputed: {'; '.join(f['disputed_by'])})*"
        out.append(text)
    return "\n".join(out)
