"""What a stage's finding claims about its line, checked against the code.

A small model points at a real line (the grammar sees to that) and then says
something about it that the code does not bear out: "repeated on every iteration"
of a line in no loop, "blocks the event loop" in a function with no event loop or
on an awaited call, "grows without bound" of a local list, "not closed" of a
`with` block, or a description with no problem in it at all. On the eval cases
(eval/finding_labels.toml) such claims were most of the invented findings. Each
kind of claim here has a precondition read from the syntax tree; a finding whose
claim fails it is set aside with the reason (shown in the report), never reported.
The check is one-sided: it can only reject a claim the code contradicts, so a
finding that passes is not thereby true.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from checks.rules import (
    ADDERS,
    COMPREHENSIONS,
    FUNCS,
    LOOPS,
    REMOVERS,
    accumulated,
    callee_last,
    looks_like_io,
)

EMPTY_CONTAINERS = frozenset({"list", "dict", "set", "defaultdict", "OrderedDict", "Counter", "deque"})
ACQUIRERS = frozenset({"open", "connect", "Session", "ClientSession", "Client", "AsyncClient", "SMTP", "SMTP_SSL",
                       "socket", "create_connection", "Popen", "urlopen", "NamedTemporaryFile", "TemporaryFile"})  # fmt: skip
BLOCKERS = frozenset({"sleep", "open", "read", "write", "readlines", "read_text", "write_text", "read_bytes",
                      "write_bytes", "send", "sendall", "send_message", "sendmail", "login", "starttls", "getaddrinfo",
                      "gethostbyname", "input", "iter_content", "commit"})  # fmt: skip
RELEASERS = frozenset({"close", "quit", "release", "shutdown", "disconnect", "aclose", "terminate", "kill"})
WAITERS = frozenset({"communicate", "wait", "run", "check_output", "check_call", "call", "urlopen", "connect",
                     "recv", "accept", "request", "get", "post", "put", "patch", "delete", "head", "fetch",
                     "fetchrow", "fetchval", "execute", "create_subprocess_exec", "create_subprocess_shell"})  # fmt: skip


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


LOOP_CLAIM = _rx(r"\b(every|each) iteration|\b(for|on|per) (every|each) (item|row|element|record)|\b(in|inside|within) "
                 r"(a|the|this) loop|\bone (\w+ )?(after|by) another\b|\bone by one\b|quadratic|\bn ?\+ ?1\b|"
                 r"\bper (item|row|iteration|element|record)\b|\brepeated\b[^.]{0,40}\b(for|on|in) (every|each)\b")  # fmt: skip
EVENT_LOOP_CLAIM = _rx(r"event loop|\bstall")
STATEMENT_BLOCK = _rx(r"\b`?(with|try|finally|except|if|code)`? block")
BLOCK_CLAIM = _rx(r"\bblock(s|ing|ed)?\b")
LOCK_CLAIM = _rx(
    r"\block\b.*\b(await|held|holds|holding|across|while|during)\b|\b(held|holds|holding)\b.*\block\b"
)
GROWTH_CLAIM = _rx(r"\bgrow(s|ing)?\b|unbounded|without (a )?(bound|limit)|indefinitely|\bnever (removed|trimmed|"
                   r"purged|evicted|cleared|deleted)|exhaust|\bmemory\b")  # fmt: skip
LEAK_CLAIM = _rx(
    r"\bleak|\b(not|never|without) (be |being )?(clos|releas)\w*|\b(stays|kept|left) open|does not (clos|releas)"
)
TIMEOUT_CLAIM = _rx(r"time ?out|\bhangs?\b|\bforever\b|no deadline")
# "repeated work on", "It is repeated for each customer, which": the problem's words ran out
CUT_OFF = _rx(
    r"^\W*$|,\s*$|\b(on|in|of|to|the|a|an|and|or|for|with|by|at|from|is|are|which|that|because|so|but|"
    r"when|if|than|whether)\W*$"
)
UNUSED_CLAIM = _rx(r"\b(not|never) used\b|\bunused\b|does not use it|not use it anywhere")
# Held-out 9's answers: "waits for all fetches to complete one after another", "the counter file
# loaded again on every call", "several queries to Redis for each reading" each said its rule's
# problem and were dropped as saying what none of the line's findings says.
CONCURRENT_CLAIM = _rx(
    r"concurrent|in parallel|sequential|\bone (\w+ )?after (another|the other)\b|\bone at a time\b"
)
HOIST_CLAIM = _rx(
    r"\b(mov|hoist|lift|pull|tak)\w* [^.]{0,40}\b(out of|outside|before|above) (of )?(the |this |each |every )?"
    r"(\w+ )?loop|loop[- ]invariant|calculated multiple times|\brecomput|\brecalculat"
)
SCAN_CLAIM = _rx(
    r"membership (test|check)|\.(index|remove|count)\b|linear (scan|search)|\bscans? (the|a|every)\b"
)
# "several queries for each reading": per item of any name. Not a LOOP_CLAIM, which refutes a
# claim on a line in no loop ("for each request" of a handler is no loop, and true).
PER_ITEM_CLAIM = _rx(r"\b(for|on|per) (every|each) \w+")
REPEAT_CLAIM = _rx(
    r"\brepeated (work|calls?|computation|creation)|\bredundant|\brepeatedly\b|\b(every|each) time\b|"
    r"\bagain (on|for) (every|each)\b|\b(on|for) (every|each) call\b"
)
QUADRATIC_CLAIM = _rx(r"quadratic|\bO\(n ?(\^ ?2|\*\* ?2|²|\* ?n)\)|\bn squared")
LINEAR_CALLS = frozenset({"index", "remove", "count", "insert", "sorted", "sort", "sum", "join", "any", "all", "list",
                          "min", "max", "copy", "deepcopy", "extend", "find", "filter", "set", "tuple", "dict"})  # fmt: skip
REPEATED_IN = _rx(r"\brepeated (in|across) (the )?((`\w+`|\w+)(, | and |, and )?)+ (method|function)s?")
PROBLEM = _rx(r"slow|expensive|inefficien|wast|\brace|deadlock|unsafe|\bbug|wrong|incorrect|fail|lost|"
              r"leak|block|stall|grow|memory|time ?out|hang|quadratic|repeat|redundant|contention|starv|overflow|"
              r"duplicat|exhaust|unbounded|never|crash|corrupt|stale")  # fmt: skip
# What a summary says a problem does to the user ("each stage waits longer than the last",
# "the post freezes the loop"): a problem there; not in an analyst's finding, where these
# words let 4 more of 51 false ones through (tests/unit/test_claims.py).
CONSEQUENCE = _rx(r"\blonger\b|\bwaits?\b|delay|latenc|unresponsive|freez")
# What a problem costs the user, said beyond naming it: a summary sentence that names its line's
# problem by the check's title must also say this ("leads to performance issues" does not).
# Held-out 8's "so it stays active and consumes resources" (a child left running) and "so each
# import gets slower" say a cost too.
USER_COST = _rx(CONSEQUENCE.pattern + r"|\bhang|\bstall|\bstops?\b|\bevery other\b|\ball other\b|\bforever\b|"
                r"out of memory|\bcrash|\bruns? out\b|\bpiles? up|\bclimb|never (finish|return|respond|end)|"
                r"\bslow(er|s|ly)?\b|\bconsum|\bexhaust|\bfills? up|\b(keeps?|stays?) (running|open|alive|active)")  # fmt: skip
# A call waiting on its own answer is what blocking means, not a cost to anyone: the demo's "blocking
# call inside async def, so it waits for the response before proceeding" said the titles again.
SELF_WAIT = _rx(r"\b(it|this|the (call|request|code|function|loop))\s+(\w+\s+)?waits?\s+for\s+(the|a|an|its|each)\s+"
                r"(\w+\s+)?(response|reply|result|answer|call|request|item|model)s?\b")  # fmt: skip


def says_user_cost(text: str) -> bool:
    """The text says what a problem costs the user (USER_COST), beyond a call waiting on its own
    answer (SELF_WAIT)."""
    return bool(USER_COST.search(SELF_WAIT.sub("", text)))


NOT_A_PROBLEM = _rx(r"\b(is|does) not (a |an )?(problem|issue|blocking|block|stall)|\bnot blocking\b|\bno (problem|"
                    r"issue)\b|which is (fine|correct|right|expected|good)|\bdoes not affect|\bdoes not need (to be )?(cleared|trimmed|closed|released|bounded|changed)|\bno (effect|impact) on|\bprevents?\b|\bensures?\b|improvement|"
                    r"\bif (it is |they are )?not (handled|done|managed|used|closed)? ?properly|"
                    # held-out 6's cost analyst: "This is a linear operation, not quadratic", "which
                    # is not repeated and does not involve repeated work", "not relevant to the question"
                    r"\bnot (quadratic|repeated)\b|does not (indicate|involve) (any )?(issue|problem|repeated)|"
                    r"not relevant to the question")  # fmt: skip

SYNC_CLAIM = _rx(r"\bsynchronous(ly)?\b|\bsync\b")
# The claim a stage makes when it names the problem a check's rule stands for (rule prefixes):
# the demo's cost analyst on line 59, "inefficient if the history list grows very large", is
# MIR008's growth in its own words, and was listed apart from it as an unconfirmed finding.
RULE_CLAIMS: list[tuple[tuple[str, ...], tuple[re.Pattern[str], ...]]] = [
    (("ASYNC", "MIR009", "MIR028"), (BLOCK_CLAIM, EVENT_LOOP_CLAIM, SYNC_CLAIM, CONSEQUENCE)),
    (("S113", "MIR010", "MIR012", "MIR027"), (TIMEOUT_CLAIM, CONSEQUENCE)),
    (("MIR008", "MIR015", "B019", "MIR031", "MIR032"), (GROWTH_CLAIM,)),
    (("MIR001", "MIR013", "MIR022"), (LOCK_CLAIM,)),
    (("MIR002", "MIR014", "SIM115", "MIR021", "MIR024", "MIR029"), (LEAK_CLAIM,)),
    (("MIR004", "MIR011", "MIR016", "MIR019"), (SCAN_CLAIM, QUADRATIC_CLAIM)),
    (("MIR003", "MIR017"), (CONCURRENT_CLAIM,)),
    (("MIR005",), (QUADRATIC_CLAIM,)),
    (("MIR006", "MIR007", "MIR018", "MIR025"), (REPEAT_CLAIM, HOIST_CLAIM, LOOP_CLAIM, PER_ITEM_CLAIM)),
    (("MIR026", "MIR030"), (_rx(r"\brace|threads?\b|\blost\b|concurren"),)),
    (("MIR020",), (_rx(r"\bretr|backoff|\bspin|hammer"),)),
]


# A design note that says the code does not have a problem a check found there (the demo's
# solution architect: "The use of `asyncio` ensures that the event loop does not block", of
# code whose requests.post calls block it); advice ("so the loop does not block") is not one.
DENIAL = _rx(r"\b(does|do|is|are|will|can)(\s+not|n't)\s+(\w+\s+){0,2}(block|stall|freez|hang|leak|grow)\w*|"
             r"\bnon-?blocking\b|\bnever\s+(blocks?|stalls?|hangs?|leaks?)\b|\bwithout blocking\b")  # fmt: skip
ADVICE = _rx(r"^\W*(use|switch|replace|make|move|wrap|consider|add|pass|run|call|change)\b|\b(should|instead|would|"
             r"could|consider|switch(ing)? to|replac\w+|to avoid|so that|must|recommend\w*|if you)\b")  # fmt: skip


def denies(rule: str, sentence: str) -> bool:
    """The sentence says the code is free of the problem `rule` finds (and is not advice)."""
    return bool(DENIAL.search(sentence)) and not ADVICE.search(sentence) and claims_rule(rule, sentence)


def claims_rule(rule: str, message: str, unknown: bool = False) -> bool:
    """The message claims the problem that `rule` finds; `unknown` for a rule no family covers."""
    families = [rxs for prefixes, rxs in RULE_CLAIMS if rule.startswith(prefixes)]
    return any(rx.search(message) for rxs in families for rx in rxs) if families else unknown


class Code:
    """One parse of the document and the questions claims ask of a line."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.parent: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parent[child] = node
        self.statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        self.methods = {n.name: n for n in ast.walk(tree) if isinstance(n, FUNCS)}

    def statement(self, line: int) -> ast.stmt | None:
        """The innermost statement starting on `line` (or holding it)."""
        on = [s for s in self.statements if s.lineno == line]
        held = on or [s for s in self.statements if s.lineno <= line <= (s.end_lineno or s.lineno)]
        return max(held, key=lambda s: s.lineno * 10_000 - (s.end_lineno or s.lineno)) if held else None

    def ancestors(self, node: ast.AST) -> list[ast.AST]:
        out = []
        while node in self.parent:
            node = self.parent[node]
            out.append(node)
        return out

    def function(self, node: ast.AST) -> ast.AST | None:
        return next((a for a in self.ancestors(node) if isinstance(a, FUNCS)), None)

    def own_nodes(self, stmt: ast.stmt) -> list[ast.AST]:
        """The statement's nodes on its own lines: a compound statement's header only."""
        if isinstance(stmt, ast.For | ast.AsyncFor):
            roots: list[ast.AST] = [stmt.target, stmt.iter]
        elif isinstance(stmt, ast.While | ast.If):
            roots = [stmt.test]
        elif isinstance(stmt, ast.With | ast.AsyncWith):
            roots = list(stmt.items)
        elif isinstance(stmt, (*FUNCS, ast.ClassDef, ast.Try)):
            roots = []
        else:
            roots = [stmt]
        return [n for r in roots for n in ast.walk(r)]

    def in_loop(self, stmt: ast.stmt) -> bool:
        """The statement runs once per iteration of a loop in its own function (or is one)."""
        if isinstance(stmt, LOOPS) or any(isinstance(n, COMPREHENSIONS) for n in self.own_nodes(stmt)):
            return True
        for a in self.ancestors(stmt):
            if isinstance(a, (*FUNCS, ast.ClassDef)):
                return False
            if isinstance(a, LOOPS):
                return True
        return False

    def blocks(self, stmt: ast.stmt) -> bool:
        """The statement makes a call that waits on the outside world, not awaited."""
        return any(
            isinstance(n, ast.Call) and not isinstance(self.parent.get(n), ast.Await)
            and ((name := callee_last(n.func)) in BLOCKERS | WAITERS or looks_like_io(name))
            for n in self.own_nodes(stmt)
        )  # fmt: skip

    def lock_body(self, stmt: ast.stmt) -> list[ast.stmt] | None:
        """The body of the `with <lock>:` holding (or opened by) the statement."""
        for a in [stmt, *self.ancestors(stmt)]:
            if isinstance(a, FUNCS):
                return None
            if isinstance(a, ast.With | ast.AsyncWith) and any(
                "lock" in ast.unparse(i.context_expr).lower() for i in a.items
            ):
                return a.body
        return None

    def does_io(self, body: list[ast.stmt], depth: int = 1) -> bool:
        """An await, or a call whose name says I/O, in `body` or (one level down) in a
        function of this module it calls."""
        for node in (n for s in body for n in ast.walk(s)):
            if isinstance(node, ast.Await):
                return True
            if isinstance(node, ast.Call):
                name = callee_last(node.func)
                if looks_like_io(name) or name in WAITERS - {"get", "run", "call"}:
                    return True
                if depth and name in self.methods and self.does_io(self.methods[name].body, depth - 1):
                    return True
        return False

    def grows_unbounded(self, stmt: ast.stmt) -> bool:
        """The statement adds to (or creates) a long-lived container — an attribute, not a
        local — that nothing in the module removes from, trims, clears or bounds; or, in a loop,
        adds to what it held before (`context = context + output`: it grows with every pass, the
        demo's re-sent context)."""
        if self.in_loop(stmt) and isinstance(accumulated(stmt), ast.Name):
            return True
        names = set()
        for n in self.own_nodes(stmt):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ADDERS:
                names.add(_attr_name(n.func.value))
            elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store):
                names.add(_attr_name(n.value))
        if isinstance(stmt, ast.Assign | ast.AnnAssign) and _empty_container(stmt.value):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names |= {_attr_name(t) for t in targets}
        names.discard(None)
        return any(not self._bounded(name) for name in names if name)

    def _bounded(self, attr: str) -> bool:
        """Something removes from, trims, clears or re-assigns `<obj>.attr` outside `__init__`,
        or it is a deque with a maxlen."""
        for n in ast.walk(self.tree):
            func = n.func if isinstance(n, ast.Call) else None
            if isinstance(func, ast.Attribute) and func.attr in REMOVERS and _attr_name(func.value) == attr:
                return True
            if isinstance(n, ast.Delete) and any(
                _attr_name(t.value if isinstance(t, ast.Subscript) else t) == attr for t in n.targets
            ):
                return True
            if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign) and n.value is not None:
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                named = [t for t in targets if _attr_name(t) == attr]
                if (
                    named
                    and isinstance(n.value, ast.Call)
                    and any(k.arg == "maxlen" for k in n.value.keywords)
                ):
                    return True
                sliced = [t for t in targets if isinstance(t, ast.Subscript) and isinstance(t.slice, ast.Slice)
                          and _attr_name(t.value) == attr]  # fmt: skip
                if sliced or (named and not _in_init(self, n)):
                    return True
        return False

    def leaks(self, stmt: ast.stmt) -> bool:
        """The statement acquires a resource outside `with`, or releases one outside `finally`
        (not one acquired in the same expression: `urlopen(req).close()` leaves nothing open)."""
        if isinstance(stmt, ast.With | ast.AsyncWith):
            return False
        for n in self.own_nodes(stmt):
            if not isinstance(n, ast.Call):
                continue
            name = callee_last(n.func)
            if name in RELEASERS and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Call):
                return False
            if name in RELEASERS:
                return not any(
                    isinstance(a, ast.Try) and _within(stmt, a.finalbody) for a in self.ancestors(stmt)
                )
            if name in ACQUIRERS or any(k.arg == "stream" for k in n.keywords):
                return True
        return False

    def unused(self, stmt: ast.stmt) -> bool:
        """Nothing in the module reads a name or attribute the statement assigns."""
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        names = {_name(t) for t in targets if t is not None} - {None}
        uses = set()
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Attribute | ast.Name) and isinstance(n.ctx, ast.Load):
                uses.add(_name(n))
            elif isinstance(n, ast.AugAssign) and n is not stmt:  # `self.failures += 1` uses it
                uses.add(_name(n.target))
        return bool(names) and not names & uses

    def waits_without_timeout(self, stmt: ast.stmt) -> bool:
        return any(
            (callee_last(c.func) in WAITERS or looks_like_io(callee_last(c.func)))
            and not any(k.arg == "timeout" for k in c.keywords)
            and not (isinstance(c.func, ast.Attribute) and _name(c.func.value) == "asyncio")  # asyncio.run
            for c in (n for n in self.own_nodes(stmt) if isinstance(n, ast.Call))
        )

    def linear_work(self, stmt: ast.stmt) -> bool:
        """The line itself walks a collection: a membership test, a scan, a copy, a sort, a
        comprehension or a concatenation (so running it per item of a loop can be quadratic)."""
        for n in self.own_nodes(stmt):
            if isinstance(n, ast.Compare) and any(isinstance(o, ast.In | ast.NotIn) for o in n.ops):
                return True
            if isinstance(n, ast.Call) and callee_last(n.func) in LINEAR_CALLS:
                return True
            if isinstance(n, (*COMPREHENSIONS, ast.Starred)):
                return True
            # `a + b` and `s += x` may concatenate; `n += 1` and `total + 0.5` add numbers
            if (
                isinstance(n, ast.BinOp)
                and isinstance(n.op, ast.Add)
                and not (_number(n.left) or _number(n.right))
            ):
                return True
            if isinstance(n, ast.AugAssign) and isinstance(n.op, ast.Add) and not _number(n.value):
                return True
        return False

    def invariant(self, stmt: ast.stmt) -> bool:
        """The statement sits in a loop and reads no name the loop binds: it could be hoisted.
        Accumulating (`job.attempts += 1`) or collecting (`history.append(...)`) is the loop's
        own per-item work, never hoisted: the 1.5B said both should move out of a retry loop."""
        if isinstance(stmt, ast.AugAssign) or (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Call)
            and callee_last(stmt.value.func) in ADDERS
        ):
            return False
        loop = next((a for a in self.ancestors(stmt) if isinstance(a, (*LOOPS, *FUNCS, ast.ClassDef))), None)
        if not isinstance(loop, LOOPS):
            return False
        bound = {_name(n) for n in ast.walk(loop) if isinstance(getattr(n, "ctx", None), ast.Store)}
        read = {_name(n) for n in self.own_nodes(stmt) if isinstance(getattr(n, "ctx", None), ast.Load)}
        return not (read & bound - {None})

    def repeated_in(self, stmt: ast.stmt, names: set[str]) -> bool:
        """Another function (one of `names`, when the claim names any) holds the same statement."""
        own = self.function(stmt)
        same = ast.dump(stmt)
        return any(
            fn is not own and (not names or fn.name in names) and any(ast.dump(s) == same for s in ast.walk(fn))
            for fn in ast.walk(self.tree) if isinstance(fn, FUNCS)
        )  # fmt: skip

    def exits_after(self, stmt: ast.stmt, line: int) -> bool:
        """Line `line` holds a `raise` or `return` in the statement's own function, after it."""
        fn = self.function(stmt)
        exit_ = self.statement(line)
        return (
            isinstance(exit_, ast.Raise | ast.Return) and fn is not None and self.function(exit_) is fn
            and exit_.lineno > stmt.lineno
        ) or (isinstance(exit_, ast.Raise | ast.Return) and fn is None)  # fmt: skip


def _number(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Constant) and type(expr.value) in (int, float)


def _name(expr: ast.AST) -> str | None:
    return expr.attr if isinstance(expr, ast.Attribute) else expr.id if isinstance(expr, ast.Name) else None


def _attr_name(expr: ast.AST) -> str | None:
    """`self.items` / `room.history` → the attribute's name; a local name → None (a local
    container dies with its call)."""
    return expr.attr if isinstance(expr, ast.Attribute) else None


def _empty_container(value: ast.AST | None) -> bool:
    if isinstance(value, ast.List | ast.Dict | ast.Set):
        return not (getattr(value, "elts", None) or getattr(value, "keys", None))
    if isinstance(value, ast.Call) and callee_last(value.func) in EMPTY_CONTAINERS:
        return not any(k.arg == "maxlen" for k in value.keywords)
    return False


def _in_init(code: Code, node: ast.AST) -> bool:
    fn = code.function(node)
    return isinstance(fn, FUNCS) and fn.name == "__init__"


def _within(stmt: ast.stmt, body: list[ast.stmt]) -> bool:
    return any(s.lineno <= stmt.lineno <= (s.end_lineno or s.lineno) for s in body)


def _is_async(code: Code, stmt: ast.stmt) -> bool:
    return isinstance(code.function(stmt), ast.AsyncFunctionDef)


def _stalls_loop(code: Code, stmt: ast.stmt) -> bool:
    """The line makes an un-awaited waiting call in an async function."""
    return _is_async(code, stmt) and code.blocks(stmt)


# (what the message claims, the precondition on its line, why it is set aside when that fails)
CLAIMS: list[tuple[re.Pattern[str], Callable[[Code, ast.stmt], bool], str]] = [
    (LOOP_CLAIM, lambda c, s: c.in_loop(s), "says it repeats in a loop; the line is in no loop"),
    # the 1.5B's cost analyst on a constructor: "creates a new session ... can lead to repeated work"
    (REPEAT_CLAIM, lambda c, s: c.in_loop(s) or not _in_init(c, s),
     "says the work repeats; the line runs once, when the object is made"),
    (EVENT_LOOP_CLAIM, _stalls_loop,
     "says it stalls the event loop; the line makes no un-awaited waiting call in an async function"),
    (LOCK_CLAIM, lambda c, s: (body := c.lock_body(s)) is not None and c.does_io(body),
     "says a lock is held across waiting; no lock held there waits on I/O"),
    (GROWTH_CLAIM, lambda c, s: c.grows_unbounded(s),
     "says something grows without bound; the line adds to no long-lived container that is never trimmed"),
    (LEAK_CLAIM, lambda c, s: c.leaks(s), "says something is not released; the line opens nothing outside `with`"
     " and closes nothing outside `finally`"),
    (TIMEOUT_CLAIM, lambda c, s: c.waits_without_timeout(s), "says it can hang; the line makes no waiting call"
     " without a timeout"),
    (UNUSED_CLAIM, lambda c, s: c.unused(s), "says it is never used; the module reads what the line assigns"),
    (CONCURRENT_CLAIM, lambda c, s: _is_async(c, s) and c.in_loop(s),
     "says the work could run concurrently; the line is not in a loop of an async function"),
    (SCAN_CLAIM, lambda c, s: c.linear_work(s), "says it searches a collection; the line tests no membership and"
     " scans nothing"),
    (QUADRATIC_CLAIM, lambda c, s: c.in_loop(s) and c.linear_work(s),
     "says it is quadratic; the line does no scan, copy, sort or concatenation inside a loop"),
    (HOIST_CLAIM, lambda c, s: c.invariant(s),
     "says it could move out of the loop; the line is in no loop or reads what the loop changes"),
]  # fmt: skip
QUANTIFIERS = frozenset({"the", "each", "every", "all", "other", "several", "multiple", "many", "both", "these",
                         "those", "different", "same", "and"})  # fmt: skip
EXIT_LINE = _rx(r"\b(raise|return)`?\s+(on|at) line (\d+)")


def parse(source: str) -> Code | None:
    try:
        return Code(ast.parse(source))
    except SyntaxError:
        return None


def names_problem(message: str, consequences: bool = False) -> bool:
    """Whether `message` names a problem at all (and, with `consequences`, what one does to
    the user), rather than describing what the code does."""
    claims = [rx for rx, _, _ in CLAIMS] + [BLOCK_CLAIM] + ([CONSEQUENCE] if consequences else [])
    return bool(PROBLEM.search(message)) or any(rx.search(message) for rx in claims)


def refuted(code: Code | None, line: int, message: str, fix: str = "") -> str | None:
    """Why the finding's `message` about `line` does not hold, or None when nothing in the
    code contradicts it (a document that is not Python is never refuted). A `fix` that moves
    the line out of its loop claims the line does not change in the loop, and is held to it."""
    cut_off = CUT_OFF.search(message)
    message = STATEMENT_BLOCK.sub("", message)  # "a `with` block" claims nothing about blocking
    if NOT_A_PROBLEM.search(message):
        return "says the line is not a problem"
    if not names_problem(message):
        return "describes the line without naming a problem"
    if cut_off:
        return "cut off before naming a problem"
    if code is None:
        return None
    stmt = code.statement(line)
    if stmt is None:
        return None
    if (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    ):
        return "quotes a docstring, not code"
    claimed = [(check, why) for rx, check, why in CLAIMS if rx.search(message)]
    if HOIST_CLAIM.search(fix) and not HOIST_CLAIM.search(message):
        claimed.append(
            (Code.invariant, "its fix moves it out of the loop; the line reads what the loop changes")
        )
    lock_or_wait = LOCK_CLAIM.search(message) or TIMEOUT_CLAIM.search(message)
    if BLOCK_CLAIM.search(message) and not EVENT_LOOP_CLAIM.search(message) and not lock_or_wait:
        claimed.append(
            (_stalls_loop, "says the call blocks; no un-awaited waiting call in an async function")
        )
    if m := REPEATED_IN.search(message):
        names = set(re.findall(r"\w+", m[3])) - QUANTIFIERS
        if not code.repeated_in(stmt, names):
            return "says the line is repeated in other functions; none of them holds it"
    for m in EXIT_LINE.finditer(message):
        if not code.exits_after(stmt, int(m[3])):
            return f"points to a `{m[1]}` on line {m[3]}, which is no later exit from the line's function"
    return next((why for check, why in claimed if not check(code, stmt)), None)
