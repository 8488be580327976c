"""Mirador's own checks: small, general rules on Python's ast for problems ruff has no rule for.

Each rule is a function `(Module) -> Iterator[Hit]`. They aim for precision over
recall: a rule that is unsure says nothing (see eval/checks_precision.py).
"""

from __future__ import annotations

import ast
import builtins
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeGuard


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    title: str  # what it catches, for tables and --help
    message: str  # the finding's message: what and why, one line


RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "MIR001",
            "concurrency",
            "threading lock held across await",
            "a threading lock is held across an await: every other task and thread waits on it while "
            "this one is suspended (deadlock if one of them is on this event loop); use asyncio.Lock",
        ),
        Rule(
            "MIR002",
            "resources",
            "lock, file or connection not released on every path",
            "{what} is released later in this block, but {exit} on line {exit_line} skips the "
            "release; use `with` or try/finally",
        ),
        Rule(
            "MIR003",
            "concurrency",
            "independent awaits run one after another in a loop",
            "each iteration awaits {call}() for one item and nothing is carried between iterations: "
            "the calls run one after another; run them concurrently (asyncio.gather / TaskGroup, bounded if needed)",
        ),
        Rule(
            "MIR004",
            "cost",
            "list searched inside a loop",
            "`{op}` on the list `{name}` inside a loop scans the whole list each time (quadratic); "
            "keep a set or dict alongside for lookups",
        ),
        Rule(
            "MIR005",
            "cost",
            "string built with += in a loop",
            "the string `{name}` is built with + inside a loop: each step copies it (quadratic in the "
            "worst case); append the pieces to a list and ''.join() once",
        ),
        Rule(
            "MIR006",
            "cost",
            "loop-invariant expensive expression",
            "`{expr}` is computed again on every iteration but nothing it reads changes in the loop; "
            "compute it once before the loop",
        ),
        Rule(
            "MIR007",
            "cost",
            "N+1 query or request per item",
            "one {what} per item of the loop (N+1 round trips); fetch or write them in one batched call "
            "({fix})",
        ),
        Rule(
            "MIR008",
            "resources",
            "collection that only grows",
            "`{owner}{attr}` is added to in {method}() and nothing in the {scope} ever removes from, trims "
            "or clears it: it grows for the {life}'s whole life; bound it (maxlen, a cap, eviction) or clear it",
        ),
        Rule(
            "MIR009",
            "concurrency",
            "blocking I/O (a sync client, SMTP, DNS) inside async def",
            "`{call}` blocks on {what} inside async def: it stops the event loop until it returns; {fix}",
        ),
        Rule(
            "MIR010",
            "resources",
            "network call with no timeout",
            "{what} has no timeout: a silent peer hangs this call forever; {fix}",
        ),
        Rule(
            "MIR011",
            "cost",
            "list used as a set",
            "every `in {name}` scans the whole list, which keeps growing: a list used as a set, quadratic "
            "over a run; keep a set (or a dict, to keep order)",
        ),
        Rule(
            "MIR012",
            "resources",
            "child process's output awaited with no timeout",
            "{what} waits for a child process with no timeout: a stuck process hangs this handler forever; "
            "wrap it in asyncio.wait_for (and kill the process on timeout)",
        ),
        Rule(
            "MIR013",
            "concurrency",
            "lock held across network I/O",
            "{call} waits on the network while holding the lock `{lock}`: every thread that needs the lock "
            "waits for the slowest peer; do the I/O before or after the locked section",
        ),
        Rule(
            "MIR014",
            "resources",
            "close skipped when an earlier line raises or returns",
            "{why} leaves without closing `{name}` (`{closer}` on line {closed} is not in a `finally`), "
            "so it stays open; use `with` or try/finally",
        ),
        Rule(
            "MIR016",
            "cost",
            "list used as a queue from the front",
            "`{call}` {where} shifts every later item of the list `{name}`, O(n) each time: quadratic "
            "over a run; use collections.deque and its {fix}",
        ),
        Rule(
            "MIR017",
            "concurrency",
            "independent awaits one after another",
            "{first} (line {first_line}) and {second} wait one after the other though neither needs the "
            "other's result: run them together (asyncio.gather or a TaskGroup)",
        ),
        Rule(
            "MIR018",
            "cost",
            "the same thing loaded again on every call",
            "`{call}` {what} again on every call of {func}(), which runs {how}, though nothing it reads "
            "changes between calls; load it once (in __init__, or cached) and reuse it",
        ),
        Rule(
            "MIR019",
            "cost",
            "a whole list sorted per item to take one end",
            "`{expr}` sorts the whole list on every pass of the loop only to take its {end} item: "
            "O(k log k) each time where {fix} with the same key is one O(k) pass",
        ),
        Rule(
            "MIR020",
            "resources",
            "retry loop with no backoff",
            "the `{loop}` loop retries `{call}` after {caught} with no sleep or backoff{limit}: while the "
            "service is down or asking callers to slow down, every caller hammers it {outcome}; sleep with "
            "growing backoff and give up after a few attempts",
        ),
        Rule(
            "MIR021",
            "resources",
            "pool never shut down",
            "`{name} = {made}` is never closed, joined or shut down (no `with`): its {what} outlive the "
            "call, and an exception leaves them running; use `with {made} as {name}:`",
        ),
        Rule(
            "MIR022",
            "concurrency",
            "callbacks called while holding a lock",
            "each of `{listeners}` is called while `{lock}` is held: every thread that needs the lock "
            "waits for the slowest listener, and one that takes the lock itself (or another) deadlocks; "
            "copy the list under the lock and call them after releasing it",
        ),
        Rule(
            "MIR023",
            "concurrency",
            "a lock or semaphore made on every call",
            "`{name} = {made}` makes a new {what} on every call of {func}(), so each call holds its own "
            "and none waits for another: it limits nothing; make it once (an attribute or a module "
            "constant) and share it",
        ),
        Rule(
            "MIR024",
            "resources",
            "temporary file left behind on failure",
            "`{cleanup}` removes the temporary file made on line {made} only when everything before it "
            "succeeds: an exception in between skips it and the file stays on disk; remove it in a "
            "`finally` (or use a TemporaryDirectory/NamedTemporaryFile context)",
        ),
        Rule(
            "MIR025",
            "cost",
            "commit after every row",
            "`{call}` inside the loop over `{rows}` makes every row its own transaction (a journal write "
            "and fsync each): commit once after the loop, or every few thousand rows",
        ),
        Rule(
            "MIR026",
            "concurrency",
            "shared state updated from worker threads without a lock",
            "`{target} {op}= …` in {func}(), which runs on several worker threads at once, is a "
            "read-modify-write with no lock held: concurrent updates are lost; take a lock around it, "
            "or count in each worker and add up the results",
        ),
        Rule(
            "MIR027",
            "resources",
            "child process left running when its wait times out",
            "{call} gives up after its timeout, but nothing in {func}() kills `{proc}`: the child keeps "
            "running (and holding its pipes and files) after the caller has moved on; on timeout call "
            "`{proc}.kill()`, then `{proc}.communicate()` to reap it",
        ),
        Rule(
            "MIR028",
            "concurrency",
            "slow password hashing inside async def",
            "{call} is CPU-bound work, slow on purpose (a key derivation), inside async def: it blocks "
            "the event loop, which serves no other request until it returns; run it in a thread "
            "(`await asyncio.to_thread(...)`) or a process pool",
        ),
        Rule(
            "MIR029",
            "resources",
            "background task that stop/close never cancels",
            "`self.{attr}` holds the task {made} starts, but {stop}() never cancels or awaits it: the "
            "task runs on after the object is stopped, using what {stop}() has closed; cancel it there "
            "and await it",
        ),
        Rule(
            "MIR030",
            "concurrency",
            "os.chdir on a worker thread",
            "`os.chdir()` in {func}(), which runs on a worker thread: the working directory belongs to "
            "the whole process, so it moves every other thread's relative paths mid-job; use absolute "
            "paths (and `cwd=` for child processes) instead",
        ),
        Rule(
            "MIR031",
            "resources",
            "whole file read into memory to hash it",
            "{call} reads the whole file into memory only to hash it: memory grows with the file (a "
            "video, a dump); hash it in chunks (`hashlib.file_digest(f, ...)`, or `update()` in a read "
            "loop)",
        ),
        Rule(
            "MIR032",
            "resources",
            "whole file read into memory only to be streamed",
            "`{name} = {call}` holds the whole file in memory only to {use}: memory grows with the file "
            "(a day's log, a dump); {fix}",
        ),
        Rule(
            "MIR015",
            "resources",
            "expired entries never swept",
            "entries of `self.{attr}` expire, but one is dropped only when its own key is {how}: a key "
            "never touched again stays for the object's whole life, so memory grows with every new key; "
            "sweep expired entries (or bound the dict)",
        ),
    )
}


@dataclass(frozen=True)
class Hit:
    rule: str
    line: int
    col: int  # 0-based, as ast gives it
    end_line: int
    fields: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def message(self) -> str:
        return RULES[self.rule].message.format(**self.fields)


def _hit(rule: str, node: ast.AST, **fields: object) -> Hit:
    line = getattr(node, "lineno", 1)
    return Hit(
        rule,
        line,
        getattr(node, "col_offset", 0),
        getattr(node, "end_lineno", line) or line,
        {k: str(v) for k, v in fields.items()},
    )


# ---------------------------------------------------------------- ast helpers

FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
LOOPS = (ast.For, ast.AsyncFor, ast.While)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
EXITS = (ast.Return, ast.Raise, ast.Break, ast.Continue)


_memo = threading.local()


def walk_local(node: ast.AST) -> list[ast.AST]:
    """Descendants of node, not entering nested functions, lambdas or classes (memoised per run)."""
    cache: dict[int, list[ast.AST]] | None = getattr(_memo, "cache", None)
    if cache is not None and id(node) in cache:
        return cache[id(node)]
    out: list[ast.AST] = []
    stack = list(ast.iter_child_nodes(node))
    while stack:
        n = stack.pop()
        out.append(n)
        if not isinstance(n, SCOPES):
            stack.extend(ast.iter_child_nodes(n))
    if cache is not None:
        cache[id(node)] = out
    return out


def walk_stmts(stmts: Iterable[ast.AST]) -> Iterator[ast.AST]:
    for s in stmts:
        yield s
        if not isinstance(s, SCOPES):
            yield from walk_local(s)


def names_read(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def target_names(target: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def assigned_names(stmts: Iterable[ast.AST]) -> set[str]:
    """Names bound anywhere in stmts (not inside nested scopes, but counting their own names)."""
    out: set[str] = set()
    for n in walk_stmts(stmts):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store | ast.Del):
            out.add(n.id)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.ExceptHandler):
            if n.name:
                out.add(n.name)
        elif isinstance(n, ast.alias):
            out.add((n.asname or n.name).split(".")[0])
    return out


def key_of(expr: ast.AST) -> str | None:
    """A stable name for a simple receiver: `x`, `self.x`, `self.x.y`."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        base = key_of(expr.value)
        return f"{base}.{expr.attr}" if base else None
    return None


def callee_last(func: ast.AST) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def root_name(expr: ast.AST) -> str | None:
    while isinstance(expr, ast.Attribute | ast.Subscript | ast.Call):
        expr = expr.func if isinstance(expr, ast.Call) else expr.value
    return expr.id if isinstance(expr, ast.Name) else None


def is_constant_collection(expr: ast.AST) -> bool:
    return isinstance(expr, ast.Tuple | ast.List | ast.Set) and all(
        isinstance(e, ast.Constant) for e in expr.elts
    )


def has_kw(call: ast.Call, name: str) -> bool:
    return any(k.arg == name or k.arg is None for k in call.keywords)


def block_exits(stmts: list[ast.stmt]) -> bool:
    """The block always leaves the loop or function at its end."""
    return bool(stmts) and isinstance(stmts[-1], ast.Return | ast.Raise | ast.Break)


def unparse(node: ast.AST, limit: int = 60) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------- what objects are

# constructor (dotted, after import aliases) -> what the object is
CONSTRUCTORS: dict[str, str] = {
    "requests.Session": "requests_session",
    "requests.session": "requests_session",
    "requests.sessions.Session": "requests_session",
    "httpx.Client": "httpx_client",
    "sqlite3.connect": "sqlite_conn",
    "sqlite3.dbapi2.connect": "sqlite_conn",
    "open": "file",
    "io.open": "file",
    "builtins.open": "file",
    "codecs.open": "file",
    "gzip.open": "file",
    "bz2.open": "file",
    "lzma.open": "file",
    "socket.socket": "socket",
    "socket.create_connection": "socket",
    "threading.Lock": "lock",
    "threading.RLock": "lock",
    "threading.Semaphore": "lock",
    "threading.BoundedSemaphore": "lock",
    "threading.Condition": "lock",
    "multiprocessing.Lock": "lock",
    "multiprocessing.RLock": "lock",
    "smtplib.SMTP": "smtp",
    "smtplib.SMTP_SSL": "smtp",
    "smtplib.LMTP": "smtp",
    "psycopg.connect": "db_conn",
    "psycopg.Connection.connect": "db_conn",
    "psycopg2.connect": "db_conn",
    "pymysql.connect": "db_conn",
    "MySQLdb.connect": "db_conn",
    "mysql.connector.connect": "db_conn",
    "redis.Redis": "redis_client",
    "redis.StrictRedis": "redis_client",
    "redis.client.Redis": "redis_client",
    "redis.from_url": "redis_client",
    "redis.Redis.from_url": "redis_client",
    "redis.StrictRedis.from_url": "redis_client",
    "redis.asyncio.Redis": "aredis_client",
    "redis.asyncio.StrictRedis": "aredis_client",
    "redis.asyncio.client.Redis": "aredis_client",
    "redis.asyncio.from_url": "aredis_client",
    "redis.asyncio.Redis.from_url": "aredis_client",
    "aioredis.Redis": "aredis_client",
    "aioredis.StrictRedis": "aredis_client",
    "aioredis.from_url": "aredis_client",
    "aioredis.Redis.from_url": "aredis_client",
    "boto3.client": "boto3_client",
    "boto3.resource": "boto3_resource",
    "boto3.Session": "boto3_session",
    "boto3.session.Session": "boto3_session",
    "PIL.Image.open": "pil_image",
    "reportlab.pdfgen.canvas.Canvas": "pdf_canvas",
}

# type annotation (dotted, after import aliases) -> what a parameter or attribute so annotated is
ANNOTATED: dict[str, str] = {
    "requests.Session": "requests_session",
    "requests.sessions.Session": "requests_session",
    "httpx.Client": "httpx_client",
    "sqlite3.Connection": "sqlite_conn",
    "sqlite3.Cursor": "db_cursor",
    "psycopg.Connection": "db_conn",
    "psycopg.Cursor": "db_cursor",
    "psycopg2.extensions.connection": "db_conn",
    "psycopg2.extensions.cursor": "db_cursor",
    "pymysql.connections.Connection": "db_conn",
    "pymysql.cursors.Cursor": "db_cursor",
    "redis.Redis": "redis_client",
    "redis.StrictRedis": "redis_client",
    "redis.client.Redis": "redis_client",
    "redis.asyncio.Redis": "aredis_client",
    "redis.asyncio.client.Redis": "aredis_client",
    "smtplib.SMTP": "smtp",
    "smtplib.SMTP_SSL": "smtp",
}  # not socket.socket: asyncio code hands raw sockets around in non-blocking mode


# (what the receiver is, method) -> what the object the method returns is: `conn.cursor()`,
# `boto3.Session().client("s3")`; a boto3 resource's capitalised factories (`s3.Bucket(name)`)
# make sub-resources, handled in derived_kind.
DERIVED: dict[tuple[str, str], str] = {
    ("db_conn", "cursor"): "db_cursor",
    ("sqlite_conn", "cursor"): "db_cursor",
    ("boto3_session", "client"): "boto3_client",
    ("boto3_session", "resource"): "boto3_resource",
    ("redis_client", "pipeline"): "redis_pipeline",
}


def derived_kind(base: str | None, method: str) -> str | None:
    if base is None:
        return None
    if base == "boto3_resource" and method[:1].isupper():
        return "boto3_resource"  # s3.Bucket(name), dynamodb.Table(name): a sub-resource
    return DERIVED.get((base, method))


DESCRIBE = {
    "requests_session": "a requests.Session",
    "httpx_client": "a sync httpx.Client",
    "sqlite_conn": "a sqlite3 connection",
    "file": "a file opened with open()",
    "socket": "a blocking socket",
    "lock": "a threading lock",
    "smtp": "an smtplib connection",
    "db_conn": "a sync database connection",
    "db_cursor": "a sync database cursor",
    "redis_client": "a sync redis client",
    "redis_pipeline": "a sync redis pipeline",
    "boto3_client": "a boto3 client (sync)",
    "boto3_resource": "a boto3 resource (sync)",
    "pil_image": "Pillow decoding, resizing or encoding an image (CPU-bound)",
    "pdf_canvas": "ReportLab drawing and writing a PDF (CPU-bound)",
}

HTTP_METHODS = frozenset(
    {"get", "post", "put", "patch", "delete", "head", "options", "request", "send", "stream"}
)
BLOCKING_METHODS: dict[str, frozenset[str]] = {
    "requests_session": HTTP_METHODS,
    "httpx_client": HTTP_METHODS,
    "sqlite_conn": frozenset({"execute", "executemany", "executescript", "commit", "rollback", "backup"}),
    "file": frozenset({"read", "readline", "readlines", "write", "writelines", "flush"}),
    "socket": frozenset({"recv", "recv_into", "recvfrom", "send", "sendall", "sendto", "connect", "accept"}),
    "smtp": frozenset({"connect", "login", "auth", "starttls", "ehlo", "helo", "ehlo_or_helo_if_needed", "noop",
                       "sendmail", "send_message", "mail", "rcpt", "data", "docmd", "verify", "rset", "quit"}),
    "db_conn": frozenset({"execute", "executemany", "commit", "rollback"}),
    "redis_pipeline": frozenset({"execute"}),
    "pdf_canvas": frozenset({"save", "showPage", "drawImage"}),
    "pil_image": frozenset({"load", "convert", "thumbnail", "resize", "save", "rotate", "transpose", "filter",
                            "reduce", "tobytes", "quantize"}),
    "db_cursor": frozenset({"execute", "executemany", "executescript", "callproc", "copy_expert", "copy_from",
                            "copy_to", "copy"}),
}  # fmt: skip
# Objects where every method talks to the server except these few (a command per method).
LOCAL_METHODS: dict[str, frozenset[str]] = {
    "redis_client": frozenset({"pipeline", "pubsub", "lock", "register_script", "get_encoder", "get_connection_kwargs",
                               "get_retry", "set_retry", "set_response_callback", "close", "monitor"}),
    "boto3_client": frozenset({"get_paginator", "get_waiter", "can_paginate", "generate_presigned_url",
                               "generate_presigned_post", "close"}),
    "boto3_resource": frozenset({"get_available_subresources", "close"}),
}  # fmt: skip


def blocks(kind: str, method: str) -> bool:
    """`method` on an object of `kind` waits on the network or disk."""
    if kind in LOCAL_METHODS:
        return (
            method not in LOCAL_METHODS[kind]
            and not method.startswith("_")
            and (kind != "boto3_resource" or method[:1].islower())
        )
    return method in BLOCKING_METHODS.get(kind, ())


# Calls that block wherever they are made (ruff's ASYNC rules have no word for them)
BLOCKING_CALLS: dict[str, str] = {
    "socket.gethostbyname": "a synchronous DNS lookup",
    "socket.gethostbyname_ex": "a synchronous DNS lookup",
    "socket.gethostbyaddr": "a synchronous DNS lookup",
    "socket.getaddrinfo": "a synchronous DNS lookup",
    "socket.getnameinfo": "a synchronous DNS lookup",
    "socket.getfqdn": "a synchronous DNS lookup",
    "socket.create_connection": "a blocking connect (and DNS lookup)",
    "psycopg.connect": "a database connect",
    "psycopg2.connect": "a database connect",
    "pymysql.connect": "a database connect",
    "MySQLdb.connect": "a database connect",
    "smtplib.SMTP": "an SMTP connect",
    "smtplib.SMTP_SSL": "an SMTP connect",
    "smtplib.LMTP": "an SMTP connect",
    # (not Image.open: it reads only the header; the pixels are decoded by the first transform)
    "PIL.ImageOps.exif_transpose": "Pillow decoding and transforming an image (CPU-bound)",
    "PIL.ImageOps.fit": "Pillow decoding and resizing an image (CPU-bound)",
    "PIL.ImageOps.contain": "Pillow decoding and resizing an image (CPU-bound)",
    "PIL.ImageOps.pad": "Pillow decoding and resizing an image (CPU-bound)",
}
OFFLOADERS = frozenset({"to_thread", "run_in_executor", "run_sync"})


class Module:
    """A parsed file and what its simple assignments say about its objects."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.aliases = self._aliases(tree)
        self.parents: dict[ast.AST, ast.AST] = {}
        self.nodes: list[ast.AST] = list(ast.walk(tree))
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self._functions = [n for n in self.nodes if isinstance(n, FUNCS)]
        self.classes = [n for n in self.nodes if isinstance(n, ast.ClassDef)]
        self.module_objects = self._objects(tree.body)
        self.per_event_names: set[str] | None = None  # filled by _called_per_event
        self.repeated_names: set[str] | None = None  # filled by _repeated_names
        self.per_item_names: set[str] | None = None  # filled by _per_item_reached
        self.call_sites: list[CallSite] | None = None  # filled by call_sites
        self.readers: set[str] | None = None  # filled by _readers
        self.fetchers: set[str] | None = None  # filled by _fetched_by_helper
        self.list_helpers: set[str] | None = None  # filled by _list_helpers
        self.class_objects: dict[ast.ClassDef, dict[str, str]] = {}
        self.func_objects: dict[ast.AST, dict[str, str]] = {}
        for node in self.nodes:
            if isinstance(node, ast.ClassDef):
                found: dict[str, str] = {}
                for item in node.body:
                    if isinstance(item, FUNCS):
                        for k, v in self._objects(item.body).items():
                            if k.startswith("self."):
                                found.setdefault(k, v)
                        params = {
                            a.arg: what
                            for a in [*item.args.posonlyargs, *item.args.args, *item.args.kwonlyargs]
                            if a.annotation is not None and (what := self.annotated(a.annotation))
                        }
                        for n in walk_local(item) if params else ():
                            # `self.session = session`, the parameter annotated `requests.Session`
                            if (
                                isinstance(n, ast.Assign)
                                and isinstance(n.value, ast.Name)
                                and n.value.id in params
                            ):
                                for t in n.targets:
                                    tk = key_of(t)
                                    if tk and tk.startswith("self."):
                                        found.setdefault(tk, params[n.value.id])
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        what = self.annotated(
                            item.annotation
                        )  # a dataclass field: `conn: sqlite3.Connection`
                        if what:
                            found.setdefault(f"self.{item.target.id}", what)
                self.class_objects[node] = found
            elif isinstance(node, FUNCS):
                local = {k: v for k, v in self._objects(node.body).items() if not k.startswith("self.")}
                a = node.args
                for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                    what = self.annotated(arg.annotation) if arg.annotation is not None else None
                    if what:
                        local.setdefault(arg.arg, what)  # `async def f(conn: psycopg.Connection)`
                self.func_objects[node] = local
        bases = {b for b, _ in DERIVED} | {"boto3_resource"}
        if any(
            kind in bases
            for found in (self.module_objects, *self.class_objects.values(), *self.func_objects.values())
            for kind in found.values()
        ):
            self._derive()

    def _derive(self) -> None:
        """`cur = conn.cursor()`, `s3 = session.client("s3")`: objects a known object's method makes."""
        for n in self.nodes:
            pairs: list[tuple[ast.AST, ast.AST | None]] = []
            if isinstance(n, ast.Assign):
                pairs = [(t, n.value) for t in n.targets]
            elif isinstance(n, ast.With | ast.AsyncWith):
                pairs = [(i.optional_vars, i.context_expr) for i in n.items if i.optional_vars is not None]
            for target, value in pairs:
                key = key_of(target)
                if not (key and isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)):
                    continue
                what = derived_kind(self.object_kind(value.func.value, n), value.func.attr)
                if what is None:
                    continue
                if key.startswith("self."):
                    cls = self.enclosing(n, (ast.ClassDef,))
                    if isinstance(cls, ast.ClassDef):
                        self.class_objects[cls].setdefault(key, what)
                    continue
                func = self.enclosing(n, FUNCS)
                (self.func_objects[func] if func is not None else self.module_objects).setdefault(key, what)

    @staticmethod
    def _aliases(tree: ast.Module) -> dict[str, str]:
        out: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        out[a.asname] = a.name
                    else:
                        top = a.name.split(".")[0]
                        out[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
        return out

    def dotted(self, expr: ast.AST) -> str | None:
        if isinstance(expr, ast.Name):
            return self.aliases.get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.dotted(expr.value)
            return f"{base}.{expr.attr}" if base else None
        return None

    def constructed(self, value: ast.AST | None) -> str | None:
        if isinstance(value, ast.Call):
            name = self.dotted(value.func)
            if name in CONSTRUCTORS:
                return CONSTRUCTORS[name]
        return None

    def annotated(self, ann: ast.AST | None) -> str | None:
        """What an annotation (`requests.Session`, `Optional[psycopg.Connection]`, `"Redis | None"`) says."""
        if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
            try:
                ann = ast.parse(ann.value, mode="eval").body
            except SyntaxError:
                return None
        if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
            sides = [
                x for x in (ann.left, ann.right) if not (isinstance(x, ast.Constant) and x.value is None)
            ]
            ann = sides[0] if len(sides) == 1 else None
        elif isinstance(ann, ast.Subscript) and callee_last(ann.value) == "Optional":
            ann = ann.slice
        name = self.dotted(ann) if ann is not None else None
        return ANNOTATED.get(name) if name else None

    def _objects(self, stmts: list[ast.stmt]) -> dict[str, str]:
        found: dict[str, str] = {}
        for n in walk_stmts(stmts):
            pairs: list[tuple[ast.AST, ast.AST | None]] = []
            if isinstance(n, ast.Assign):
                pairs = [(t, n.value) for t in n.targets]
            elif isinstance(n, ast.AnnAssign):
                pairs = [(n.target, n.value)]
            elif isinstance(n, ast.With | ast.AsyncWith):
                pairs = [(i.optional_vars, i.context_expr) for i in n.items if i.optional_vars is not None]
            for target, value in pairs:
                what = self.constructed(value)
                if what is None and isinstance(n, ast.AnnAssign):
                    what = self.annotated(n.annotation)
                key = key_of(target)
                if what and key:
                    found.setdefault(key, what)
        return found

    def enclosing(self, node: ast.AST, kinds: tuple[type, ...]) -> ast.AST | None:
        cur = self.parents.get(node)
        while cur is not None and not isinstance(cur, kinds):
            cur = self.parents.get(cur)
        return cur

    def object_kind(self, expr: ast.AST, at: ast.AST) -> str | None:
        """What the receiver `expr` (seen at node `at`) was constructed as, if a simple assignment says."""
        key = key_of(expr)
        if key is None:
            made = self.constructed(expr)
            if made is None and isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
                return derived_kind(self.object_kind(expr.func.value, at), expr.func.attr)
            return made
        if key.startswith("self."):
            cls = self.enclosing(at, (ast.ClassDef,))
            return self.class_objects.get(cls, {}).get(key) if isinstance(cls, ast.ClassDef) else None
        func = self.enclosing(at, FUNCS)
        while func is not None:
            if key in self.func_objects.get(func, {}):
                return self.func_objects[func][key]
            func = self.enclosing(func, FUNCS)
        return self.module_objects.get(key)

    def functions(self) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
        return self._functions


def is_lockish(mod: Module, expr: ast.AST, at: ast.AST) -> bool:
    if mod.object_kind(expr, at) == "lock":
        return True
    key = key_of(expr)
    if key is None:
        return False
    last = key.rsplit(".", 1)[-1].lower()
    return "lock" in last or "mutex" in last


def contains_await(stmts: Iterable[ast.AST]) -> ast.AST | None:
    for n in walk_stmts(stmts):
        if isinstance(n, ast.Await | ast.AsyncFor | ast.AsyncWith):
            return n
    return None


def _calls_method(stmt: ast.AST, key: str, method: str) -> bool:
    for n in walk_stmts([stmt]):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr == method
            and key_of(n.func.value) == key
        ):
            return True
    return False


def _statement_lists(node: ast.AST) -> Iterator[list[ast.stmt]]:
    """Every statement list (bodies, else, finally, handlers) inside node, not in nested scopes."""
    for n in [node, *walk_local(node)]:
        if isinstance(n, SCOPES) and n is not node:
            continue
        for attr in ("body", "orelse", "finalbody"):
            stmts = getattr(n, attr, None)
            if isinstance(stmts, list) and stmts and isinstance(stmts[0], ast.stmt):
                yield stmts
        if isinstance(n, ast.Match):
            for case in n.cases:
                yield case.body


# ------------------------------------------------------------------ rules


def mir001_lock_across_await(mod: Module) -> Iterator[Hit]:
    for func in mod.functions():
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        for node in walk_local(func):
            if isinstance(node, ast.With):
                for item in node.items:
                    if is_lockish(mod, item.context_expr, node) and contains_await(node.body):
                        yield _hit("MIR001", node)
                        break
        for stmts in _statement_lists(func):
            for i, stmt in enumerate(stmts):
                call = stmt.value if isinstance(stmt, ast.Expr) else None
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "acquire"
                    and is_lockish(mod, call.func.value, stmt)
                ):
                    continue
                key = key_of(call.func.value)
                if key is None:
                    continue
                for later in stmts[i + 1 :]:
                    releases = _calls_method(later, key, "release")
                    body = later.body if releases and isinstance(later, ast.Try) else [later]
                    if contains_await(body):
                        yield _hit("MIR001", stmt)
                        break
                    if releases:
                        break


def method_statement(s: ast.stmt) -> tuple[ast.Call, ast.Attribute] | None:
    """A statement that is only a method call, awaited or not (`x.close()`, `await
    pool.release(conn)`): the call and its method."""
    call = (
        s.value.value
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Await)
        else getattr(s, "value", None)
    )
    if isinstance(s, ast.Expr) and isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
        return call, call.func
    return None


def _is_release(s: ast.stmt, key: str, release: str) -> bool:
    """Whether `s` is the statement `<key>.<release>()` (or `await <key>.<release>()`)."""
    found = method_statement(s)
    return found is not None and found[1].attr == release and key_of(found[1].value) == key


def _exit_in(stmts: list[ast.stmt], key: str, release: str, in_loop: bool) -> ast.stmt | None:
    """The first statement in stmts that leaves the block while skipping `key.release()`."""
    for s in stmts:
        if _is_release(s, key, release):
            return None  # released on this path before anything leaves
        if isinstance(s, ast.Return):
            return s
        if isinstance(s, ast.Raise):
            return s
        if isinstance(s, ast.Break | ast.Continue) and not in_loop:
            return s
        if isinstance(s, SCOPES):
            continue
        if isinstance(s, ast.Try | ast.TryStar):
            if any(_calls_method(f, key, release) for f in s.finalbody):
                continue
            inner = s.body + s.orelse
            found = _exit_in(inner, key, release, in_loop)
            if found is not None and not (isinstance(found, ast.Raise) and s.handlers):
                return found
            for h in s.handlers:
                found = _exit_in(h.body, key, release, in_loop)
                if found is not None:
                    return found
            found = _exit_in(s.finalbody, key, release, in_loop)
            if found is not None:
                return found
            continue
        if isinstance(s, ast.With | ast.AsyncWith) and any(key_of(i.context_expr) == key for i in s.items):
            continue
        loop = isinstance(s, LOOPS)
        for attr in ("body", "orelse"):
            sub = getattr(s, attr, None)
            if isinstance(sub, list):
                found = _exit_in(sub, key, release, in_loop or (loop and attr == "body"))
                if found is not None:
                    return found
        if isinstance(s, ast.Match):
            for case in s.cases:
                found = _exit_in(case.body, key, release, in_loop)
                if found is not None:
                    return found
    return None


RELEASABLE = {"file": "a file", "sqlite_conn": "a connection", "socket": "a socket"}


ASYNC_LOCKS = frozenset({"asyncio.Lock", "asyncio.Semaphore", "asyncio.BoundedSemaphore", "asyncio.Condition",
                         "anyio.Lock", "anyio.Semaphore", "trio.Lock", "trio.Semaphore"})  # fmt: skip
# Calls between an acquire and its release that are not worth an exception path: they do not fail.
QUIET_CALLS = frozenset({"len", "str", "int", "float", "bool", "isinstance", "min", "max", "debug", "info",
                         "warning", "monotonic", "time", "perf_counter", "append", "get", "items", "keys", "values",
                         "dict", "list", "tuple", "set", "sorted", "repr", "format", "join"})  # fmt: skip


# Calls that fail for reasons outside the code (a query, a request, a parse, a write).
FAILING = frozenset({"execute", "executemany", "executescript", "commit", "rollback", "raise_for_status", "json",
                     "loads", "load", "dump", "write", "send", "sendall", "recv", "connect", "open", "urlopen",
                     "getresponse", "flush", "put", "post", "publish", "upload", "call"})  # fmt: skip


def _acquired(mod: Module, stmt: ast.stmt) -> str | None:
    """`x.acquire()` or `await x.acquire()` as a statement, x a lock or semaphore: x's key."""
    found = method_statement(stmt)
    if found is None or found[1].attr != "acquire" or found[0].args or found[0].keywords:
        return None  # `acquire(blocking=False)` / `acquire(timeout=...)`: the caller checks the result
    recv = found[1].value
    key = key_of(recv)
    if key is None:
        return None
    last = key.rsplit(".", 1)[-1].lower()
    made = {mod.dotted(n.value.func) for n in mod.nodes if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
            and any(key_of(t) == key for t in n.targets)}  # fmt: skip
    if is_lockish(mod, recv, stmt) or made & ASYNC_LOCKS or "sem" in last:
        return key
    return None


def _raises_between(stmts: list[ast.stmt], key: str) -> ast.Call | None:
    """The first call in stmts that can fail for reasons of its own (I/O, a query, a parse), not
    counting the lock's own methods."""
    awaited = {id(n.value) for n in walk_stmts(stmts) if isinstance(n, ast.Await)}
    calls = [n for n in walk_stmts(stmts) if isinstance(n, ast.Call) and callee_last(n.func) not in QUIET_CALLS
             and (id(n) in awaited or callee_last(n.func) in FAILING or looks_like_io(callee_last(n.func)))
             and not (isinstance(n.func, ast.Attribute) and key_of(n.func.value) == key)]  # fmt: skip
    return min(calls, key=lambda n: (n.lineno, n.col_offset), default=None)


def mir002_not_released(mod: Module) -> Iterator[Hit]:
    """`x = open(...)` or `lock.acquire()` ... `x.close()` / `lock.release()` later in the same
    block, not in a `finally`: an early return or raise between them skips the release; for a lock
    or semaphore, so does an exception from any call between them that can fail (a query, a request),
    and a lock left held stops every later acquire for good."""
    for func in mod.functions():
        for stmts in _statement_lists(func):
            for i, stmt in enumerate(stmts):
                key: str | None = _acquired(mod, stmt)
                what, release = ("the lock", "release") if key else ("", "")
                if key is None and isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                    kind = mod.constructed(stmt.value)
                    if kind in RELEASABLE:
                        key, what, release = key_of(stmt.targets[0]), RELEASABLE[kind], "close"
                if key is None:
                    continue
                for j in range(i + 1, len(stmts)):
                    later = stmts[j]
                    if _is_release(later, key, release):
                        exit_stmt = _exit_in(stmts[i + 1 : j], key, release, in_loop=False)
                        raised = _raises_between(stmts[i + 1 : j], key) if what == "the lock" else None
                        kind = "semaphore" if "sem" in key.rsplit(".", 1)[-1].lower() else "lock"
                        shown = f"{what} `{key}`" if what != "the lock" else f"the {kind} `{key}`"
                        if exit_stmt is not None:
                            word = type(exit_stmt).__name__.lower()
                            yield _hit(
                                "MIR002",
                                stmt,
                                what=shown,
                                exit=f"an early {word}",
                                exit_line=exit_stmt.lineno,
                            )
                        elif raised is not None:
                            yield _hit("MIR002", stmt, what=shown, exit=f"an exception from `{unparse(raised.func, 40)}()`",
                                       exit_line=raised.lineno)  # fmt: skip
                        break
                    if _calls_method(later, key, release) and not (
                        what == "the lock" and any(_is_release(s, key, release) for s in stmts[j + 1 :])
                    ):
                        break  # released inside a compound statement (and not after it): not this rule's shape


ASYNC_LIBS = ("asyncio.", "anyio.", "trio.")


# Reads: safe to run side by side. Writes (put, post, insert, send, ...) often depend on order, and
# generic verbs (run, call, check) say nothing about I/O: neither makes a finding.
IO_WORDS = frozenset(
    {
        "get",
        "fetch",
        "read",
        "load",
        "lookup",
        "query",
        "request",
        "download",
        "search",
        "invoke",
        "embed",
        "complete",
        "completion",
        "completions",
        "generate",
        "retrieve",
        "scrape",
        "crawl",
        "select",
        "find",
        "head",
        "resolve",
        "ping",
        "predict",
        "chat",
        "ask",
        "translate",
        "summarize",
        "transcribe",
        "http",
        "api",
        "url",
        "pull",
    }
)
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _words(name: str) -> list[str]:
    out: list[str] = []
    for part in name.strip("_").split("_"):
        word = ""
        for ch in part:
            if ch.isupper() and word:
                out.append(word.lower())
                word = ""
            word += ch
        if word:
            out.append(word.lower())
    return out


def looks_like_io(name: str) -> bool:
    """The callee's name says it talks to something outside the process (fetch_user, aget, ainvoke)."""
    words = _words(name)
    if words and words[0].startswith("a") and words[0][1:] in IO_WORDS:
        return True  # the a-prefixed async twins: ainvoke, alookup, aget
    return any(w in IO_WORDS for w in words)


def _collected(mod: Module, await_node: ast.Await) -> bool:
    """The awaited value is kept: assigned, appended, stored in a subscript."""
    parent = mod.parents.get(await_node)
    if isinstance(parent, ast.Assign | ast.AnnAssign) and parent.value is await_node:
        return True
    return (
        isinstance(parent, ast.Call)
        and isinstance(parent.func, ast.Attribute)
        and parent.func.attr in ("append", "add", "extend")
    )


SENDS = frozenset({"send", "sendall", "write", "drain", "publish", "notify", "emit", "deliver", "push", "send_json",
                   "send_text", "send_bytes", "send_str"})  # fmt: skip


def _own_async_def(mod: Module, call: ast.Call, cls: ast.AST | None) -> ast.AsyncFunctionDef | None:
    """The `async def` a call runs, when the file defines it: `f(...)`, a function of the module,
    or `self.m(...)`, a method of `cls`."""
    name = callee_last(call.func)
    if isinstance(call.func, ast.Name):
        helper = _helpers_by_name(mod).get(name)
        return helper if isinstance(helper, ast.AsyncFunctionDef) else None
    if (
        isinstance(call.func, ast.Attribute)
        and root_name(call.func.value) == "self"
        and isinstance(cls, ast.ClassDef)
    ):
        return next((m for m in cls.body if isinstance(m, ast.AsyncFunctionDef) and m.name == name), None)
    return None


def _awaited_io(mod: Module, func: ast.AST, call: ast.Call, words: frozenset[str] | None = None) -> bool:
    """The awaited call talks to the outside: its name says so (or, given `words`, is one of
    them), or it is `self.m(...)` (or `f(...)`) and the class's (or module's) `async def m` awaits
    such a call itself (one function down)."""
    name = callee_last(call.func)

    def says(name: str) -> bool:
        return name.strip("_") in words if words is not None else looks_like_io(name)

    if says(name):
        return True
    method = _own_async_def(mod, call, mod.enclosing(func, (ast.ClassDef,)))
    if method is func:
        method = None  # `await check(target)` inside check itself
    inner = [n.value for n in walk_local(method) if isinstance(n, ast.Await) and isinstance(n.value, ast.Call)] + [
        i.context_expr for n in walk_local(method) if isinstance(n, ast.AsyncWith) for i in n.items
        if isinstance(i.context_expr, ast.Call)
    ] if method else []  # fmt: skip
    return any(
        says(callee_last(c.func)) for c in inner if not (mod.dotted(c.func) or "").startswith(ASYNC_LIBS)
    )


def _to_each_peer(call: ast.Call, loop_vars: set[str], changed: set[str]) -> bool:
    """`await send(peer, message)` / `await peer.ws.send(message)`: the loop variable is who the
    call goes to and the rest is the same every time: a broadcast, one peer after another. (Not
    `await part.write(writer)`: there the loop variable is what is sent, in order, to one sink.)"""
    args = [*call.args, *(k.value for k in call.keywords)]
    func = call.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and root_name(func) in loop_vars
    ):
        rest = args
    elif (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in loop_vars
        and func.attr in SENDS - {"write", "drain"}
    ):
        rest = args  # `await ws.send(payload)` for each socket (`part.write(out)` writes the item)
    elif args and isinstance(args[0], ast.Name) and args[0].id in loop_vars:
        rest = args[1:]
    else:
        return False
    return bool(rest) and not any(names_read(a) & (loop_vars | changed) for a in rest)


def mir003_sequential_awaits(mod: Module) -> Iterator[Hit]:
    for func in mod.functions():
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        for loop in walk_local(func):
            if not isinstance(loop, ast.For):
                continue
            loop_vars = target_names(loop.target)
            if any(isinstance(n, ast.Return | ast.Break) for n in walk_stmts(loop.body)):
                continue
            if any(
                isinstance(n, ast.Call) and (mod.dotted(n.func) or "").endswith("sleep")
                for n in walk_stmts(loop.body)
            ):
                continue  # deliberately paced
            for k, stmt in enumerate(loop.body):
                found: ast.Call | None = None
                probe: ast.AST
                for n in walk_stmts([stmt]):
                    if isinstance(n, ast.AsyncWith):
                        # async with session.get(url) as r: out.append(await r.json())
                        calls = [i.context_expr for i in n.items if isinstance(i.context_expr, ast.Call)]
                        kept = any(
                            isinstance(a, ast.Await) and _collected(mod, a) for a in walk_stmts(n.body)
                        )
                        if calls and kept:
                            call = calls[0]
                            probe = n
                        else:
                            continue
                    elif isinstance(n, ast.Await) and isinstance(n.value, ast.Call):
                        call = n.value
                        probe = n
                    else:
                        continue
                    callee = mod.dotted(call.func) or ""
                    if callee.startswith(ASYNC_LIBS):
                        continue
                    if (
                        isinstance(probe, ast.Await)
                        and _to_each_peer(call, loop_vars, assigned_names(loop.body))
                        and _awaited_io(mod, func, call, SENDS | {"post", "put"})
                    ):
                        found = call
                        break
                    if root_name(call.func) in loop_vars or not _awaited_io(mod, func, call):
                        continue
                    if (
                        call.args
                        and isinstance(call.args[0], ast.Constant)
                        and str(call.args[0].value).upper() in WRITE_METHODS
                    ):
                        continue  # request("POST", ...): a write
                    arg_names: set[str] = set()
                    for a in [*call.args, *(kw.value for kw in call.keywords)]:
                        arg_names |= names_read(a)
                    derived = assigned_names(loop.body[:k])
                    uses_item = bool(arg_names & loop_vars) or bool(
                        arg_names & derived
                        and any(
                            names_read(s) & loop_vars
                            for s in loop.body[:k]
                            if isinstance(s, ast.Assign | ast.AnnAssign)
                        )
                    )
                    if not uses_item:
                        continue
                    later = assigned_names(loop.body[k:]) - assigned_names(loop.body[:k])
                    carried = (arg_names | names_read(call.func)) & later
                    if carried or (isinstance(probe, ast.Await) and not _collected(mod, probe)):
                        continue
                    found = call
                    break
                if found is not None:
                    yield _hit("MIR003", found, call=unparse(found.func, 40))
                    break
        # [await f(x) for x in xs]: an async comprehension awaits one item at a time too
        for node in walk_local(func):
            if isinstance(node, ast.ListComp | ast.SetComp | ast.DictComp) and not any(
                g.is_async for g in node.generators
            ):
                targets = set().union(*(target_names(g.target) for g in node.generators))
                elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
                for elt in elts:
                    if (
                        isinstance(elt, ast.Await)
                        and isinstance(elt.value, ast.Call)
                        and not (mod.dotted(elt.value.func) or "").startswith(ASYNC_LIBS)
                        and names_read(elt.value) & targets
                        and root_name(elt.value.func) not in targets
                        and looks_like_io(callee_last(elt.value.func))
                    ):
                        yield _hit("MIR003", elt, call=unparse(elt.value.func, 40))


LIST_BUILDERS = frozenset({"list", "sorted"})


def _list_helpers(mod: Module) -> set[str]:
    """Functions of the module annotated to return a list (`def _existing_emails(...) -> list[str]`)."""
    if mod.list_helpers is None:
        mod.list_helpers = _annotated_lists(mod)
    return mod.list_helpers


def _annotated_lists(mod: Module) -> set[str]:
    return {
        f.name
        for f in mod.tree.body
        if isinstance(f, FUNCS)
        and isinstance(f.returns, ast.Subscript | ast.Name)
        and callee_last(f.returns.value if isinstance(f.returns, ast.Subscript) else f.returns)
        in ("list", "List")
    }


def _fetched_by_helper(mod: Module, func: ast.AST) -> set[str]:
    """Locals bound to what a function of the module fetched over the network or from a database
    (`customers = _changed_customers(shop, since)`): data from outside, as long as it is."""
    if mod.fetchers is None:
        mod.fetchers = _readers(mod) | {
            f.name for f in mod.functions()
            if any(isinstance(c, ast.Call) and _network_call(mod, c) for c in walk_local(f))
        }  # fmt: skip
    fetchers = mod.fetchers
    return {
        t.id
        for n in walk_local(func)
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)
        and n.value.func.id in fetchers
        for t in n.targets if isinstance(t, ast.Name)
    }  # fmt: skip


def _list_names(mod: Module, func: ast.AST) -> dict[str, ast.AST]:
    """Local names that are always lists that can be long: built, not small literal displays."""
    lists: dict[str, ast.AST] = {}
    other: set[str] = set()
    grown: set[str] = set()
    for n in walk_local(func):
        if isinstance(n, ast.Assign | ast.AnnAssign):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                if not isinstance(t, ast.Name):
                    for sub in ast.walk(t):
                        if isinstance(sub, ast.Name):
                            other.add(sub.id)
                    continue
                v = n.value
                if (
                    isinstance(v, ast.ListComp)
                    or (
                        isinstance(v, ast.Call)
                        and isinstance(v.func, ast.Name)
                        and (v.func.id in LIST_BUILDERS or v.func.id in _list_helpers(mod))
                    )
                    or isinstance(v, ast.List)
                    and (not v.elts or not is_constant_collection(v))
                ):
                    lists.setdefault(t.id, n)
                else:
                    other.add(t.id)
        elif isinstance(n, ast.AugAssign | ast.For | ast.AsyncFor | ast.With | ast.AsyncWith | ast.NamedExpr):
            for sub in ast.walk(getattr(n, "target", None) or ast.Pass()):
                if isinstance(sub, ast.Name):
                    other.add(sub.id)
            if isinstance(n, ast.With | ast.AsyncWith):
                for item in n.items:
                    if item.optional_vars is not None:
                        other |= target_names(item.optional_vars)
        elif (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("append", "extend", "insert")
            and isinstance(n.func.value, ast.Name)
        ):
            grown.add(n.func.value.id)
    args = getattr(func, "args", None)
    params = {a.arg for a in ast.walk(args) if isinstance(a, ast.arg)} if args else set()
    out = {}
    for name, node in lists.items():
        if name in other or name in params:
            continue
        v = node.value  # type: ignore[attr-defined]
        if isinstance(v, ast.List) and not v.elts and name not in grown:
            continue  # stays empty
        out[name] = node
    return out


def _loop_bodies(func: ast.AST) -> Iterator[tuple[ast.AST, list[ast.AST], set[str]]]:
    """(loop, the parts evaluated per iteration, names the loop binds)."""
    for n in walk_local(func):
        if isinstance(n, ast.For | ast.AsyncFor):
            if is_constant_collection(n.iter):
                continue
            yield n, list(n.body), target_names(n.target)
        elif isinstance(n, ast.While):
            yield n, [n.test, *n.body], set()
        elif isinstance(n, COMPREHENSIONS):
            gens = n.generators
            if any(is_constant_collection(g.iter) for g in gens):
                continue
            parts: list[ast.AST] = [*(i for g in gens for i in g.ifs), *(g.iter for g in gens[1:])]
            parts += [n.key, n.value] if isinstance(n, ast.DictComp) else [n.elt]
            yield n, parts, set().union(*(target_names(g.target) for g in gens))


def _in_assert(node: ast.AST, mod: Module) -> bool:
    cur = mod.parents.get(node)
    while cur is not None and not isinstance(cur, ast.stmt):
        cur = mod.parents.get(cur)
    return isinstance(cur, ast.Assert)


def _loop_iters(loop: ast.AST) -> list[ast.AST | None]:
    """What a loop or comprehension walks, seen through enumerate/zip/sorted/... (ITER_HELPERS)."""
    its = (
        [g.iter for g in loop.generators]
        if isinstance(loop, COMPREHENSIONS)
        else [getattr(loop, "iter", None)]
    )
    out = []
    for it in its:
        while isinstance(it, ast.Call) and callee_last(it.func) in ITER_HELPERS and it.args:
            it = it.args[0]
        out.append(it)
    return out


def _iterates_input(loop: ast.AST, params: set[str], attributes: bool = True) -> bool:
    """The loop walks data handed to the function (a parameter, maybe through enumerate/zip/...)."""
    for it in _loop_iters(loop):
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and not it.args:
            it = it.func.value  # rows.items(), data.values()
        if isinstance(it, ast.Name) and it.id in params:
            return True
        if (
            attributes
            and isinstance(it, ast.Attribute)
            and isinstance(it.value, ast.Name)
            and it.value.id == "self"
        ):
            return True  # for stage in self.stages
    return False


def _params(func: ast.AST) -> set[str]:
    """Parameters that carry data: not self/cls, not *args/**kwargs (sized by the call site)."""
    args = getattr(func, "args", None)
    if not isinstance(args, ast.arguments):
        return set()
    names = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    return names - {"self", "cls"}


# Calls whose result grows with the data behind it: rows from a database, lines of a file or CSV.
ROW_FETCHES = frozenset({"fetchall", "fetchmany", "fetch", "execute", "query", "all", "cursor", "readlines",
                         "reader", "DictReader", "iterrows", "scan"})  # fmt: skip


def _fetched_locals(func: ast.AST) -> set[str]:
    """Local names assigned rows fetched from a database or read from a file (`rows =
    conn.execute(...).fetchall()`, `cur = conn.cursor()`, `lines = f.readlines()`)."""
    out: set[str] = set()
    for n in walk_local(func):
        if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None:
            value = n.value.value if isinstance(n.value, ast.Await) else n.value
            if isinstance(value, ast.Call) and callee_last(value.func) in ROW_FETCHES:
                for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                    if isinstance(t, ast.Name):
                        out.add(t.id)
    return out


def _iterates_rows(mod: Module, loop: ast.AST, fetched: set[str]) -> bool:
    """The loop walks rows fetched from a database or lines read from a file: a local assigned
    from such a call, the call itself (`for row in cur.execute(...)`), a known cursor, or an open
    file (`for line in fh`, `fh` from `with open(...)`)."""
    for it in _loop_iters(loop):
        if isinstance(it, ast.Await):
            it = it.value
        if isinstance(it, ast.Name) and (
            it.id in fetched or mod.object_kind(it, loop) in ("db_cursor", "file")
        ):
            return True
        if isinstance(it, ast.Call) and callee_last(it.func) in ROW_FETCHES:
            return True
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id in _readers(mod):
            return True  # `for inv in open_invoices(conn, period)`, which fetches them
    return False


def _holds_lists(mod: Module, value: ast.AST | None, ann: ast.AST | None) -> bool:
    """`defaultdict(list)`, or a dict annotated `dict[K, list[V]]`."""
    if isinstance(value, ast.Call) and callee_last(value.func) == "defaultdict" and value.args:
        return isinstance(value.args[0], ast.Name) and value.args[0].id == "list"
    if isinstance(ann, ast.Subscript) and isinstance(ann.slice, ast.Tuple) and len(ann.slice.elts) == 2:
        inner = ann.slice.elts[1]
        return (
            callee_last(ann.value) in ("dict", "Dict", "defaultdict", "DefaultDict")
            and isinstance(inner, ast.Subscript)
            and callee_last(inner.value) in ("list", "List")
        )
    return False


def _dicts_of_lists(mod: Module, func: ast.AST) -> set[str]:
    """Keys (`self.postings`, `index`) of dicts whose values are lists, made in the function or in
    its class's `__init__`."""
    cls = mod.enclosing(func, (ast.ClassDef,))
    scopes = [func, *(m for m in getattr(cls, "body", []) if isinstance(m, FUNCS) and m.name == "__init__")]
    out: set[str] = set()
    for scope in scopes:
        for n in walk_local(scope):
            if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None:
                ann = n.annotation if isinstance(n, ast.AnnAssign) else None
                if _holds_lists(mod, n.value, ann):
                    for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                        if (k := key_of(t)) and (scope is func or k.startswith("self.")):
                            out.add(k)
    return out


# Calls that list a directory tree: as many items as the user has files.
LISTINGS = frozenset({"rglob", "glob", "iglob", "iterdir", "walk", "listdir", "scandir"})


def _readers(mod: Module) -> set[str]:
    """Functions of the module that fetch rows from a database or read them from a file."""
    if mod.readers is None:
        mod.readers = {
            f.name
            for f in mod.functions()
            if any(isinstance(n, ast.Call) and callee_last(n.func) in ROW_FETCHES for n in walk_local(f))
        }
    return mod.readers


def _derived_locals(mod: Module, func: ast.AST) -> set[str]:
    """Locals that hold rows read one call down (`lines = read_statement(path)`, where the module's
    `read_statement` reads a CSV) or a directory's files (`pages = sorted(root.rglob("*.md"))`)."""
    readers = _readers(mod)
    out: set[str] = set()
    for n in walk_local(func):
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call):
            calls = [c for c in ast.walk(n.value) if isinstance(c, ast.Call)]
            if callee_last(n.value.func) in readers or any(callee_last(c.func) in LISTINGS for c in calls):
                out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _iterates_derived(loop: ast.AST, derived: set[str]) -> bool:
    """The loop walks a local made from the input, or the results of a call over one
    (`pool.imap_unordered(analyse, pages)`)."""
    for it in _loop_iters(loop):
        if isinstance(it, ast.Name) and it.id in derived:
            return True
        if isinstance(it, ast.Call) and any(isinstance(a, ast.Name) and a.id in derived for a in it.args):
            return True
    return False


def mir004_list_search_in_loop(mod: Module) -> Iterator[Hit]:
    for func in mod.functions():
        lists = _list_names(mod, func)
        if not lists and not _dicts_of_lists(mod, func):
            continue
        from_outside = _fetched_by_helper(mod, func)  # a list fetched whole: `known = _existing_emails(crm)`
        params = _params(func) | from_outside
        fetched = _fetched_locals(func) - params
        derived = _derived_locals(mod, func)
        dict_lists = _dicts_of_lists(mod, func)
        seen: set[int] = set()
        for loop, parts, _bound in _loop_bodies(func):
            # over input: any search of a list; over rows fetched from a database or read from a file:
            # only the dedupe of the list the loop itself grows (`if x not in seen: seen.append(x)`)
            grown_only = not _iterates_input(loop, params, attributes=False)
            if grown_only and not (_iterates_rows(mod, loop, fetched) or _iterates_derived(loop, derived)):
                continue
            iter_name = getattr(getattr(loop, "iter", None), "id", None)
            grown_here = {
                n.func.value.id
                for n in walk_stmts(parts)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("append", "extend", "insert", "__iadd__")
                and isinstance(n.func.value, ast.Name)
            } | {
                n.target.id
                for n in walk_stmts(parts)
                if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)
            }
            grown_inner = {  # self.postings[term].append(doc_id): one list of a dict of lists
                unparse(n.func.value)
                for n in walk_stmts(parts)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in ("append", "extend", "insert")
                and isinstance(n.func.value, ast.Subscript)
                and key_of(n.func.value.value) in dict_lists
            }
            for n in walk_stmts(parts):
                if _in_assert(n, mod):
                    continue
                op = name = None
                if isinstance(n, ast.Compare):
                    for o, right in zip(n.ops, n.comparators, strict=True):
                        if not isinstance(o, ast.In | ast.NotIn):
                            continue
                        if (
                            isinstance(right, ast.Name)
                            and right.id in lists
                            and (right.id in grown_here or (not grown_only and right.id in from_outside))
                        ) or (isinstance(right, ast.Subscript) and unparse(right) in grown_inner):
                            op, name = ("in" if isinstance(o, ast.In) else "not in"), unparse(right)
                elif (
                    not grown_only
                    and isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute)
                    and n.func.attr in ("index", "count", "remove")
                    and isinstance(n.func.value, ast.Name)
                    and n.func.value.id in lists
                    and n.func.value.id != iter_name
                ):
                    op, name = f".{n.func.attr}()", n.func.value.id
                line = getattr(n, "lineno", 0)
                if (
                    name
                    and line not in seen
                    and getattr(lists.get(name), "lineno", 0) < line
                    and not _exits_once(loop, parts, n, mod)
                ):
                    seen.add(line)
                    yield _hit("MIR004", n, op=op, name=name)


def _string_names(func: ast.AST) -> set[str]:
    strs: set[str] = set()
    other: set[str] = set()
    for n in walk_local(func):
        if isinstance(n, ast.Assign | ast.AnnAssign):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    v = n.value
                    if (isinstance(v, ast.Constant) and isinstance(v.value, str | bytes)) or isinstance(
                        v, ast.JoinedStr
                    ):
                        strs.add(t.id)
                        if isinstance(v, ast.Constant) and isinstance(v.value, bytes):
                            strs.add("b:" + t.id)
                    elif not (
                        isinstance(v, ast.BinOp) and isinstance(v.left, ast.Name) and v.left.id == t.id
                    ):
                        other.add(t.id)
                else:
                    other |= target_names(t)
        elif isinstance(n, ast.For | ast.AsyncFor):
            other |= target_names(n.target)
    return strs - other


ITER_HELPERS = frozenset(
    {
        "enumerate",
        "zip",
        "range",
        "sorted",
        "reversed",
        "items",
        "keys",
        "values",
        "split",
        "splitlines",
        "list",
        "tuple",
        "set",
        "dict",
        "map",
        "filter",
        "asdict",
        "vars",
        "dir",
    }
)


def accumulated(s: ast.AST) -> ast.AST | None:
    """The target of `t += v`, or of `t = t + v` (`t = t + a + b` too: `t` leftmost), the
    statement that makes `t` hold more than it did; else None. (Compared as source: the same
    name reads and stores with different ast contexts, so `ast.dump` never matched `t = t + v`.)"""
    if isinstance(s, ast.AugAssign) and isinstance(s.op, ast.Add):
        return s.target
    if not (isinstance(s, ast.Assign) and len(s.targets) == 1):
        return None
    left = s.value
    while isinstance(left, ast.BinOp) and isinstance(left.op, ast.Add):
        left = left.left
    return s.targets[0] if left is not s.value and ast.unparse(left) == ast.unparse(s.targets[0]) else None


def _str_attrs(mod: Module) -> dict[ast.ClassDef, set[str]]:
    out: dict[ast.ClassDef, set[str]] = {}
    for cls in mod.classes:
        if isinstance(cls, ast.ClassDef):
            found: set[str] = set()
            for m in cls.body:
                if isinstance(m, FUNCS):
                    for n in walk_local(m):
                        if (
                            isinstance(n, ast.Assign)
                            and isinstance(n.value, ast.Constant | ast.JoinedStr)
                            and (isinstance(n.value, ast.JoinedStr) or isinstance(n.value.value, str | bytes))
                        ):
                            for t in n.targets:
                                k = key_of(t)
                                if k and k.startswith("self."):
                                    found.add(k)
            out[cls] = found
    return out


def _resets_in(loop: ast.AST, key: str) -> bool:
    """`key` is set back to a literal inside the loop: a per-item buffer, not a growing one."""
    for n in walk_stmts(getattr(loop, "body", [])):
        if (
            isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Constant | ast.JoinedStr)
            and any(key_of(t) == key for t in n.targets)
        ):
            return True
    return False


def _size_watched(loop: ast.AST, key: str) -> bool:
    """The loop grows key to a known bound: it reads len(key), or raises once a size passes a limit."""
    for n in ast.walk(loop):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id == "len"
            and n.args
            and key_of(n.args[0]) == key
        ):
            return True
        if (
            isinstance(n, ast.If)
            and isinstance(n.test, ast.Compare)
            and any(isinstance(o, ast.Gt | ast.GtE | ast.Lt | ast.LtE) for o in n.test.ops)
            and n.body
            and isinstance(n.body[-1], ast.Raise)
        ):
            return True  # if size > limit: raise
    return False


def mir005_string_concat_in_loop(mod: Module) -> Iterator[Hit]:
    """Only where CPython cannot grow the string in place: a str or bytes attribute (`self.text +=
    chunk`) and bytes in a local. A local str (`s += piece`) is resized in place by CPython and stays
    linear (measured: 20k and 40k appends take 2 ms and 6 ms; bytes and attributes 0.4 s and 1.7 s)."""
    str_attrs = _str_attrs(mod)
    for func in mod.functions():
        strs = _string_names(func)
        cls = mod.enclosing(func, (ast.ClassDef,))
        attrs = str_attrs.get(cls, set()) if isinstance(cls, ast.ClassDef) else set()
        if not any(k.startswith("b:") for k in strs) and not attrs:
            continue
        flagged: set[str] = set()
        for n in walk_local(func):
            if not isinstance(n, ast.For | ast.AsyncFor | ast.While) or (
                isinstance(n, ast.For | ast.AsyncFor) and is_constant_collection(n.iter)
            ):
                continue
            for s in walk_stmts(n.body):
                target = accumulated(s)
                if target is None:
                    continue
                key = key_of(target)
                if key is None or key in flagged or not (key in attrs or "b:" + key in strs):
                    continue
                if _resets_in(n, key) or _size_watched(n, key):
                    continue
                flagged.add(key)
                yield _hit("MIR005", s, name=key)


EXPENSIVE_CALLS = frozenset(
    {
        "json.loads",
        "json.dumps",
        "json.load",
        "re.compile",
        "sorted",
        "set",
        "frozenset",
        "pickle.loads",
        "pickle.dumps",
        "yaml.safe_load",
        "yaml.load",
        "ast.parse",
        "inspect.signature",
        "inspect.getsource",
        "os.listdir",
        "glob.glob",
    }
)
MUTATORS = frozenset(
    {
        "append",
        "extend",
        "insert",
        "add",
        "update",
        "pop",
        "popitem",
        "remove",
        "discard",
        "clear",
        "setdefault",
        "sort",
        "reverse",
        "appendleft",
        "popleft",
        "__setitem__",
        "write",
        "seek",
    }
)
PURE_INNER = frozenset({"keys", "values", "items", "len", "str", "int", "repr", "tuple", "list", "get"})


def _costly_helpers(mod: Module) -> set[str]:
    """Module-level functions that do real work (a loop, a comprehension, an expensive call) and
    nothing else: no I/O, no await or yield, no global state, no change to their arguments, no
    nested definitions. Called again with the same arguments, one returns the same thing."""
    out = set()
    for func in mod.tree.body:
        if not isinstance(func, ast.FunctionDef):
            continue
        params = {a.arg for a in [*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs]}
        nodes = [n for stmt in func.body for n in ast.walk(stmt)]
        calls = [n for n in nodes if isinstance(n, ast.Call)]
        work = any(isinstance(n, (*LOOPS, *COMPREHENSIONS)) for n in nodes) or any(
            _expensive(mod, c) for c in calls
        )
        impure = any(
            isinstance(n, (ast.Await, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal, ast.ClassDef, *FUNCS))
            or (isinstance(n, ast.Attribute | ast.Subscript) and isinstance(n.ctx, ast.Store | ast.Del)
                and root_name(n) in params)
            for n in nodes
        ) or any(
            looks_like_io(name := callee_last(c.func))
            or name in ("print", "open", "random", "time", "now", "uuid4", "write", "send")
            or (isinstance(c.func, ast.Attribute) and c.func.attr in MUTATORS and root_name(c.func.value) in params)
            for c in calls
        )  # fmt: skip
        if work and not impure and not func.name.startswith("test"):
            out.add(func.name)
    return out


def _expensive(mod: Module, call: ast.Call, helpers: frozenset[str] = frozenset()) -> str | None:
    name = mod.dotted(call.func)
    if name in EXPENSIVE_CALLS and (call.args or call.keywords):
        return name
    if isinstance(call.func, ast.Name) and call.func.id in helpers and (call.args or call.keywords):
        return call.func.id
    if (
        isinstance(call.func, ast.Attribute)
        and call.func.attr == "join"
        and isinstance(call.func.value, ast.Constant)
        and isinstance(call.func.value.value, str)
        and call.args
    ):
        return "str.join"
    return None


def _changes_in(parts: list[ast.AST], bound: set[str]) -> tuple[set[str], set[str]]:
    """(names bound or mutated in the loop, names something in the loop calls a method on or passes on)."""
    changed = set(bound) | assigned_names(parts)
    touched: set[str] = set()
    for n in walk_stmts(parts):
        if isinstance(n, ast.Call):
            if isinstance(n.func, ast.Attribute):
                r = root_name(n.func.value)
                if r:
                    if n.func.attr in MUTATORS:
                        changed.add(r)
                    touched.add(r)
            for a in [*n.args, *(k.value for k in n.keywords)]:
                r = root_name(a)
                if r:
                    touched.add(r)
        elif isinstance(n, ast.Attribute | ast.Subscript) and isinstance(n.ctx, ast.Store | ast.Del):
            r = root_name(n)
            if r:
                changed.add(r)
        elif isinstance(n, ast.Global | ast.Nonlocal):
            changed |= set(n.names)
    return changed, touched


def _exits_once(loop: ast.AST, parts: list[ast.AST], node: ast.AST, mod: Module) -> bool:
    """node sits in a branch that leaves the loop (so it runs once), or the loop body always exits."""
    if isinstance(loop, LOOPS) and block_exits(loop.body):
        return True
    cur: ast.AST | None = node
    while cur is not None and cur is not loop:
        parent = mod.parents.get(cur)
        for attr in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(parent, attr, None)
            if isinstance(block, list) and cur in block and attr != "handlers" and block_exits(block):
                return True
        if isinstance(cur, ast.ExceptHandler) and block_exits(cur.body):
            return True
        if isinstance(cur, ast.Raise | ast.Return):
            return True
        cur = parent
    return False


def _state_copies(func: ast.AST) -> set[str]:
    """Locals that copy the object's state (`helps = dict(self._help)`, `items = list(self._items)`):
    as long as what the object has gathered."""
    out: set[str] = set()
    for n in walk_local(func):
        if (
            isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Call | ast.DictComp | ast.ListComp)
            and any(isinstance(a, ast.Attribute) and root_name(a) == "self" for a in ast.walk(n.value))
        ):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def mir006_loop_invariant(mod: Module) -> Iterator[Hit]:
    lines: set[int] = set()
    helpers = frozenset(_costly_helpers(mod))
    for func in mod.functions():
        params = _params(func) | _state_copies(func)
        for loop, parts, bound in _loop_bodies(func):
            if not _iterates_input(loop, params):
                continue
            changed, touched = _changes_in(parts, bound)
            for n in walk_stmts(parts):
                if not isinstance(n, ast.Call):
                    continue
                name = _expensive(mod, n, helpers)
                if not name or _in_assert(n, mod):
                    continue
                inner_calls = [c for c in ast.walk(n) if isinstance(c, ast.Call) and c is not n]
                if any(
                    not (
                        (isinstance(c.func, ast.Attribute) and c.func.attr in PURE_INNER)
                        or (isinstance(c.func, ast.Name) and c.func.id in PURE_INNER)
                    )
                    for c in inner_calls
                ):
                    continue
                if any(
                    isinstance(c, ast.Await | ast.Yield | ast.YieldFrom | ast.NamedExpr) for c in ast.walk(n)
                ):
                    continue
                if any(isinstance(c, (*COMPREHENSIONS, ast.Lambda)) for c in ast.walk(n)):
                    continue
                reads = names_read(n) - set(mod.aliases) - {"str", "len", "list", "tuple", "int", "repr"}
                roots = {r for a in ast.walk(n) if isinstance(a, ast.Attribute) and (r := root_name(a))}
                if (reads | roots) & changed:
                    continue
                if (roots - set(mod.aliases)) & touched:
                    continue
                if not reads and name in ("re.compile", "str.join"):
                    continue  # literal pattern (re caches it) or a join of literals: cheap
                if _exits_once(loop, parts, n, mod) or n.lineno in lines:
                    continue
                lines.add(n.lineno)
                yield _hit("MIR006", n, expr=unparse(n, 50))


SQL_RECEIVERS = ("cur", "conn", "db", "session", "txn", "tx", "database", "connection", "pool")
SQL_METHODS = frozenset({"execute", "fetch", "fetchrow", "fetchval", "fetchone", "fetchall"})
ORM_METHODS = frozenset({"get", "filter", "exclude", "first", "count"})
HTTP_MODULES = ("requests.", "httpx.")


def _per_item_args(call: ast.Call, item_names: set[str]) -> bool:
    return any(names_read(a) & item_names for a in [*call.args, *(k.value for k in call.keywords)])


def _runs_item_statements(loop: ast.AST, items: set[str]) -> bool:
    for n in walk_stmts(getattr(loop, "body", [])):
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("execute", "executescript", "executemany")
            and n.args
            and names_read(n.args[0]) & items
            and _sql_statement_root(n.args[0])
            not in SQL_BUILDERS  # select(...).where(col == item): a parameter
        ):
            return True
    return False


# Reads: a GET per item has a batched or concurrent form; a POST per item is usually the work itself.
HTTP_READS = frozenset({"get", "head"})


def _uses_carried(call: ast.Call, loop: ast.AST) -> bool:
    """The call reads a name that an earlier iteration assigned: the calls depend on each other."""
    body = getattr(loop, "body", [])
    read = set().union(*(names_read(a) for a in [*call.args, *(k.value for k in call.keywords)]))
    prelude: set[str] = set()
    carried: set[str] = set()
    for stmt in body:
        if any(n is call for n in walk_stmts([stmt])):
            carried = assigned_names(body[body.index(stmt) :])
            break
        prelude |= assigned_names([stmt])
    # names built in this iteration from carried state count as carried too
    derived = {
        t
        for stmt in body
        if isinstance(stmt, ast.Assign) and names_read(stmt.value) & (carried - prelude)
        for target in stmt.targets
        for t in target_names(target)
    }
    return bool(read & ((carried - prelude) | derived))


DB_KINDS = ("sqlite_conn", "db_conn", "db_cursor")
REDIS_KINDS = ("redis_client", "aredis_client")
# Reads of one key: MGET / HMGET or a pipeline fetch many in one round trip.
REDIS_READS = frozenset({"get", "hget", "hgetall", "exists"})


SQL_BUILDERS = frozenset({"select", "update", "delete", "insert"})


def _sql_statement_root(expr: ast.AST) -> str:
    """`select` for `select(Payment).where(...).limit(1)`: the call the chain starts from."""
    while isinstance(expr, ast.Call):
        inner = expr.func.value if isinstance(expr.func, ast.Attribute) else None
        if not isinstance(inner, ast.Call):
            return callee_last(expr.func)
        expr = inner
    return ""


def _direct_query(mod: Module, n: ast.AST, items: set[str], loop: ast.AST | None) -> tuple[str, str] | None:
    """(what, fix) when the call `n` is one round trip for one item: a parametrised query whose SQL
    does not change, an ORM lookup, an HTTP GET, a redis read of one key."""
    if not isinstance(n, ast.Call) or not isinstance(n.func, ast.Attribute):
        return None
    method = n.func.attr
    recv = key_of(n.func.value) or ""
    last = recv.rsplit(".", 1)[-1].lower()
    if (
        method in SQL_METHODS
        and len(n.args) >= 2
        and not (names_read(n.args[0]) & items)
        and any(names_read(a) & items for a in n.args[1:])
        and (
            any(last.startswith(p) or last.endswith(p) for p in SQL_RECEIVERS)
            or mod.object_kind(n.func.value, n) in DB_KINDS
        )
    ):
        return "database query", "executemany, or one query with IN (...)"
    if (
        method in ("execute", "scalars", "scalar")
        and n.args
        and _sql_statement_root(n.args[0]) in SQL_BUILDERS
        and names_read(n.args[0]) & items
        and any(last.startswith(p) or last.endswith(p) for p in SQL_RECEIVERS)
    ):  # session.execute(select(Payment).where(Payment.ref == line.ref))
        return "SQLAlchemy query", "one select(...).where(column.in_(...)) for all items"
    if (
        method in ORM_METHODS
        and isinstance(n.func.value, ast.Attribute)
        and n.func.value.attr == "objects"
        and _per_item_args(n, items)
    ):
        return "ORM query", "filter(...__in=...) or select_related/prefetch_related"
    if method in HTTP_READS | REDIS_READS and _per_item_args(n, items):
        if loop is not None and _uses_carried(n, loop):
            return None
        obj = mod.object_kind(n.func.value, n)
        if method in HTTP_READS and (
            (mod.dotted(n.func) or "").startswith(HTTP_MODULES) or obj in ("requests_session", "httpx_client")
        ):
            return "HTTP request", "a batch endpoint, or concurrent requests on one session"
        if method in REDIS_READS and obj in REDIS_KINDS:
            return f"redis {method.upper()}", "MGET/HMGET, or one pipeline for the whole loop"
    return None


def _helpers_by_name(mod: Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {f.name: f for f in mod.tree.body if isinstance(f, FUNCS)}


def _memoised(func: ast.AST) -> bool:
    """The function keeps what it fetched in a dict of the object (`if name in self._ids: return
    self._ids[name]` ... `self._ids[name] = row[0]`), or is wrapped in a cache decorator: one
    round trip per distinct key, not per item."""
    if any(callee_last(d.func if isinstance(d, ast.Call) else d) in ("cache", "lru_cache", "cached")
           for d in getattr(func, "decorator_list", [])):  # fmt: skip
        return True
    stored = {
        key_of(n.value)
        for n in walk_local(func)
        if isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store)
    }
    looked = {key_of(c) for n in walk_local(func) if isinstance(n, ast.Compare) for c in n.comparators} | {
        key_of(n.func.value) for n in walk_local(func)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get"
    }  # fmt: skip
    return any(k and k.startswith("self.") for k in stored & looked)


def _query_below(
    mod: Module, call: ast.Call, items: set[str], caller: ast.AST, helpers: Mapping[str, ast.AST]
) -> tuple[str, str] | None:
    """`self.m(item)` / `helper(conn, item)`, where the method of the same class (or the module's
    function) runs a per-item round trip (as _direct_query) on the parameters the item is bound to."""
    func = call.func
    target: ast.AST | None = None
    skip = 0
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
        cls = mod.enclosing(caller, (ast.ClassDef,))
        if isinstance(cls, ast.ClassDef):
            target = next((m for m in cls.body if isinstance(m, FUNCS) and m.name == func.attr), None)
            static = target is not None and any(
                isinstance(d, ast.Name) and d.id == "staticmethod" for d in target.decorator_list
            )
            skip = 0 if static else 1
    elif isinstance(func, ast.Name):
        target = helpers.get(func.id)
    if not isinstance(target, FUNCS) or target is caller or _memoised(target):
        return None
    params = [a.arg for a in [*target.args.posonlyargs, *target.args.args]][skip:]
    bound: set[str] = set()
    for i, a in enumerate(call.args):
        if isinstance(a, ast.Starred):
            break
        if i < len(params) and names_read(a) & items:
            bound.add(params[i])
    bound |= {k.arg for k in call.keywords if k.arg and names_read(k.value) & items}
    if not bound:
        return None
    for s in target.body:  # names computed from the parameter count as it
        if isinstance(s, ast.Assign) and names_read(s.value) & bound:
            for t in s.targets:
                bound |= target_names(t)
    for n in walk_local(target):
        found = _direct_query(mod, n, bound, None)
        if found is not None:
            what, fix = found
            name = f"self.{target.name}" if skip or isinstance(func, ast.Attribute) else target.name
            return f"{what} (in {name}())", fix
    return None


def _item_loops(func: ast.AST, mod: Module) -> Iterator[tuple[ast.AST, set[str], list[ast.AST]]]:
    """(loop, names that are the item, what runs per item) for the for loops and comprehensions over
    data (not constant collections or range(): retries and pages, not items)."""
    for loop in walk_local(func):
        if isinstance(loop, ast.For | ast.AsyncFor):
            iters = [loop.iter]
            items = target_names(loop.target)
            parts: list[ast.AST] = list(loop.body)
            # names computed from the item in this iteration count as the item
            for s in loop.body:
                if isinstance(s, ast.Assign) and names_read(s.value) & items:
                    for t in s.targets:
                        items |= target_names(t)
        elif isinstance(loop, COMPREHENSIONS):
            iters = [g.iter for g in loop.generators]
            items = set().union(*(target_names(g.target) for g in loop.generators))
            parts = [*(i for g in loop.generators for i in g.ifs), *(g.iter for g in loop.generators[1:])]
            parts += [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
        else:
            continue
        if any(
            is_constant_collection(it) or (isinstance(it, ast.Call) and mod.dotted(it.func) == "range")
            for it in iters
        ):
            continue
        yield loop, items, parts


def mir007_n_plus_one(mod: Module) -> Iterator[Hit]:
    helpers = _helpers_by_name(mod)
    for func in mod.functions():
        for loop, items, parts in _item_loops(func, mod):
            if _runs_item_statements(loop, items):
                continue  # each item runs its own statement (migrations): nothing to batch
            if any(
                isinstance(n, ast.Return) or (isinstance(n, ast.Break) and mod.enclosing(n, LOOPS) is loop)
                for n in walk_stmts(parts)
            ):
                continue  # a search: it stops at the first candidate that answers
            for n in walk_stmts(parts):
                if not isinstance(n, ast.Call):
                    continue
                found = _direct_query(mod, n, items, loop)
                if found is None and not _uses_carried(n, loop):
                    found = _query_below(mod, n, items, func, helpers)
                if found:
                    yield _hit("MIR007", n, what=found[0], fix=found[1])


ADDERS = frozenset({"append", "extend", "add", "update", "insert", "appendleft", "setdefault"})
REMOVERS = frozenset({"pop", "popitem", "popleft", "remove", "discard", "clear", "__delitem__"})
SETUP_PREFIXES = (
    "__init__",
    "__post_init__",
    "__enter__",
    "__aenter__",
    "setup",
    "set_up",
    "_setup",
    "add",
    "_add",
    "register",
    "_register",
    "set",
    "_set",
    "with_",
    "include",
    "attach",
    "subscribe",
    "bind",
    "mount",
    "install",
    "load",
    "_load",
    "configure",
    "build",
    "_build",
    "compile",
    "_compile",
    "from_",
    "_init",
    "init",
    "new",
    "create",
    "parse",
    "_parse",
)


def _is_container(mod: Module, v: ast.AST | None, attr: str) -> bool:
    """An empty list, set, dict or deque without maxlen: every add can make it bigger. (Growth is
    only reported from async or per-event methods: a registry keyed by type or name is filled by
    setup code, and was the whole of the dict findings before that restriction.)"""
    if isinstance(v, ast.List | ast.Set) and not v.elts:
        return True
    if isinstance(v, ast.Dict) and not v.keys:
        return True
    if isinstance(v, ast.Call):
        name = (mod.dotted(v.func) or "").rsplit(".", 1)[-1]
        if name == "deque":
            return not any(k.arg == "maxlen" for k in v.keywords) and len(v.args) < 2
        if name == "defaultdict":
            return True
        return name in ("list", "set", "dict", "OrderedDict", "Counter") and not v.args
    return False


# Methods that run once per event, request or message for as long as the object lives. Growth in
# any other method (a builder's add_x, a printer's per-call state, a listener's enter/exit) was
# measured to be bounded by the work the object was made for.
EVENT_PREFIXES = (
    "on_",
    "_on_",
    "handle",
    "_handle",
    "process",
    "_process",
    "dispatch",
    "receive",
    "record",
    "_record",
    "log",
    "track",
    "emit",
    "callback",
    "__call__",
    "ingest",
    "consume",
    "observe",
    "publish",
    "notify",
    "resolve_",  # a GraphQL resolver: once per field of every request
)


def _runs_per_event(method: ast.AST | None) -> bool:
    if isinstance(method, ast.AsyncFunctionDef):
        return True
    return isinstance(method, ast.FunctionDef) and method.name.startswith(EVENT_PREFIXES)


def _from_own_config(mod: Module, call: ast.Call, method: ast.AST) -> bool:
    """What is added comes only from iterating the object's own attributes (`for stage in
    self.stages: self._seen.add(stage.model)`): bounded by that configuration, not by input."""
    own: set[str] = set()
    cur = mod.parents.get(call)
    while cur is not None and cur is not method:
        if (
            isinstance(cur, ast.For | ast.AsyncFor)
            and isinstance(cur.iter, ast.Attribute)
            and isinstance(cur.iter.value, ast.Name)
            and cur.iter.value.id == "self"
        ):
            own |= target_names(cur.target)
        cur = mod.parents.get(cur)
    read = set().union(*(names_read(a) for a in [*call.args, *(k.value for k in call.keywords)]))
    return bool(own) and bool(read) and read <= own | {"self"}


def _is_list_init(assign: ast.AST) -> bool:
    v = getattr(assign, "value", None)
    return isinstance(v, ast.List) or (isinstance(v, ast.Call) and callee_last(v.func) in ("list", "deque"))


def _is_len(node: ast.AST) -> TypeGuard[ast.Call]:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len"


def _compared(mod: Module, node: ast.AST) -> bool:
    """`node` feeds a comparison in its statement (`if len(self.x) > cap:`), not just a value."""
    cur: ast.AST | None = mod.parents.get(node)
    while cur is not None and not isinstance(cur, ast.stmt):
        if isinstance(cur, ast.Compare):
            return True
        cur = mod.parents.get(cur)
    return isinstance(cur, ast.While | ast.If | ast.Assert)


def _own_attr(expr: ast.AST, attrs: dict[str, ast.AST]) -> str | None:
    """`X` when expr is `self.X` and X is one of attrs."""
    k = key_of(expr)
    return k[5:] if k and k.startswith("self.") and k.count(".") == 1 and k[5:] in attrs else None


def _inner_of(n: ast.AST, attrs: dict[str, ast.AST]) -> tuple[str, str] | None:
    """For `self.X[k].append(v)` (any adder) on a dict attribute X: (X, "add"); for what may
    shrink a per-key value (a remover called on it, `del self.X[k][:-n]`, `self.X[k] = <a slice>`):
    (X, "release"); else None. Reads (`self.X[k][-n:]`, iterating it) are neither."""
    if (
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and isinstance(n.func.value, ast.Subscript)
    ):
        attr = _own_attr(n.func.value.value, attrs)
        if attr is None or _is_list_init(attrs[attr]):
            return None
        use = "add" if n.func.attr in ADDERS else "release" if n.func.attr in REMOVERS else None
        return (attr, use) if use else None
    if (
        isinstance(n, ast.Subscript)
        and isinstance(n.ctx, ast.Store | ast.Del)
        and isinstance(n.value, ast.Subscript)
    ):
        attr = _own_attr(n.value.value, attrs)  # del self.X[k][:-n] / self.X[k][:] = ...
        return (attr, "release") if attr else None
    if isinstance(n, ast.Assign) and any(isinstance(x, ast.Slice) for x in ast.walk(n.value)):
        for t in n.targets:  # self.X[k] = self.X[k][-n:]: trimmed
            attr = _own_attr(t.value, attrs) if isinstance(t, ast.Subscript) else None
            if attr:
                return attr, "release"
    return None


def mir008_unbounded_growth(mod: Module) -> Iterator[Hit]:
    for cls in mod.classes:
        if not isinstance(cls, ast.ClassDef):
            continue
        methods = [m for m in cls.body if isinstance(m, FUNCS)]
        init_attrs: dict[str, ast.AST] = {}
        for m in methods:
            if m.name in ("__init__", "__post_init__"):
                for n in walk_local(m):
                    if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None:
                        for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                            k = key_of(t)
                            if (
                                k
                                and k.count(".") == 1
                                and k.startswith("self.")
                                and _is_container(mod, n.value, k[5:])
                            ):
                                init_attrs.setdefault(k[5:], n)
        if not init_attrs:
            continue
        adds: dict[str, tuple[ast.AST, str]] = {}
        released: set[str] = set()
        nested: set[str] = set()  # grown as self.X[k].append(v)
        aliased: set[str] = set()  # self.X[k] held in a name or handed on: its list may be trimmed there
        builders = {
            m.name
            for m in methods
            if any(
                isinstance(r, ast.Return) and isinstance(r.value, ast.Name) and r.value.id == "self"
                for r in walk_local(m)
            )
        }
        for m in methods:
            in_init = m.name in ("__init__", "__post_init__")
            if m.name in builders:
                continue
            for n in walk_local(m):
                per_key = _inner_of(n, init_attrs)
                if per_key is not None:  # self.X[k]: the per-key list or set of a dict attribute
                    grown, use = per_key
                    if use == "release":
                        released.add(grown)
                    elif (
                        not m.name.startswith(SETUP_PREFIXES)
                        and not _from_own_config(mod, n, m)  # type: ignore[arg-type]
                        and not _bounded_values(init_attrs[grown])
                    ):
                        adds.setdefault(grown, (n, m.name))
                        nested.add(grown)
                    continue
                # self.X.<method>(...)
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute):
                    k = key_of(n.func.value)
                    attr = k[5:] if k and k.startswith("self.") and k.count(".") == 1 else None
                    if attr in init_attrs:
                        if (
                            n.func.attr == "pop"
                            and not n.args
                            and not (_runs_per_event(m) or _called_per_event(mod, m.name))
                        ):
                            continue  # an undo stack's pop(), run on request: one item back, not a bound
                        if n.func.attr in REMOVERS:
                            released.add(attr)
                        elif (
                            n.func.attr in ADDERS
                            and not m.name.startswith(SETUP_PREFIXES)
                            and not _from_own_config(mod, n, m)
                        ):
                            adds.setdefault(attr, (n, m.name))
                    for a in [*n.args, *(kw.value for kw in n.keywords)]:
                        ka = key_of(a)
                        if ka and ka.startswith("self.") and ka[5:] in init_attrs:
                            released.add(ka[5:])  # handed to something that may trim it
                        if _is_len(a) and _compared(mod, a):
                            for inner in a.args:
                                ki = key_of(inner)
                                if ki and ki[5:] in init_attrs:
                                    released.add(ki[5:])  # its size is compared: a cap
                elif isinstance(n, ast.Subscript) and isinstance(n.ctx, ast.Store | ast.Del):
                    k = key_of(n.value)
                    attr = k[5:] if k and k.startswith("self.") and k.count(".") == 1 else None
                    if attr in init_attrs:
                        if isinstance(n.ctx, ast.Del) or isinstance(n.slice, ast.Slice):
                            released.add(attr)
                        elif not m.name.startswith(SETUP_PREFIXES) and not _is_list_init(init_attrs[attr]):
                            adds.setdefault(attr, (n, m.name))  # self.X[k] = v grows a dict, not a list
                elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store | ast.Del):
                    k = key_of(n)
                    if k and k.startswith("self.") and k[5:] in init_attrs and not in_init:
                        released.add(k[5:])  # replaced or reset
                elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                    k = key_of(n)
                    if not (k and k.startswith("self.") and k[5:] in init_attrs) or in_init:
                        continue
                    parent = mod.parents.get(n)
                    if isinstance(parent, ast.Attribute) and parent.attr in REMOVERS:
                        caller = mod.parents.get(parent)
                        if not (
                            isinstance(caller, ast.Call) and caller.func is parent
                        ):  # called: judged above
                            released.add(k[5:])  # add_done_callback(self.X.discard): removed when done
                        continue
                    if isinstance(parent, ast.Subscript) and parent.value is n:
                        holder = mod.parents.get(parent)  # `h = self.X[k]` / `f(self.X[k])`: h may be trimmed
                        if isinstance(holder, ast.Assign | ast.AnnAssign | ast.NamedExpr | ast.Return) or (
                            isinstance(holder, ast.Call) and parent in holder.args
                        ):
                            aliased.add(k[5:])
                        continue
                    if isinstance(parent, ast.Attribute) and parent.value is n:
                        continue  # self.X.method(...): judged above
                    if isinstance(parent, ast.Compare) and all(
                        isinstance(o, ast.In | ast.NotIn) for o in parent.ops
                    ):
                        continue  # a membership test reads it
                    if isinstance(parent, ast.For | ast.comprehension) and parent.iter is n:
                        continue  # iterated over
                    if (isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not)) or (
                        isinstance(parent, ast.If | ast.While) and parent.test is n
                    ):
                        continue  # `if not self.X:` tests whether it is empty
                    if parent is not None and _is_len(parent) and not _compared(mod, parent):
                        continue  # its size reported (`"clients": len(self.buckets)`), not capped
                    released.add(k[5:])  # used as a value: handed on, returned, sized; someone may trim it
        by_name = {m.name: m for m in methods}
        kept = _kept_for_life(mod, cls)
        released |= _called_items(cls)  # listeners: one per subscription, not per event
        for attr, (node, method) in adds.items():
            if attr in released or (attr in nested and attr in aliased):
                continue
            # Growth matters only in an object that lives as long as the program: per-call, per-stream
            # and per-upload objects, whose sets die with them, were most of the findings without this.
            if not (kept and (_runs_per_event(by_name.get(method)) or _called_per_event(mod, method))):
                continue
            if _tally(mod, methods, attr, init_attrs[attr]):
                continue
            yield _hit("MIR008", node, attr=attr, method=method, owner="self.", scope="class", life="object")
    yield from _module_growth(mod)


def _module_growth(mod: Module) -> Iterator[Hit]:
    """A module-level empty dict, list or set (`_avatars: dict = {}`) added to from an async or
    per-event function, which nothing in the module removes from, trims, clears or rebinds: a cache
    or log that grows for the process's whole life. (Filled by setup or a decorator, a registry is
    not reached per event and is not reported.)"""
    found = {
        t.id: n
        for n in mod.tree.body
        if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Name) and _is_container(mod, n.value, t.id)
    }
    if not found:
        return
    adds: dict[str, tuple[ast.AST, str]] = {}
    released: set[str] = set()
    for func in mod.functions():
        # A request handler's own log or set (async), or a dict filled with what a per-event function
        # fetched: warn-once sets and registries of backends or graphs, keyed by a handful of names,
        # were every finding on well-kept packages without this.
        per_event = not func.name.startswith((*SETUP_PREFIXES, "init", "_init", "load", "_load")) and (
            _runs_per_event(func) or _called_per_event(mod, func.name)
        )
        fetches = per_event and any(
            isinstance(c, ast.Await) or (isinstance(c, ast.Call) and _network_call(mod, c))
            for c in walk_local(func)
        )
        for n in walk_local(func):
            if isinstance(n, ast.Global):
                released |= set(n.names)  # rebound somewhere: it may be reset
            elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in found:
                if n.attr in REMOVERS:
                    released.add(n.value.id)  # `X.pop(k)`, or `fut.add_done_callback(X.discard)`
                elif n.attr in ADDERS and isinstance(mod.parents.get(n), ast.Call):
                    made = found[n.value.id]
                    dict_add = n.attr == "setdefault" or isinstance(getattr(made, "value", None), ast.Dict)
                    if fetches if dict_add else per_event and isinstance(func, ast.AsyncFunctionDef):
                        adds.setdefault(n.value.id, (mod.parents[n], func.name))
            elif isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and n.value.id in found:
                if isinstance(n.ctx, ast.Del) or isinstance(n.slice, ast.Slice):
                    released.add(n.value.id)
                elif (
                    isinstance(n.ctx, ast.Store)
                    and fetches
                    and not _is_list_init(found[n.value.id])
                    and names_read(n.slice) - {"self"}  # keyed by the object's own id: one entry per object
                ):
                    adds.setdefault(n.value.id, (n, func.name))
            elif isinstance(n, ast.Name) and n.id in found and isinstance(n.ctx, ast.Load):
                parent = mod.parents.get(n)
                if isinstance(parent, ast.Call) and n in parent.args:
                    released.add(n.id)  # handed to something that may trim it
    for name, (node, func_name) in adds.items():
        if name not in released:
            yield _hit("MIR008", node, attr=name, method=func_name, owner="", scope="module", life="process")


def _bounded_values(init: ast.AST) -> bool:
    """`self.X = defaultdict(lambda: deque(maxlen=n))`: each key's deque is bounded, so appending to
    `self.X[k]` grows nothing past its cap (held-out 8's per-workspace recent events)."""
    value = getattr(init, "value", None)
    if not (isinstance(value, ast.Call) and callee_last(value.func) == "defaultdict" and value.args):
        return False
    factory = value.args[0]
    made = factory.body if isinstance(factory, ast.Lambda) else factory
    return (
        isinstance(made, ast.Call)
        and callee_last(made.func) == "deque"
        and (any(k.arg == "maxlen" for k in made.keywords) or len(made.args) >= 2)
    )


def _called_items(cls: ast.ClassDef) -> set[str]:
    """Attributes whose items the class calls (`for fn in self._handlers: fn(event)`): listener
    lists, which grow once per subscriber, however their `on_...` registration is named."""
    out = set()
    for loop in ast.walk(cls):
        if not (isinstance(loop, ast.For) and isinstance(loop.target, ast.Name)):
            continue
        source = loop.iter
        if isinstance(source, ast.Call) and callee_last(source.func) in ("list", "tuple") and source.args:
            source = source.args[0]
        key = key_of(source)
        if (
            key
            and key.startswith("self.")
            and key.count(".") == 1
            and any(
                isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == loop.target.id
                for c in ast.walk(loop)
            )
        ):
            out.add(key[5:])
    return out


def _tally(
    mod: Module, methods: list[ast.FunctionDef | ast.AsyncFunctionDef], attr: str, init: ast.AST
) -> bool:
    """`self.<attr>` only ever counts: `self.X[k] += n`, `self.X[k] = self.X.get(k, 0) + n`, or a
    Counter's update(). A tally holds one number per distinct key (a tenant, a status, a bucket),
    not one entry per event; held-out 6's cumulative Prometheus counters were three false MIR008s."""
    v = getattr(init, "value", None)
    made = callee_last(v.func) if isinstance(v, ast.Call) else ""
    counter = made == "Counter"
    numeric = counter or (
        made == "defaultdict"
        and isinstance(v, ast.Call)
        and bool(v.args)
        and isinstance(v.args[0], ast.Name)
        and v.args[0].id in ("int", "float")
    )
    adds = 0
    for m in methods:
        if m.name in ("__init__", "__post_init__"):
            continue
        for n in walk_local(m):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and key_of(n.func.value) == f"self.{attr}"
            ):
                if n.func.attr in ADDERS:
                    if not (counter and n.func.attr == "update"):
                        return False
                    adds += 1
            elif (
                isinstance(n, ast.Subscript)
                and isinstance(n.ctx, ast.Store)
                and key_of(n.value) == f"self.{attr}"
            ):
                stmt = mod.parents.get(n)
                counted = (
                    numeric and isinstance(stmt, ast.AugAssign) and isinstance(stmt.op, ast.Add | ast.Sub)
                ) or (
                    isinstance(stmt, ast.Assign)
                    and isinstance(stmt.value, ast.BinOp)
                    and isinstance(stmt.value.op, ast.Add | ast.Sub)
                    and any(_get_number(x, attr) for x in (stmt.value.left, stmt.value.right))
                )
                if not counted:
                    return False
                adds += 1
    return adds > 0


def _get_number(n: ast.AST, attr: str) -> bool:
    """`self.<attr>.get(k, 0)`: a count read with a number for its default."""
    return (
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr == "get"
        and key_of(n.func.value) == f"self.{attr}"
        and len(n.args) == 2
        and isinstance(n.args[1], ast.Constant)
        and type(n.args[1].value) in (int, float)
    )


# Functions a program runs once, at its start: what they make lives as long as the program.
APP_FACTORIES = frozenset({"main", "create_app", "make_app", "build_app", "get_app", "init_app", "app_factory",
                           "serve", "run_server"})  # fmt: skip


def _runs_until_stopped(cls: ast.ClassDef) -> bool:
    """A method of `cls` loops until told to stop (`while True:`, `while not self._stop.is_set():`,
    `while self._running:`): a daemon, a consumer or a watcher, which lives as long as its process."""
    for m in cls.body:
        if not isinstance(m, FUNCS):
            continue
        for n in walk_local(m):
            if not isinstance(n, ast.While):
                continue
            test = (
                n.test.operand
                if isinstance(n.test, ast.UnaryOp) and isinstance(n.test.op, ast.Not)
                else n.test
            )
            if (
                isinstance(test, ast.Call)
                and isinstance(test.func, ast.Attribute)
                and test.func.attr == "is_set"
            ):
                test = test.func.value
            waits = any(  # `while True:` polls when it sleeps or waits between passes; a parser's does not
                isinstance(c, ast.Call) and callee_last(c.func) in ("sleep", "wait")
                for c in walk_stmts(n.body)
            )
            if (isinstance(test, ast.Constant) and test.value is True and waits) or (
                isinstance(test, ast.Attribute) and root_name(test) == "self"
            ):
                return True
    return False


def _kept_for_life(mod: Module, cls: ast.ClassDef) -> bool:
    """The module makes one `cls` that lives as long as the program: at module level, in `main()`,
    or stored in an app or registry (`app["store"] = Store(...)`), and never one
    per loop item. (Objects made per call or per stream, whose sets die with them, were the
    harmless findings on well-kept packages; a class the module never makes says nothing.)"""
    made = [n for n in mod.nodes if isinstance(n, ast.Call) and callee_last(n.func) == cls.name]
    if not made:
        return _runs_until_stopped(cls)
    kept = False
    for call in made:
        func = mod.enclosing(call, FUNCS)
        if func is not None and any(
            isinstance(a, (*LOOPS, *COMPREHENSIONS)) for a in _ancestors_in(mod, call, func)
        ):
            return False
        parent = mod.parents.get(call)
        stored = isinstance(parent, ast.Assign) and any(isinstance(t, ast.Subscript) for t in parent.targets)
        singleton = (
            isinstance(parent, ast.Assign)
            and func is not None
            and any(  # global _store; _store = C()
                isinstance(g, ast.Global)
                and any(isinstance(t, ast.Name) and t.id in g.names for t in parent.targets)
                for g in walk_local(func)
            )
        )
        kept = kept or func is None or getattr(func, "name", "") in APP_FACTORIES or stored or singleton
    return kept


def _reached(called: dict[str, set[str]], roots: set[str], start: set[str], hops: int = 2) -> set[str]:
    """`start` and what `roots` call, up to `hops` calls down. (Names, not definitions: past two
    hops in a large module, everything reaches everything.)"""
    out = set(start)
    frontier = set(roots)
    for _ in range(hops):
        frontier = {callee for name in frontier for callee in called.get(name, ())} - out
        out |= frontier
    return out


@dataclass(frozen=True)
class CallSite:
    caller: str  # the enclosing function's name
    callee: str  # the called name's last part
    call: ast.Call
    in_while: bool  # inside a `while` loop of the caller
    in_loop: bool  # inside any loop or comprehension of the caller


def call_sites(mod: Module) -> list[CallSite]:
    """Every call in the module's functions, once per run of the rules."""
    if mod.call_sites is None:
        mod.call_sites = []
        for func in mod.functions():
            for n in walk_local(func):
                if isinstance(n, ast.Call):
                    around = _ancestors_in(mod, n, func)
                    mod.call_sites.append(CallSite(
                        getattr(func, "name", ""), callee_last(n.func), n,
                        any(isinstance(a, ast.While) for a in around),
                        any(isinstance(a, (*LOOPS, *COMPREHENSIONS)) for a in around),
                    ))  # fmt: skip
    return mod.call_sites


def _callees(mod: Module) -> dict[str, set[str]]:
    called: dict[str, set[str]] = {}
    for site in call_sites(mod):
        called.setdefault(site.caller, set()).add(site.callee)
    return called


def _called_per_event(mod: Module, method: str) -> bool:
    """`method` is called, directly or through other functions of the module, from an async def, a
    per-event function, a timer's tick or a `while` loop (`store.remember(...)` in a request
    handler, `self.archive_day(...)` from the scheduler's `_tick`): it runs per event too."""
    if mod.per_event_names is None:
        roots = {getattr(f, "name", "") for f in mod.functions()
                 if _runs_per_event(f) or getattr(f, "name", "").lstrip("_").startswith(("tick", "poll"))}  # fmt: skip
        repeated = {site.callee for site in call_sites(mod) if site.in_while}
        mod.per_event_names = _reached(_callees(mod), roots | repeated, repeated)
    return method in mod.per_event_names


def _offloaded(mod: Module, node: ast.AST, func: ast.AST) -> bool:
    """node is evaluated as an argument of asyncio.to_thread / loop.run_in_executor / to_thread.run_sync."""
    cur = mod.parents.get(node)
    while cur is not None and cur is not func:
        if isinstance(cur, ast.Call) and callee_last(cur.func) in OFFLOADERS:
            return True
        cur = mod.parents.get(cur)
    return False


ASYNC_FIX = "use the async client or asyncio.to_thread"
CPU_FIX = "run it in a process pool (`loop.run_in_executor(pool, ...)`) or asyncio.to_thread"
WOULD_BLOCK = frozenset({"BlockingIOError", "InterruptedError", "SSLWantReadError", "SSLWantWriteError"})


def _expects_would_block(mod: Module, node: ast.AST, func: ast.AST) -> bool:
    """node sits in a `try` that catches BlockingIOError: the socket is in non-blocking mode."""
    cur = mod.parents.get(node)
    while cur is not None and cur is not func:
        if isinstance(cur, ast.Try | ast.TryStar) and any(
            h.type is not None and {callee_last(t) for t in ast.walk(h.type)} & WOULD_BLOCK
            for h in cur.handlers
        ):
            return True
        cur = mod.parents.get(cur)
    return False


def _nonblocking_sockets(func: ast.AST) -> set[str | None]:
    return {
        key_of(c.func.value)
        for c in walk_local(func)
        if isinstance(c, ast.Call)
        and isinstance(c.func, ast.Attribute)
        and c.func.attr in ("setblocking", "settimeout")
        and c.args
        and isinstance(c.args[0], ast.Constant)
        and not c.args[0].value
    }


def _blocking_call(
    mod: Module, n: ast.Call, func: ast.AST, nonblocking: set[str | None]
) -> tuple[str, str, str] | None:
    """(what it blocks on, fix, the receiver's key or "") when the call `n`, made in `func`, waits on
    I/O: a DNS lookup or connect called directly, or a blocking method of an object whose kind a
    simple assignment or an annotation says. (Files and locks are judged by the caller.)"""
    if isinstance(mod.parents.get(n), ast.Await) or _offloaded(mod, n, func):
        return None
    callee = mod.dotted(n.func) or ""
    if callee in BLOCKING_CALLS:
        if callee.startswith("smtplib.") and not (n.args or has_kw(n, "host")):
            return None  # SMTP() with no host connects later, in .connect()
        if any(isinstance(a, ast.Attribute | ast.Name) and callee_last(a) in ("AI_PASSIVE", "AI_NUMERICHOST")
               for a in ast.walk(n)):  # fmt: skip
            return None  # a bind address or a numeric host: no DNS server is asked
        dns = "DNS" in BLOCKING_CALLS[callee]
        fix = "use `await loop.getaddrinfo(...)` or asyncio.to_thread" if dns else ASYNC_FIX
        if callee.startswith("PIL."):
            return BLOCKING_CALLS[callee], CPU_FIX, "PIL"
        return BLOCKING_CALLS[callee], fix, ""
    if not isinstance(n.func, ast.Attribute):
        return None
    obj = mod.object_kind(n.func.value, n)
    if obj is None or obj in ("file", "lock"):
        return None
    key = key_of(n.func.value) or ""
    if obj == "socket" and (key in nonblocking or _expects_would_block(mod, n, func)):
        return None
    fix = CPU_FIX if obj in ("pil_image", "pdf_canvas") else ASYNC_FIX
    return (DESCRIBE[obj], fix, key) if blocks(obj, n.func.attr) else None


def _blocking_below(
    mod: Module, call: ast.Call, caller: ast.AST, helpers: Mapping[str, ast.AST]
) -> str | None:
    """`self.m(...)` / `helper(...)` called (not awaited) from async def, where m is a plain sync
    def of the same class (or module) whose body makes a blocking network call: what it blocks on."""
    func = call.func
    target: ast.AST | None = None
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in ("self", "cls")
    ):
        cls = mod.enclosing(caller, (ast.ClassDef,))
        if isinstance(cls, ast.ClassDef):
            target = next((m for m in cls.body if isinstance(m, FUNCS) and m.name == func.attr), None)
    elif isinstance(func, ast.Name):
        target = helpers.get(func.id)
    if not isinstance(target, ast.FunctionDef) or any(
        isinstance(n, ast.Yield | ast.YieldFrom) for n in walk_local(target)
    ):
        return None  # async (awaited elsewhere) or a generator (its body runs when iterated)
    nonblocking = _nonblocking_sockets(target)
    for n in sorted((c for c in walk_local(target) if isinstance(c, ast.Call)), key=lambda c: c.lineno):
        callee = mod.dotted(n.func) or ""
        if callee.startswith(HTTP_MODULES) and callee_last(n.func) in HTTP_METHODS | {"urlopen"}:
            return f"an HTTP request ({callee}) in {target.name}()"
        if callee == "urllib.request.urlopen":
            return f"an HTTP request (urlopen) in {target.name}()"
        found = _blocking_call(mod, n, target, nonblocking)
        if found is not None:
            return f"{found[0]} in {target.name}()"
    return None


def mir009_blocking_object_in_async(mod: Module) -> Iterator[Hit]:
    """Blocking I/O inside async def that ruff's ASYNC rules do not see: a synchronous DNS lookup
    or SMTP connect called directly, or a method of an object a simple assignment made blocking
    (a requests/httpx sync client, a sqlite3/psycopg/pymysql connection or its cursor, a sync redis
    client, an smtplib connection, a boto3 client or resource, a file, a socket, a threading lock);
    or, one call down, a plain sync method or module function whose body makes such a network call
    (or a requests/httpx/urlopen request). Not when awaited, nor inside a call handed to
    to_thread/run_in_executor; nested sync defs (the function handed to a thread) are not entered.
    One finding per object (or helper) per function."""
    helpers = _helpers_by_name(mod)
    for func in mod.functions():
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        local = mod.func_objects.get(func, {})
        nonblocking = _nonblocking_sockets(func)
        flagged: set[str] = set()
        calls = sorted(
            (c for c in walk_local(func) if isinstance(c, ast.Call)), key=lambda c: (c.lineno, c.col_offset)
        )
        for n in calls:
            if isinstance(mod.parents.get(n), ast.Await) or _offloaded(mod, n, func):
                continue
            found = _blocking_call(mod, n, func, nonblocking)
            if found is not None:
                what, fix, key = found
                if not (key and key in flagged):
                    flagged.add(key)
                    yield _hit("MIR009", n, call=unparse(n, 50), what=what, fix=fix)
                continue
            below = _blocking_below(mod, n, func, helpers)
            if below is not None:
                name = callee_last(n.func)
                if name not in flagged:
                    flagged.add(name)
                    fix = CPU_FIX if "CPU-bound" in below else ASYNC_FIX
                    yield _hit("MIR009", n, call=unparse(n, 50), what=below, fix=fix)
                continue
            if not isinstance(n.func, ast.Attribute):
                continue
            obj = mod.object_kind(n.func.value, n)
            key = key_of(n.func.value) or ""
            if obj == "file" and key not in local and n.func.attr in BLOCKING_METHODS["file"]:
                if (
                    key not in flagged
                ):  # (a file opened in this async def: ruff's ASYNC230 reports the open())
                    flagged.add(key)
                    yield _hit("MIR009", n, call=unparse(n, 50), what=DESCRIBE[obj], fix=ASYNC_FIX)
            elif (
                obj == "lock"
                and n.func.attr == "acquire"
                and not any(k.arg in ("blocking", "timeout") for k in n.keywords)
                and not n.args
            ):
                yield _hit("MIR009", n, call=unparse(n, 50), what=DESCRIBE[obj], fix=ASYNC_FIX)


NO_TIMEOUT_CALLS: dict[str, tuple[int, str]] = {
    # callee -> (index of the positional timeout argument, what it is)
    "urllib.request.urlopen": (2, "urlopen()"),
    "http.client.HTTPConnection": (2, "an HTTPConnection"),
    "http.client.HTTPSConnection": (2, "an HTTPSConnection"),
    "socket.create_connection": (1, "socket.create_connection()"),
    "smtplib.SMTP": (3, "an SMTP connection"),
    "smtplib.SMTP_SSL": (4, "an SMTP_SSL connection"),
    "ftplib.FTP": (5, "an FTP connection"),
}
SESSION_CALLS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "request"})


def _timeout_never_forwarded(mod: Module, call: ast.Call) -> bool:
    """`self.session.request(..., **kwargs)` in a method `m(self, ..., **kwargs)` that sets no
    timeout itself, where the class calls `self.m(...)` and no such call passes `timeout=` (or
    `**` of its own): the timeout the `**kwargs` could carry never comes."""
    spread = [k.value for k in call.keywords if k.arg is None]
    func = mod.enclosing(call, FUNCS)
    cls = mod.enclosing(call, (ast.ClassDef,))
    if not (len(spread) == 1 and isinstance(spread[0], ast.Name) and isinstance(func, FUNCS)):
        return False
    if not (func.args.kwarg and func.args.kwarg.arg == spread[0].id and isinstance(cls, ast.ClassDef)):
        return False
    if any(isinstance(c, ast.Constant) and c.value == "timeout" for c in ast.walk(func)):
        return False  # kwargs.setdefault("timeout", ...) / kwargs["timeout"] = ...
    callers = [
        c for c in ast.walk(cls) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
        and c.func.attr == func.name and root_name(c.func.value) == "self"
    ]  # fmt: skip
    return bool(callers) and not any(has_kw(c, "timeout") for c in callers)


def _none_default(func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> int | None:
    """The position of `func`'s parameter `name` (-1: keyword-only) when it defaults to None."""
    a = func.args
    pos = [*a.posonlyargs, *a.args]
    pairs = [*zip(pos, [None] * (len(pos) - len(a.defaults)) + list(a.defaults), strict=True),
             *zip(a.kwonlyargs, a.kw_defaults, strict=True)]  # fmt: skip
    for i, (arg, default) in enumerate(pairs):
        if arg.arg == name:
            none = isinstance(default, ast.Constant) and default.value is None
            return (i if i < len(pos) else -1) if none else None
    return None


def _timeout_left_none(mod: Module, call: ast.Call, index: int) -> list[ast.Call]:
    """`urlopen(req, timeout=timeout)` in `def _open(path, timeout=None)` (never reassigned): the
    calls of `_open` in the module that pass no timeout, and so open the connection with none."""
    given = next((k.value for k in call.keywords if k.arg == "timeout"), None)
    if given is None and len(call.args) > index:
        given = call.args[index]
    func = mod.enclosing(call, FUNCS)
    if not (isinstance(given, ast.Name) and isinstance(func, FUNCS)):
        return []
    at = _none_default(func, given.id)
    if at is None or given.id in assigned_names(func.body):
        return []
    method = isinstance(mod.parents.get(func), ast.ClassDef)
    if method:
        at -= 1  # `self` is not passed
    sites = [
        c for c in mod.nodes if isinstance(c, ast.Call) and (
            (isinstance(c.func, ast.Attribute) and c.func.attr == func.name and root_name(c.func.value) == "self")
            if method else (isinstance(c.func, ast.Name) and c.func.id == func.name)
        )
    ]  # fmt: skip
    return [
        c for c in sites
        if not has_kw(c, given.id) and not (0 <= at < len(c.args))
        and not any(k.arg is None for k in c.keywords) and not any(isinstance(a, ast.Starred) for a in c.args)
    ]  # fmt: skip


STREAM_OPENERS = frozenset({"asyncio.open_connection", "asyncio.open_unix_connection",
                            "asyncio.streams.open_connection", "asyncio.streams.open_unix_connection"})  # fmt: skip


def _mentions_timeout(node: ast.AST) -> bool:
    """Anything in node names a timeout or deadline: a name, attribute, keyword, parameter, string."""
    for n in walk_local(node):
        text = (
            n.id
            if isinstance(n, ast.Name)
            else n.attr
            if isinstance(n, ast.Attribute)
            else n.arg
            if isinstance(n, ast.keyword | ast.arg) and n.arg
            else n.value
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            else ""
        )
        low = text.lower()
        if "timeout" in low or "deadline" in low or low in ("wait_for", "fail_after", "move_on_after"):
            return True
    return False


def _no_timeout_anywhere(mod: Module, call: ast.Call) -> bool:
    """`await asyncio.open_connection(...)` with no wait_for/timeout around it, in a function that
    mentions no timeout at all, and that no caller in the module wraps in one."""
    func = mod.enclosing(call, FUNCS)
    if func is None or _under_timeout(mod, call) or _mentions_timeout(func):
        return False
    callers = [
        c for c in mod.nodes if isinstance(c, ast.Call) and callee_last(c.func) == getattr(func, "name", "")
    ]
    return not any(_under_timeout(mod, c) for c in callers)


SUBPROCESS_WAITS = frozenset(
    {"subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output"}
)
HANDS_TO_WORKER = frozenset(
    {"submit", "map", "imap", "imap_unordered", "apply_async", "starmap", "run_in_executor"}
)


def _on_worker_thread(mod: Module, call: ast.Call) -> bool:
    """The call's function runs on a worker thread or process: it, or a function up to two calls
    above it, is a `Thread(target=...)`, or is handed to an executor's `submit`/`map`. (A command
    run from a script's main thread blocks what asked for it; one run by a worker blocks the
    worker for good, and what the worker was for silently stops.)"""
    func = mod.enclosing(call, FUNCS)
    if func is None:
        return False
    roots: set[str] = set()
    for n in mod.nodes:
        if not isinstance(n, ast.Call):
            continue
        given = [
            k.value for k in n.keywords if k.arg == "target" and callee_last(n.func) in ("Thread", "Timer")
        ]
        if callee_last(n.func) in HANDS_TO_WORKER and n.args:
            given.append(
                n.args[1] if callee_last(n.func) == "run_in_executor" and len(n.args) > 1 else n.args[0]
            )
        roots |= {callee_last(g) for g in given if isinstance(g, ast.Attribute | ast.Name)}
    return getattr(func, "name", "") in _reached(_callees(mod), roots, roots)


def mir010_no_timeout(mod: Module) -> Iterator[Hit]:
    for n in mod.nodes:
        if not isinstance(n, ast.Call):
            continue
        callee = mod.dotted(n.func) or ""
        if callee in NO_TIMEOUT_CALLS:
            index, what = NO_TIMEOUT_CALLS[callee]
            if (
                len(n.args) <= index
                and (not has_kw(n, "timeout") or _timeout_never_forwarded(mod, n))
                and not any(isinstance(a, ast.Starred) for a in n.args)
            ):
                yield _hit("MIR010", n, what=what, fix="pass timeout=")
        elif (
            isinstance(n.func, ast.Attribute)
            and n.func.attr in SESSION_CALLS
            and mod.object_kind(n.func.value, n) == "requests_session"
            and (not has_kw(n, "timeout") or _timeout_never_forwarded(mod, n))
        ):
            yield _hit(
                "MIR010", n, what=f"`{unparse(n.func, 40)}()` on a requests.Session", fix="pass timeout="
            )
        elif callee in SUBPROCESS_WAITS and not has_kw(n, "timeout") and _on_worker_thread(mod, n):
            yield _hit("MIR010", n, what=f"`{callee}()` on a worker thread",
                       fix="pass timeout= and record the job as failed when it expires")  # fmt: skip
        elif callee in STREAM_OPENERS and _no_timeout_anywhere(mod, n):
            yield _hit(
                "MIR010",
                n,
                what=f"`{callee}()`",
                fix="wrap it in asyncio.wait_for (or `async with asyncio.timeout(...)`)",
            )
        network = NO_TIMEOUT_CALLS[callee][1] if callee in NO_TIMEOUT_CALLS else _network_call(mod, n)
        for site in _timeout_left_none(mod, n, NO_TIMEOUT_CALLS.get(callee, (99, ""))[0]) if network else ():
            func = mod.enclosing(n, FUNCS)
            yield _hit("MIR010", site, what=f"`{unparse(site, 40)}` ({getattr(func, 'name', '')}() hands its "
                       f"`timeout`, None unless given, to {network})", fix="pass timeout= here or give the "
                       "parameter a finite default")  # fmt: skip


# ---------------------------------------------------------------- MIR011–MIR014


def _long_lived(func: ast.AST) -> set[str]:
    """Locals bound to an element of an attribute's container (`files = self.index[word]`,
    `self.index.setdefault(...)`, `.get(...)`): they outlive the call like the attribute."""
    out = set()
    for n in walk_local(func):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            v = n.value
            inner = v.value if isinstance(v, ast.Subscript) else v.func.value if (
                isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute) and v.func.attr in ("get", "setdefault")
            ) else None  # fmt: skip
            if inner is not None and (key_of(inner) or "").startswith("self."):
                out.add(n.targets[0].id)
    return out


def mir011_list_as_set(mod: Module) -> Iterator[Hit]:
    """`x in L` (or `not in`) and `L.append(...)` in one function, where L outlives the call (an
    attribute, or a list held in one) and the lookup runs per item of a loop in a method that runs
    per event (async, or named like `on_...`, `handle...`: see MIR008), or L is also `.remove()`d (an
    LRU order kept on a list): it keeps growing, and every lookup scans it. (Per-loop dedup in a
    builder's sync `add_tags` was measured harmless: a model card's handful of tags.)"""
    for func in mod.functions():
        nodes = walk_local(func)
        appended = {key_of(n.func.value) for n in nodes if isinstance(n, ast.Call)
                    and isinstance(n.func, ast.Attribute) and n.func.attr in ("append", "insert")}  # fmt: skip
        appended.discard(None)
        removed = {key_of(n.func.value) for n in nodes if isinstance(n, ast.Call)
                   and isinstance(n.func, ast.Attribute) and n.func.attr == "remove"}  # fmt: skip
        long_lived = _long_lived(func)
        seen: set[str] = set()
        for n in nodes:
            if not (
                isinstance(n, ast.Compare) and len(n.ops) == 1 and isinstance(n.ops[0], ast.In | ast.NotIn)
            ):
                continue
            name = key_of(n.comparators[0])
            if name is None or name not in appended or name in seen:
                continue
            if not (name.startswith("self.") or name in long_lived):
                continue
            loop = mod.enclosing(n, LOOPS)
            in_loop = loop is not None and mod.enclosing(loop, FUNCS) is func and _runs_per_event(func)
            cls = mod.enclosing(func, (ast.ClassDef,))
            per_event = (  # `if job.id in self._done: return` ... `self._done.append(job.id)` per job
                name.startswith("self.") and isinstance(cls, ast.ClassDef) and _kept_for_life(mod, cls)
                and (_runs_per_event(func) or _called_per_event(mod, func.name))
            )  # fmt: skip
            if in_loop or per_event or name in removed:  # a lookup per item or event, or an LRU on a list
                seen.add(name)
                yield _hit("MIR011", n, name=name)


PROCESS_MAKERS = ("asyncio.create_subprocess_exec", "asyncio.create_subprocess_shell")


TIMEOUT_SCOPES = ("fail_after", "move_on_after", "fail_at", "move_on_at")


def _under_timeout(mod: Module, node: ast.AST) -> bool:
    """Inside asyncio.wait_for(...) or a `with ...timeout(...)` block."""
    cur = mod.parents.get(node)
    while cur is not None and not isinstance(cur, FUNCS):
        if isinstance(cur, ast.Call) and callee_last(cur.func) in (
            "wait_for",
            "timeout",
            "timeout_at",
            "fail_after",
            "move_on_after",
        ):
            return True
        if isinstance(cur, ast.With | ast.AsyncWith) and any(
            isinstance(i.context_expr, ast.Call)
            and (
                "timeout" in callee_last(i.context_expr.func)
                or callee_last(i.context_expr.func) in TIMEOUT_SCOPES
            )
            for i in cur.items
        ):
            return True
        cur = mod.parents.get(cur)
    return False


def mir012_process_no_timeout(mod: Module) -> Iterator[Hit]:
    """`await proc.communicate()` on an asyncio child process, in async def, with no timeout: a
    command run for its output from a service. (Waiting on a child in a CLI, or on a server
    process one started, is deliberate: measured on well-kept packages, those were all harmless.)"""
    for func in mod.functions():
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        nodes = walk_local(func)
        processes = set()
        for n in nodes:
            if isinstance(n, ast.Assign) and len(n.targets) == 1:
                value = n.value.value if isinstance(n.value, ast.Await) else n.value
                if isinstance(value, ast.Call) and (mod.dotted(value.func) or "") in PROCESS_MAKERS:
                    processes.add(key_of(n.targets[0]))
        processes.discard(None)
        for n in nodes:
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "communicate"
                    and key_of(n.func.value) in processes and not has_kw(n, "timeout")
                    and not _under_timeout(mod, n)):  # fmt: skip
                yield _hit("MIR012", n, what=f"`{unparse(n.func, 40)}()`")


NETWORK_PREFIXES = ("requests.", "httpx.", "urllib.request.urlopen", "urllib3.", "smtplib.", "ftplib.",
                    "socket.create_connection", "http.client.")  # fmt: skip


def _network_call(mod: Module, call: ast.Call) -> str | None:
    callee = mod.dotted(call.func) or ""
    if callee.startswith(NETWORK_PREFIXES):
        return f"{callee}()"
    if (
        isinstance(call.func, ast.Attribute)
        and call.func.attr in SESSION_CALLS | {"send", "stream"}
        and mod.object_kind(call.func.value, call) in ("requests_session", "httpx_client")
    ):
        return f"`{unparse(call.func, 40)}()`"
    return None


def _method_network_call(
    mod: Module, cls: ast.ClassDef | None, call: ast.Call, hops: int = 2, seen: frozenset[str] = frozenset()
) -> str | None:
    """A call of `self.method(...)` or of a module function whose body makes a network call, itself
    or through helpers of its own, up to `hops` calls down (`render()` → `_open()` → `urlopen`)."""
    f = call.func
    target: ast.AST | None = None
    if (
        cls is not None
        and isinstance(f, ast.Attribute)
        and isinstance(f.value, ast.Name)
        and f.value.id == "self"
    ):
        target, label = (
            next((m for m in cls.body if isinstance(m, FUNCS) and m.name == f.attr), None),
            "self.",
        )
    elif isinstance(f, ast.Name):
        target, label = _helpers_by_name(mod).get(f.id), ""
    if not isinstance(target, ast.FunctionDef) or target.name in seen:
        return None  # an async def called without await runs nothing here
    for n in walk_local(target):
        if not isinstance(n, ast.Call):
            continue
        inner = _network_call(mod, n) or (
            _method_network_call(mod, cls, n, hops - 1, seen | {target.name}) if hops > 1 else None
        )
        if inner:  # name the network call itself, however deep: "render() (through urlopen())"
            leaf = inner.split(" (through ", 1)[1][:-1] if " (through " in inner else inner
            return f"{label}{target.name}() (through {leaf})"
    return None


def _sync_locked_blocks(mod: Module) -> Iterator[tuple[ast.With, ast.expr]]:
    """(the block, its lock) for each `with <lock>:` in sync code."""
    for n in mod.nodes:
        if isinstance(n, ast.With) and not isinstance(mod.enclosing(n, FUNCS), ast.AsyncFunctionDef):
            lock = next((i.context_expr for i in n.items if is_lockish(mod, i.context_expr, n)), None)
            if lock is not None:
                yield n, lock


def mir013_lock_across_network(mod: Module) -> Iterator[Hit]:
    for n, lock in _sync_locked_blocks(mod):
        cls = mod.enclosing(n, (ast.ClassDef,))
        cls = cls if isinstance(cls, ast.ClassDef) else None
        calls = sorted((m for m in walk_stmts(n.body) if isinstance(m, ast.Call)),
                       key=lambda m: (m.lineno, m.col_offset))  # fmt: skip
        for m in calls:  # the first network call under the lock, as the code reads
            what = _network_call(mod, m) or _method_network_call(mod, cls, m)
            if what:
                yield _hit("MIR013", m, lock=unparse(lock, 40), call=what)
                break


def mir022_callbacks_under_lock(mod: Module) -> Iterator[Hit]:
    """`with self._lock:` (sync code) around `for fn in self._listeners: fn(...)`: stored
    callbacks, whose code the class does not know, run while the lock is held."""
    for n, lock in _sync_locked_blocks(mod):
        for loop in walk_stmts(n.body):
            if not isinstance(loop, ast.For) or not isinstance(loop.target, ast.Name):
                continue
            (source,) = _loop_iters(loop)
            if isinstance(source, ast.Call) and callee_last(source.func) in ("list", "tuple") and source.args:
                source = source.args[0]
            if not (isinstance(source, ast.Attribute) and root_name(source) == "self"):
                continue
            fn = loop.target.id
            if any(isinstance(c, ast.Call) and isinstance(c.func, ast.Name) and c.func.id == fn and c.args
                   and not isinstance(mod.parents.get(c), ast.Attribute)  # weakref deref: `ref().close()`
                   for c in walk_stmts(loop.body)):  # fmt: skip
                yield _hit("MIR022", loop, listeners=unparse(source, 40), lock=unparse(lock, 40))
                break


RELEASE_METHODS = ("close", "quit", "release", "disconnect", "shutdown")


def _owned_elsewhere(mod: Module, exit_node: ast.AST, name: str) -> bool:
    """The exit does not leak `name`: it returns it, it is under `if name is None` / `if not
    name`, or its block hands `name` itself to a call first."""
    if isinstance(exit_node, ast.Return) and exit_node.value is not None and name in names_read(exit_node):
        return True
    block = mod.parents.get(exit_node)
    if isinstance(block, ast.If):
        test = block.test.operand if isinstance(block.test, ast.UnaryOp) else block.test
        if isinstance(test, ast.Compare):
            test = test.left
        if isinstance(test, ast.Name) and test.id == name:
            return True
        body = block.body if exit_node in block.body else block.orelse
        return any(isinstance(n, ast.Call) and any(isinstance(a, ast.Name) and a.id == name for a in n.args)
                   for s in body for n in walk_stmts([s]))  # fmt: skip
    return False


# Database connections: any query or commit between the connect and the close can raise.
DB_CONNECTS = frozenset({"sqlite3.connect", "sqlite3.dbapi2.connect", "psycopg.connect", "psycopg.Connection.connect",
                         "psycopg2.connect", "pymysql.connect", "MySQLdb.connect", "mysql.connector.connect",
                         "asyncpg.connect", "aiosqlite.connect", "psycopg.AsyncConnection.connect"})  # fmt: skip


# Calls that lend a connection from a pool, and the pool methods that take it back.
BORROWS = frozenset({"acquire", "getconn", "get_connection", "checkout"})
GIVE_BACK = frozenset({"release", "putconn", "release_connection", "checkin"})


def _given_back(s: ast.stmt, name: str) -> str | None:
    """`pool.release(conn)` / `await pool.release(conn)`: the text of the call, else None."""
    found = method_statement(s)
    if found is None:
        return None
    call, method = found
    if method.attr in GIVE_BACK and any(isinstance(a, ast.Name) and a.id == name for a in call.args):
        return unparse(call, 40)
    return None


def _connection_helpers(mod: Module) -> set[str]:
    """Sync functions of the module that return a new database connection (`def open_ledger(path):
    conn = sqlite3.connect(path); ...; return conn`)."""
    out = set()
    for f in mod.tree.body:
        if not isinstance(f, ast.FunctionDef):
            continue
        made = {
            key_of(t) for n in walk_local(f) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
            and (mod.dotted(n.value.func) or "") in DB_CONNECTS for t in n.targets
        }  # fmt: skip
        for r in walk_local(f):
            if (
                isinstance(r, ast.Return)
                and r.value is not None
                and (
                    key_of(r.value) in made - {None}
                    or (isinstance(r.value, ast.Call) and (mod.dotted(r.value.func) or "") in DB_CONNECTS)
                )
            ):
                out.add(f.name)
    return out


def mir014_close_skipped(mod: Module) -> Iterator[Hit]:
    """`x = <call>` ... `x.close()` in one block, not in a `finally`, with a `return` or `raise`
    between them, or (for a connection Mirador knows: a network client, a `stream=True` response, a
    database connection, awaited or not) any call between them that can raise."""
    conn_helpers = _connection_helpers(mod)
    for func in mod.functions():
        for stmts in _statement_lists(func):
            for i, s in enumerate(stmts):
                if not (
                    isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                ):
                    continue
                value = s.value
                awaited = isinstance(value, ast.Await)
                if awaited:
                    value = value.value  # type: ignore[attr-defined]
                if not isinstance(value, ast.Call):
                    continue
                opener = mod.dotted(value.func) or ""
                borrowed = callee_last(value.func) in BORROWS  # conn = await pool.acquire()
                if awaited and opener not in DB_CONNECTS and not borrowed:
                    continue
                name = s.targets[0].id
                known = (
                    opener.startswith(NETWORK_PREFIXES)
                    or opener in DB_CONNECTS
                    or (not awaited and isinstance(value.func, ast.Name) and value.func.id in conn_helpers)
                    or borrowed
                    or any(k.arg == "stream" for k in value.keywords)
                )
                for j in range(i + 1, len(stmts)):
                    release = next((r for r in RELEASE_METHODS if _is_release(stmts[j], name, r)), None)
                    closer = f"{name}.{release}()"
                    if release is None and borrowed and (back := _given_back(stmts[j], name)):
                        release, closer = "release", back
                    if release is None:
                        continue
                    between = stmts[i + 1 : j]
                    exit_node = next((n for b in between for n in walk_stmts([b])
                                      if isinstance(n, ast.Return | ast.Raise) and not _owned_elsewhere(mod, n, name)),
                                     None)  # fmt: skip
                    if exit_node is not None:
                        word = "return" if isinstance(exit_node, ast.Return) else "raise"
                        yield _hit("MIR014", s, name=name, release=release, closed=stmts[j].lineno,
                                   closer=closer, why=f"the `{word}` on line {exit_node.lineno}")  # fmt: skip
                    elif known and any(isinstance(n, ast.Call) for b in between for n in walk_stmts([b])):
                        call = next(n for b in between for n in walk_stmts([b]) if isinstance(n, ast.Call))
                        yield _hit("MIR014", s, name=name, release=release, closed=stmts[j].lineno,
                                   closer=closer, why=f"an exception from line {call.lineno}")  # fmt: skip
                    break


TIME_CALLS = frozenset({"time", "monotonic", "perf_counter", "now", "utcnow", "today", "clock"})


def _reads_clock(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) and callee_last(n.func) in TIME_CALLS for n in ast.walk(node))


def mir015_expired_never_swept(mod: Module) -> Iterator[Hit]:
    """A dict attribute whose entries carry an expiry (the class compares them with the clock),
    stored to by key, and removed from only one key at a time outside any loop (`pop(key)` on a
    read that finds it stale, `del` on logout): no sweep, no clear, no cap. The lazy-expiry cache
    and the session store that only forget a key when it is asked for again."""
    for cls in mod.classes:
        if not isinstance(cls, ast.ClassDef):
            continue
        methods = [m for m in cls.body if isinstance(m, FUNCS)]
        if not any(isinstance(n, ast.Compare) and _reads_clock(n) for m in methods for n in walk_local(m)):
            continue  # no expiry in this class
        dicts: set[str] = set()  # self.x = {} in __init__
        for m in methods:
            if m.name != "__init__":
                continue
            for n in walk_local(m):
                if isinstance(n, ast.Assign | ast.AnnAssign) and _empty_dict(n.value):
                    for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                        k = key_of(t)
                        if k and k.startswith("self.") and k.count(".") == 1:
                            dicts.add(k[5:])
        stores: dict[str, ast.AST] = {}
        swept: set[str] = set()  # cleared, swept in a loop, reassigned, capped or handed on
        removed: dict[str, set[str]] = {}  # one key at a time, by these methods
        for m in methods:
            for n in walk_local(m):
                if not (isinstance(n, ast.Attribute) and key_of(n) == f"self.{n.attr}" and n.attr in dicts):
                    continue
                attr, parent = n.attr, mod.parents.get(n)
                grand = mod.parents.get(parent) if parent is not None else None
                in_loop = any(isinstance(a, LOOPS) for a in _ancestors_in(mod, n, m))
                if isinstance(n.ctx, ast.Store) and m.name != "__init__":
                    swept.add(attr)
                elif (
                    isinstance(parent, ast.Subscript)
                    and parent.value is n
                    and isinstance(parent.ctx, ast.Store)
                ):
                    if m.name != "__init__":
                        stores.setdefault(attr, parent)
                elif (
                    isinstance(parent, ast.Subscript)
                    and parent.value is n
                    and isinstance(parent.ctx, ast.Del)
                ):
                    if in_loop:
                        swept.add(attr)
                    else:
                        removed.setdefault(attr, set()).add(m.name)
                elif (
                    isinstance(parent, ast.Attribute) and isinstance(grand, ast.Call) and grand.func is parent
                ):
                    if parent.attr in ("clear", "popitem") or (parent.attr == "pop" and in_loop):
                        swept.add(attr)
                    elif parent.attr == "pop":
                        removed.setdefault(attr, set()).add(m.name)
                elif (
                    isinstance(parent, ast.Call)
                    and parent.func is not n
                    and (not _is_len(parent) or _compared(mod, parent))
                ):
                    swept.add(attr)  # handed to something that may trim it, or its size capped
        for attr, node in stores.items():
            if attr in swept:
                continue
            how = removed.get(attr)
            how_text = ("read or removed again (" + ", ".join(f"{m}()" for m in sorted(how)) + ")") if how else (
                "overwritten")  # fmt: skip
            yield _hit("MIR015", node, attr=attr, how=how_text)


def _ancestors_in(mod: Module, node: ast.AST, stop: ast.AST) -> list[ast.AST]:
    out = []
    cur = mod.parents.get(node)
    while cur is not None and cur is not stop:
        out.append(cur)
        cur = mod.parents.get(cur)
    return out


def _empty_dict(value: ast.AST | None) -> bool:
    if isinstance(value, ast.Dict):
        return not value.keys
    return (
        isinstance(value, ast.Call) and callee_last(value.func) in ("dict", "OrderedDict") and not value.args
    )


# Reads a database driver names without an IO word (asyncpg's fetchval, SQLAlchemy's scalar).
DB_READS = frozenset(
    {"fetchval", "fetchrow", "fetchone", "fetchall", "fetchmany", "scalar", "scalars", "count"}
)
# Receivers that run one statement at a time: two queries on one connection cannot overlap.
SINGLE_FILE = frozenset({"conn", "connection", "cursor", "cur", "tx", "transaction", "db", "txn"})
# Receivers that serve many requests at once: a pool, an HTTP client or session, an API client.
SHARED_RECEIVERS = frozenset({"pool", "client", "session", "http", "api", "redis", "es", "s3"})


def _reads_below(mod: Module, call: ast.Call, at: ast.AST) -> bool:
    """`self.m(...)` (or `f(...)`) where `async def m` of the same class (or module) awaits a GET or a query on a shared
    receiver (`await self.client.get(url)`, `async with self.session.get(url)`) and writes nothing
    (no post/put/delete/execute)."""
    name = callee_last(call.func)
    method = _own_async_def(mod, call, mod.enclosing(at, (ast.ClassDef,)))
    if method is None or name.lstrip("_").startswith(
        ("save", "send", "post", "put", "delete", "write", "update")
    ):
        return False
    calls = [
        a.value for a in walk_local(method) if isinstance(a, ast.Await) and isinstance(a.value, ast.Call)
    ] + [  # `async with self.session.get(url) as resp:` (aiohttp) awaits the request too
        i.context_expr for a in walk_local(method) if isinstance(a, ast.AsyncWith)
        for i in a.items if isinstance(i.context_expr, ast.Call)
    ]  # fmt: skip
    reads = [c for c in calls if isinstance(c.func, ast.Attribute)
             and any(w in SHARED_RECEIVERS for w in _words(unparse(c.func.value, 80).rsplit(".", 1)[-1]))
             and (c.func.attr in HTTP_READS | DB_READS | {"fetch", "fetch_one", "fetch_all"})]  # fmt: skip
    writes = [c for c in calls if callee_last(c.func) in WRITE_METHODS_LOWER]
    return bool(reads) and not writes


WRITE_METHODS_LOWER = frozenset(
    {"post", "put", "patch", "delete", "execute", "executemany", "send", "publish"}
)


def _awaited_read(mod: Module, s: ast.stmt) -> tuple[set[str], ast.Call] | None:
    """`x = await read(...)`: (the names it binds, the call) when the call is a read that talks
    to the outside on something that can serve two at once."""
    if not (isinstance(s, ast.Assign | ast.AnnAssign) and isinstance(s.value, ast.Await)):
        return None
    call = s.value.value
    targets = s.targets if isinstance(s, ast.Assign) else [s.target]
    if not (
        isinstance(call, ast.Call)
        and all(isinstance(t, ast.Name | ast.Tuple | ast.Attribute) for t in targets)
    ):
        return None
    if (mod.dotted(call.func) or "").startswith(ASYNC_LIBS):
        return None
    if not isinstance(call.func, ast.Name | ast.Attribute):
        return None
    if isinstance(call.func, ast.Name) or key_of(call.func.value) == "self":
        # `await self._get_json(path)`, `await _get(client, path)`: a read one function down (a
        # function of the module that is not one is a guard or a step as often as a read)
        if not _reads_below(mod, call, s):
            return None
        return set().union(*(target_names(t) for t in targets)), call
    words = _words(unparse(call.func.value, 80).rsplit(".", 1)[-1])
    if not any(w in SHARED_RECEIVERS for w in words) or any(w in SINGLE_FILE for w in words):
        return None
    if callee_last(call.func) not in DB_READS and not looks_like_io(callee_last(call.func)):
        return None
    return set().union(*(target_names(t) for t in targets)), call


def mir017_independent_awaits(mod: Module) -> Iterator[Hit]:
    """`a = await read_a(x)` then `b = await read_b(x)`, the second reading nothing the first bound,
    outside loops (MIR003's) and locks."""
    for func in mod.functions():
        if not isinstance(func, ast.AsyncFunctionDef):
            continue
        for stmts in _statement_lists(func):
            outer = _ancestors_in(mod, stmts[0], func)
            if any(isinstance(a, LOOPS) for a in outer) or any(
                "lock" in unparse(i.context_expr, 80).lower()
                for a in outer if isinstance(a, ast.With | ast.AsyncWith) for i in a.items
            ):  # fmt: skip
                continue  # a loop is MIR003's; under a lock the order may be the point
            for a, b in itertools.pairwise(stmts):
                first, second = _awaited_read(mod, a), _awaited_read(mod, b)
                if first is None or second is None or names_read(second[1]) & first[0]:
                    continue
                yield _hit("MIR017", second[1], first=f"`{unparse(first[1].func, 40)}()`",
                           second=f"`{unparse(second[1].func, 40)}()`", first_line=a.lineno)  # fmt: skip
                break  # one finding per run of awaits


# Calls that read and parse a file or build a costly object from what they are given.
LOADERS: dict[str, str] = {
    "json.load": "parses a JSON file", "pickle.load": "unpickles a file", "pickle.loads": "unpickles",
    "yaml.safe_load": "parses YAML", "yaml.load": "parses YAML", "tomllib.load": "parses a TOML file",
    "joblib.load": "loads a model file", "torch.load": "loads a model file", "numpy.load": "loads an array file",
    "pandas.read_csv": "reads a CSV file", "pandas.read_parquet": "reads a parquet file",
    "xml.etree.ElementTree.parse": "parses an XML file", "jinja2.Environment": "builds a template environment",
    "jinja2.Template": "compiles a template",
}  # fmt: skip
READ_METHODS = frozenset({"read_text", "read_bytes"})
FILE_OBJECT_LOADERS = frozenset({"json.load", "pickle.load", "yaml.safe_load", "yaml.load", "tomllib.load"})
# Map-like calls that run the callable they are given once per item.
MAPPERS = frozenset({"map", "imap", "imap_unordered", "starmap", "submit", "apply_async", "run_in_executor",
                     "to_thread", "map_async"})  # fmt: skip
# A function named so says that loading is its job (or that the load is meant to be fresh).
LOAD_NAMES = (
    "load",
    "read",
    "reload",
    "refresh",
    "open",
    "parse",
    "from_",
    "main",
    "__init__",
    "setup",
    "init",
)


def _repeated_names(mod: Module) -> set[str]:
    """Functions that run many times: called in a loop or comprehension, handed to a map-like
    call, or run per event; and what they call in turn."""
    if mod.repeated_names is None:
        roots = {getattr(f, "name", "") for f in mod.functions()
                 if _runs_per_event(f) and not isinstance(f, ast.AsyncFunctionDef)}  # fmt: skip
        for site in call_sites(mod):
            if site.in_loop:
                roots.add(site.callee)
            if site.callee in MAPPERS:
                roots |= {callee_last(a) for a in site.call.args if isinstance(a, ast.Name | ast.Attribute)}
        mod.repeated_names = _reached(_callees(mod), roots, roots)
    return mod.repeated_names


BUILTINS = frozenset(dir(builtins))
# Calls whose result is the same each time for the same arguments: paths and opened files. (Any
# other call, a query or a request, may answer differently next time.)
STEADY_CALLS = frozenset({"open", "Path", "PurePath", "join", "joinpath", "str", "fspath", "expanduser", "resolve",
                          "with_suffix", "with_name", "FileSystemLoader", "PackageLoader", "getenv", "get"})  # fmt: skip


def _module_names(mod: Module) -> set[str]:
    """Imports, and the names the module's top level binds: constants, functions, classes."""
    return set(mod.aliases) | {
        name for s in mod.tree.body for name in (
            {n for t in s.targets for n in target_names(t)} if isinstance(s, ast.Assign)
            else {s.name} if isinstance(s, (*FUNCS, ast.ClassDef)) else set())
    }  # fmt: skip


def _invariant_locals(mod: Module, func: ast.AST) -> set[str]:
    """Locals of func bound only from self's attributes, constants and module names (`path =
    self.config.path`, `with open(path) as fh`), never from a parameter, a loop or a call's result
    that may differ (a query's row)."""
    bound: dict[str, list[ast.AST | None]] = {}
    for n in walk_local(func):
        if isinstance(n, ast.Assign | ast.AnnAssign):
            for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                for name in target_names(t):
                    bound.setdefault(name, []).append(n.value)
        elif isinstance(n, ast.With | ast.AsyncWith):
            for i in n.items:
                if i.optional_vars is not None:
                    for name in target_names(i.optional_vars):
                        bound.setdefault(name, []).append(i.context_expr)
        elif isinstance(n, ast.For | ast.AsyncFor | ast.comprehension | ast.NamedExpr | ast.ExceptHandler):
            target = getattr(n, "target", None) if not isinstance(n, ast.ExceptHandler) else None
            for name in target_names(target) if target is not None else {getattr(n, "name", None) or ""}:
                bound.setdefault(name, []).append(None)  # varies
    for n in walk_local(func):  # a list filled from a parameter (`pats.append(...)`) varies with it
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in MUTATORS:
            if isinstance(n.func.value, ast.Name):
                bound.setdefault(n.func.value.id, []).append(None)
        elif isinstance(n, ast.AugAssign | ast.Subscript) and isinstance(
            getattr(n, "ctx", ast.Store()), ast.Store
        ):
            target = n.target if isinstance(n, ast.AugAssign) else n.value
            if isinstance(target, ast.Name):
                bound.setdefault(target.id, []).append(None)
    module = _module_names(mod)
    ok: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, values in bound.items():
            if name in ok or any(v is None for v in values):
                continue
            if all(
                names_read(v) <= ok | module | BUILTINS | {"self", "cls"}
                and all(callee_last(c.func) in STEADY_CALLS for c in ast.walk(v) if isinstance(c, ast.Call))
                for v in values if v is not None
            ):  # fmt: skip
                ok.add(name)
                changed = True
    return ok - _params(func)


def _compiles(mod: Module, call: ast.Call) -> bool:
    """`re.compile(<a value, not a literal>)`: a literal pattern `re` caches itself."""
    return (
        (mod.dotted(call.func) or "") == "re.compile"
        and bool(call.args)
        and not isinstance(call.args[0], ast.Constant)
    )


def _downloads(mod: Module, call: ast.Call) -> bool:
    """A GET of a URL the module names as a constant, on an HTTP client or session (`await
    self.client.get(LOGO_URL)`, `requests.get(SCHEMA_URL)`)."""
    if callee_last(call.func) != "get" or not isinstance(call.func, ast.Attribute) or not call.args:
        return False
    if not names_read(call.args[0]) or names_read(call.args[0]) - _module_names(mod):
        return (
            False  # a URL of the object's own (`self.url`): it may be meant fresh; a module constant is not
        )
    if (mod.dotted(call.func) or "").startswith(HTTP_MODULES):
        return True
    last = unparse(call.func.value, 80).rsplit(".", 1)[-1]
    return any(w in ("client", "session", "http") for w in _words(last))


def _per_item_reached(mod: Module) -> set[str]:
    """Functions run per item or per event, not per tick: named as a handler (EVENT_PREFIXES),
    called in a for loop or comprehension or handed to a map-like call, and what they call,
    two calls down."""
    if mod.per_item_names is None:
        roots = {
            getattr(f, "name", "")
            for f in mod.functions()
            if getattr(f, "name", "").startswith(EVENT_PREFIXES)
        }
        for site in call_sites(mod):
            if site.in_loop and not site.in_while:
                roots.add(site.callee)
            if site.callee in MAPPERS:
                roots |= {callee_last(a) for a in site.call.args if isinstance(a, ast.Name | ast.Attribute)}
        mod.per_item_names = _reached(_callees(mod), roots, roots)
    return mod.per_item_names


def _rebuilds(mod: Module, call: ast.Call, helpers: frozenset[str]) -> str | None:
    """A regex built afresh from the same value by a module function that only computes
    (_costly_helpers) and compiles it (`format_to_regex(fmt)`: escapes, scans and replaces
    first). A bare `re.compile(pattern)` is not: `re` keeps the patterns it compiled."""
    if isinstance(call.func, ast.Name) and call.func.id in helpers and (call.args or call.keywords):
        helper = _helpers_by_name(mod).get(call.func.id)
        if helper is not None and any(
            isinstance(c, ast.Call) and _compiles(mod, c) for c in walk_local(helper)
        ):
            return f"builds and compiles a regular expression (in {call.func.id}())"
    return None


def _loads(mod: Module, call: ast.Call, classes: dict[str, ast.ClassDef]) -> str | None:
    """What `call` loads: a loader, `path.read_text()`, `open(...)` read in a with, or a class of
    the module whose __init__ loads from its arguments (`FeatureSpec(path)`)."""
    name = mod.dotted(call.func) or ""
    if name in FILE_OBJECT_LOADERS and not (call.args and isinstance(call.args[0], ast.Name | ast.Call)):
        return None  # json.load(sys.stdin): a stream, whose next message differs
    if name in LOADERS:
        return LOADERS[name]
    if isinstance(call.func, ast.Attribute) and call.func.attr in READ_METHODS:
        live = any(isinstance(c, ast.Constant) and str(c.value).startswith(("/proc", "/sys", "/dev"))
                   for c in ast.walk(call.func.value))  # fmt: skip
        return None if live else "reads a file"
    cls = classes.get(name)
    if cls is not None and call.args:
        init = next((m for m in cls.body if isinstance(m, ast.FunctionDef) and m.name == "__init__"), None)
        if init is not None and any(isinstance(n, ast.Call) and _loads(mod, n, {}) for n in walk_local(init)):
            return "reads and parses a file (in its __init__)"
    return None


def _steady_params(mod: Module, func: ast.AST) -> set[str]:
    """Parameters that every call of `func` in the module passes the same each time: a constant
    (`render("digest.txt", sub, items)`), or, at a call in a loop, an expression the loop does not
    change (`parse_line(line, fmt)` in `for line in fh:`). None when the module never calls it."""
    name = getattr(func, "name", "")
    sites = [s.call for s in call_sites(mod) if s.callee == name]
    args = getattr(func, "args", None)
    if not sites or not isinstance(args, ast.arguments):
        return set()
    names = [a.arg for a in [*args.posonlyargs, *args.args]]
    if names[:1] in (["self"], ["cls"]):
        names = names[1:]
    steady = set(names) | {a.arg for a in args.kwonlyargs}
    for call in sites:
        holder = mod.parents.get(call)
        if isinstance(holder, ast.Await):
            holder = mod.parents.get(holder)
        if isinstance(holder, ast.Return):
            return set()  # `return f(...)` in a loop: it runs once, for the first item that answers
        loop = mod.enclosing(call, (*LOOPS, *COMPREHENSIONS))
        varies = _loop_names(loop) if loop is not None else None
        given = {
            **dict(zip(names, call.args, strict=False)),
            **{k.arg: k.value for k in call.keywords if k.arg},
        }
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return set()
        for param in list(steady):
            value = given.get(param)
            if value is None or isinstance(value, ast.Constant):
                continue  # its default, or a constant: the same on every call
            if (
                varies is None
                or names_read(value) & varies
                or any(isinstance(c, ast.Call) for c in ast.walk(value))
            ):
                steady.discard(param)
    return steady


def _loop_names(loop: ast.AST) -> set[str]:
    """Names a loop or comprehension binds or changes per pass."""
    if isinstance(loop, COMPREHENSIONS):
        return set().union(*(target_names(g.target) for g in loop.generators))
    bound = target_names(loop.target) if isinstance(loop, ast.For | ast.AsyncFor) else set()
    return bound | assigned_names(getattr(loop, "body", []))


def mir018_reload_per_call(mod: Module) -> Iterator[Hit]:
    repeated = _repeated_names(mod)
    classes = {c.name: c for c in mod.classes if isinstance(c, ast.ClassDef)}
    helpers = frozenset(_costly_helpers(mod))
    for func in mod.functions():
        name = getattr(func, "name", "")
        if name not in repeated or getattr(func, "decorator_list", None):
            continue
        loading_is_its_job = name.lstrip("_").startswith(LOAD_NAMES)
        if any(
            callee_last(n.func) in ("getmtime", "stat") for n in walk_local(func) if isinstance(n, ast.Call)
        ):
            continue  # it checks whether the file changed: a deliberate reload
        given_same = _steady_params(mod, func)
        params = _params(func) - {"self", "cls"} - given_same
        for n in walk_local(func):
            if not isinstance(n, ast.Call):
                continue
            what = (None if loading_is_its_job else _loads(mod, n, classes)) or _rebuilds(mod, n, helpers)
            if not what and name in _per_item_reached(mod) and _downloads(mod, n):
                what = "downloads the same URL"  # not a poll: it runs per item or event, not per tick
            if not what:
                continue
            opened = [w for w in walk_local(func) if isinstance(w, ast.With)
                      and any(isinstance(i.context_expr, ast.Call) and callee_last(i.context_expr.func) == "open"
                              for i in w.items)]  # fmt: skip
            handles = {
                i.optional_vars.id for w in opened for i in w.items if isinstance(i.optional_vars, ast.Name)
            }
            if (mod.dotted(n.func) or "") in FILE_OBJECT_LOADERS and isinstance(n.args[0], ast.Name) and (
                    n.args[0].id not in handles):  # fmt: skip
                continue  # loaded from a stream or file handed in, not from a path of its own
            sources = [n, *(i.context_expr for w in opened for i in w.items)] if n.args and isinstance(
                n.args[0], ast.Name) else [n]  # fmt: skip
            steady = (
                _invariant_locals(mod, func) | _module_names(mod) | BUILTINS | {"self", "cls"} | given_same
            )
            if not all(names_read(src) <= steady - params for src in sources):
                continue
            parent = mod.parents.get(n)
            if isinstance(parent, ast.Assign) and any(key_of(t) and str(key_of(t)).startswith("self.")
                                                      for t in parent.targets):  # fmt: skip
                continue  # kept on the object: loaded once
            how = (
                "per event" if _runs_per_event(func) else "once per item (called in a loop, or handed to map)"
            )
            yield _hit("MIR018", n, call=unparse(n, 50), what=what, func=name, how=how)
            break


def _front_call(n: ast.AST) -> tuple[str, str] | None:
    """`x.pop(0)`: (receiver, the fix) for a call at the front of a list."""
    if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.args):
        return None
    first = n.args[0]
    if not (isinstance(first, ast.Constant) and first.value == 0 and type(first.value) is int):
        return None
    if n.func.attr == "pop" and len(n.args) == 1:
        return unparse(n.func.value, 40), "popleft()"
    return None  # (insert(0, x) costs as much, but was measured on scope stacks of a few items)


# Calls that make a list of a whole input: every line or row of it. (`header.split(";")`, a call's
# arguments, a few addresses were the harmless findings on well-kept packages.)
WHOLE_INPUT_CALLS = frozenset({"splitlines", "readlines", "fetchall"})
WHOLE_INPUT_SOURCES = frozenset({"reader", "DictReader", "open", "iterdir", "glob", "rglob", "listdir", "scandir",
                                 "fetchall", "readlines", "splitlines"})  # fmt: skip


def _whole_inputs(func: ast.AST) -> set[str]:
    """Names that hold a whole input, not a handful of items: parameters annotated as lists, and
    locals made by `text.splitlines()`, `cur.fetchall()`, `list(csv.reader(f))`."""
    args = getattr(func, "args", None)
    out = {
        a.arg for a in ([*args.posonlyargs, *args.args, *args.kwonlyargs] if args else [])
        if a.annotation is not None and unparse(a.annotation, 80).lower().startswith(("list", "typing.list"))
    }  # fmt: skip
    for n in walk_local(func):
        if isinstance(n, ast.Assign | ast.AnnAssign) and isinstance(n.value, ast.Call):
            v = n.value
            whole = callee_last(v.func) in WHOLE_INPUT_CALLS or (
                callee_last(v.func) == "list"
                and len(v.args) == 1
                and isinstance(v.args[0], ast.Call)
                and callee_last(v.args[0].func) in WHOLE_INPUT_SOURCES
            )
            if whole:
                for t in n.targets if isinstance(n, ast.Assign) else [n.target]:
                    out |= target_names(t)
    return out


def _per_key_lists(mod: Module, func: ast.AST) -> set[str]:
    """Locals bound to one list of a dict of lists kept on the object (`window =
    self._hits.setdefault(client, [])`, `self._hits[client]`): it lives, and grows, past the call."""
    held = {k for k in _dicts_of_lists(mod, func) if k.startswith("self.")}
    out: set[str] = set()
    for n in walk_local(func):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            v = n.value
            if (
                isinstance(v, ast.Call)
                and isinstance(v.func, ast.Attribute)
                and v.func.attr in ("setdefault", "get")
            ):
                v = v.func  # self._hits.setdefault(k, []) reads self._hits like self._hits[k]
            if isinstance(v, ast.Subscript | ast.Attribute) and key_of(v.value) in held:
                out.add(n.targets[0].id)
    return out


def mir016_list_front_in_loop(mod: Module) -> Iterator[Hit]:
    """`rows.pop(0)` inside a loop on a whole input, or on a list attribute (`self.queue =
    []`): a deque's pop takes no index, so `.pop(0)` is a list's (or, rarely, a dict's: a dict
    literal or dict() bound to the name is left alone)."""
    dict_names = {
        key_of(t)
        for n in mod.nodes
        if isinstance(n, ast.Assign | ast.AnnAssign) and n.value is not None
        and (isinstance(n.value, ast.Dict | ast.DictComp) or callee_last(getattr(n.value, "func", n.value))
             in ("dict", "defaultdict", "OrderedDict", "deque"))
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
    }  # fmt: skip
    list_attrs = {
        key_of(t)
        for cls in mod.classes for m in cls.body if isinstance(m, FUNCS) and m.name == "__init__"
        for n in walk_local(m) if isinstance(n, ast.Assign | ast.AnnAssign) and isinstance(n.value, ast.List)
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
    }  # fmt: skip
    for func in mod.functions():
        for n in walk_local(func):
            front = _front_call(n)
            if front is None or front[0] in dict_names:
                continue
            assert isinstance(n, ast.Call)
            name, fix = front
            in_loop = any(isinstance(a, (*LOOPS, *COMPREHENSIONS)) for a in _ancestors_in(mod, n, func))
            if (in_loop and name in _whole_inputs(func) | _per_key_lists(mod, func)) or name in list_attrs:
                where = "inside a loop" if in_loop else "on every call"
                yield _hit("MIR016", n, call=f"{unparse(n.func, 40)}(0)", name=name, where=where, fix=fix)


def _end_taken(sub: ast.AST) -> str | None:
    """ "first" for `x[0]`, "last" for `x[-1]`, else None."""
    if not isinstance(sub, ast.Subscript) or not isinstance(sub.ctx, ast.Load):
        return None
    index = sub.slice
    if isinstance(index, ast.Constant) and index.value == 0:
        return "first"
    if (
        isinstance(index, ast.UnaryOp)
        and isinstance(index.op, ast.USub)
        and getattr(index.operand, "value", 0) == 1
    ):
        return "last"
    return None


def mir019_sort_for_one_end(mod: Module) -> Iterator[Hit]:
    """In a loop: `sorted(xs, key=...)[0]`, or `c = sorted(xs, key=...)` whose every later use in
    the loop is `c[0]`/`c[-1]` or a test of whether it is empty: min()/max() would do."""
    for func in mod.functions():
        for loop, parts, _bound in _loop_bodies(func):
            for n in walk_stmts(parts):
                if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "sorted"):
                    continue
                if mod.enclosing(n, (*LOOPS, *COMPREHENSIONS)) is not loop or not n.args:
                    continue
                if not any(k.arg == "key" for k in n.keywords):
                    continue  # `sorted(names)[0]` picks a stable name from a few (all the harmless ones)
                parent = mod.parents.get(n)
                ends = (
                    {_end_taken(parent)} if isinstance(parent, ast.Subscript) and parent.value is n else set()
                )
                if (
                    isinstance(parent, ast.Assign)
                    and len(parent.targets) == 1
                    and isinstance(parent.targets[0], ast.Name)
                ):
                    name = parent.targets[0].id
                    uses = [
                        u
                        for p in parts
                        for u in ast.walk(p)
                        if isinstance(u, ast.Name) and u.id == name and u is not parent.targets[0]
                    ]
                    for u in uses:
                        holder = mod.parents.get(u)
                        if isinstance(holder, ast.Subscript) and holder.value is u:
                            ends.add(_end_taken(holder))
                        elif (
                            isinstance(holder, ast.BoolOp)
                            or (isinstance(holder, ast.If | ast.While) and holder.test is u)
                            or (isinstance(holder, ast.UnaryOp) and isinstance(holder.op, ast.Not))
                        ):
                            continue  # `if candidates and ...`: is it empty
                        else:
                            ends.add(None)
                if ends and None not in ends and len(ends) == 1:
                    reverse = any(k.arg == "reverse" for k in n.keywords)
                    end = ends.pop()
                    smallest = (end == "first") != reverse
                    yield _hit(
                        "MIR019", n, expr=unparse(n, 50), end=end, fix="min()" if smallest else "max()"
                    )


# Exceptions that mean "the service did not answer": worth a retry, after a pause.
TRANSIENT = ("ConnectionError", "Timeout", "TimeoutError", "ReadTimeout", "ConnectTimeout", "RequestException",
             "ClientError", "RedisError", "OperationalError", "URLError", "OSError", "socket.error", "HTTPError",
             "ServiceUnavailable", "TransportError", "ConnectError")  # fmt: skip
WAITS = frozenset({"sleep", "wait", "wait_for", "backoff", "sleep_for", "pause", "delay"})


def _is_log_call(s: ast.stmt) -> bool:
    return (
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and callee_last(s.value.func) in LOG_METHODS
    )


LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "print"})


def mir020_retry_without_backoff(mod: Module) -> Iterator[Hit]:
    """`while True:` around a try whose handler catches a connection or timeout error and goes
    round again (no raise, return or break in it), with no sleep or wait anywhere in the loop."""
    for func in mod.functions():
        for loop in walk_local(func):
            if not (isinstance(loop, ast.While) and isinstance(loop.test, ast.Constant) and loop.test.value):
                continue
            body = list(walk_stmts(loop.body))
            if any(isinstance(n, ast.Call) and callee_last(n.func) in WAITS for n in body):
                continue
            tries = [t for t in loop.body if isinstance(t, ast.Try)]
            if len(tries) != 1 or len(loop.body) > 1 + sum(_is_log_call(t) for t in loop.body):
                continue  # the loop does other work between tries (reads on, counts, checks a deadline)
            for t in tries:
                call = next((c for c in walk_stmts(t.body) if isinstance(c, ast.Call) and callee_last(c.func)
                             not in ("print", "debug", "info", "warning")), None)  # fmt: skip
                for h in t.handlers:
                    caught = ast.unparse(h.type) if h.type is not None else ""
                    if call is None or not (
                        any(w in caught for w in TRANSIENT) or _library_error(mod, h.type, t.body)
                    ):
                        continue
                    if all("Timeout" in part for part in caught.strip("()").split(",")):
                        continue  # the call itself waited out its timeout: a slow retry, not a spin
                    if any(isinstance(n, ast.Raise | ast.Return | ast.Break) for n in walk_stmts(h.body)):
                        continue
                    shown = unparse(h.type, 60) if h.type is not None else caught
                    yield _hit("MIR020", loop, call=unparse(call.func, 40) + "(…)", caught=f"`{shown}`",
                               loop="while True", limit=" and no attempt limit", outcome="and never returns")  # fmt: skip
                    break
    yield from _bounded_retry_without_backoff(mod)


def _library_error(mod: Module, caught: ast.AST | None, body: list[ast.stmt]) -> bool:
    """`except aiomqtt.MqttError` around `aiomqtt.Client(...)`: the error of the client library the
    try block uses (a dropped broker or server connection), whatever the library calls it."""
    root = root_name(caught) if isinstance(caught, ast.Attribute) else None
    return (
        bool(root)
        and root in mod.aliases
        and any(isinstance(c, ast.Call) and root_name(c.func) == root for c in walk_stmts(body))
    )


def _bounded_retry_without_backoff(mod: Module) -> Iterator[Hit]:
    """`for _ in range(n):` around a request whose failure (`if resp.status_code == 429 ...:
    continue`, or an `except` that goes round) tries again at once, with no sleep in the loop,
    while success returns or breaks: n attempts in a burst, against a server that asked us to wait."""
    for func in mod.functions():
        for loop in walk_local(func):
            if not (isinstance(loop, ast.For) and isinstance(loop.iter, ast.Call)
                    and callee_last(loop.iter.func) == "range"):  # fmt: skip
                continue
            body = list(walk_stmts(loop.body))
            if any(isinstance(n, ast.Call) and callee_last(n.func) in WAITS for n in body):
                continue
            if not any(isinstance(n, ast.Return | ast.Break) for n in body):
                continue  # not a retry: the loop does n pieces of work
            call = next((c for c in body if isinstance(c, ast.Call) and (_network_call(mod, c) or (
                isinstance(c.func, ast.Attribute) and c.func.attr in HTTP_METHODS))), None)  # fmt: skip
            if call is None or names_read(call) & target_names(loop.target):
                continue  # the request changes with the loop's counter: n requests, not n attempts at one
            retried = next((n for n in body if isinstance(n, ast.If) and "status" in unparse(n.test, 200)
                            and any(isinstance(c, ast.Continue) for c in walk_stmts(n.body))), None)  # fmt: skip
            if retried is None:
                continue
            yield _hit("MIR020", loop, call=unparse(call.func, 40) + "(…)", caught=f"`{unparse(retried.test, 60)}`",
                       loop=unparse(loop.iter, 30).join(("for _ in ", "")), limit="",
                       outcome="and gives up after a burst of attempts that lasts well under a second")  # fmt: skip


# Pools whose workers are processes or threads: they run until closed, joined or shut down.
POOLS = {"multiprocessing.Pool": "worker processes", "multiprocessing.pool.Pool": "worker processes",
         "multiprocessing.pool.ThreadPool": "worker threads", "multiprocessing.dummy.Pool": "worker threads",
         "concurrent.futures.ProcessPoolExecutor": "worker processes",
         "concurrent.futures.ThreadPoolExecutor": "worker threads"}  # fmt: skip
SHUTS = frozenset({"close", "terminate", "join", "shutdown", "__exit__"})


def _locals_made(
    mod: Module, func: ast.AST, makers: Mapping[str, str]
) -> Iterator[tuple[ast.Assign, str, str]]:
    """(the assignment, the local's name, the maker) for each `name = maker(...)` in func whose
    maker (dotted, after import aliases) is one of makers."""
    for n in walk_local(func):
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            made = (mod.dotted(n.value.func) or "") if isinstance(n.value, ast.Call) else ""
            if made in makers:
                yield n, n.targets[0].id, made


def mir021_pool_never_shut_down(mod: Module) -> Iterator[Hit]:
    """`pool = mp.Pool(n)` (or an executor) in a function, outside any `with`, that the function
    never closes, joins or shuts down, and does not return, store or hand on."""
    for func in mod.functions():
        for n, name, made in _locals_made(mod, func, POOLS):
            kept = False
            for u in walk_local(func):
                if not (isinstance(u, ast.Name) and u.id == name and isinstance(u.ctx, ast.Load)):
                    continue
                holder = mod.parents.get(u)
                if isinstance(holder, ast.Attribute) and holder.value is u:
                    kept = kept or holder.attr in SHUTS
                else:
                    kept = True  # returned, stored, handed to a call or a with: someone else closes it
            if not kept:
                yield _hit("MIR021", n, name=name, made=unparse(n.value, 40), what=POOLS[made])


LOCKS_MADE = {"asyncio.Semaphore": "semaphore", "asyncio.BoundedSemaphore": "semaphore", "asyncio.Lock": "lock",
              "threading.Lock": "lock", "threading.RLock": "lock", "threading.Semaphore": "semaphore",
              "threading.BoundedSemaphore": "semaphore", "anyio.Semaphore": "semaphore", "anyio.Lock": "lock",
              "trio.Semaphore": "semaphore", "trio.Lock": "lock"}  # fmt: skip


def mir023_lock_per_call(mod: Module) -> Iterator[Hit]:
    """`sem = asyncio.Semaphore(n)` bound to a local and only entered (`async with sem`,
    `sem.acquire()`) in the same call: never handed to a task, a nested function, or an attribute."""
    for func in mod.functions():
        nested = [
            n
            for n in ast.walk(func)
            if isinstance(n, (*FUNCS, ast.Lambda, *COMPREHENSIONS)) and n is not func
        ]
        for n, name, made in _locals_made(mod, func, LOCKS_MADE):
            uses = [
                u
                for u in walk_local(func)
                if isinstance(u, ast.Name) and u.id == name and isinstance(u.ctx, ast.Load)
            ]
            entered = [u for u in uses if isinstance(p := mod.parents.get(u), ast.withitem)
                       or (isinstance(p, ast.Attribute) and p.attr in ("acquire", "release"))]  # fmt: skip
            shared = any(isinstance(u, ast.Name) and u.id == name for c in nested for u in ast.walk(c))
            if entered and len(entered) == len(uses) and not shared:
                yield _hit("MIR023", n, name=name, made=unparse(n.value, 40), what=LOCKS_MADE[made],
                           func=getattr(func, "name", "?"))  # fmt: skip


TEMP_MAKERS = frozenset({"tempfile.mkstemp", "tempfile.mktemp", "tempfile.mkdtemp"})
REMOVERS_OF_PATHS = frozenset({"os.unlink", "os.remove", "shutil.rmtree"})


def _makes_temp(mod: Module, call: ast.Call) -> bool:
    """`tempfile.mkstemp(...)`, `NamedTemporaryFile(delete=False)`, or a module function that
    makes one and returns its path."""
    name = mod.dotted(call.func) or ""
    if name in TEMP_MAKERS:
        return True
    if name == "tempfile.NamedTemporaryFile":
        return any(k.arg == "delete" and isinstance(k.value, ast.Constant) and k.value.value is False
                   for k in call.keywords)  # fmt: skip
    helper = _helpers_by_name(mod).get(callee_last(call.func)) if isinstance(call.func, ast.Name) else None
    return (
        helper is not None
        and any(
            isinstance(c, ast.Call) and (mod.dotted(c.func) or "") in TEMP_MAKERS for c in walk_local(helper)
        )
        and any(isinstance(r, ast.Return) and r.value is not None for r in walk_local(helper))
    )


def _in_cleanup(mod: Module, node: ast.AST, func: ast.AST) -> bool:
    """Under a `finally`, an `except` handler, or a `with` whose exit runs on failure too."""
    child, cur = node, mod.parents.get(node)
    while cur is not None and cur is not func:
        if isinstance(cur, ast.Try) and any(child is s for s in cur.finalbody):
            return True
        if isinstance(cur, ast.ExceptHandler):
            return True
        child, cur = cur, mod.parents.get(cur)
    return False


def mir024_temp_file_left(mod: Module) -> Iterator[Hit]:
    """A temporary file made in a function (tempfile.mkstemp, NamedTemporaryFile(delete=False), or
    a helper of the file that returns one) and removed later in the same function outside any
    finally/except, with a call that can raise in between."""
    for func in mod.functions():
        made = [c for c in walk_local(func) if isinstance(c, ast.Call) and _makes_temp(mod, c)]
        if not made:
            continue
        first = min(c.lineno for c in made)
        removes = [c for c in walk_local(func) if isinstance(c, ast.Call) and c.lineno > first
                   and ((mod.dotted(c.func) or "") in REMOVERS_OF_PATHS
                        or (isinstance(c.func, ast.Attribute) and c.func.attr == "unlink"))]  # fmt: skip
        if any(_in_cleanup(mod, c, func) for c in removes):
            continue  # it is removed on failure too
        for c in removes:
            between = [x for x in walk_local(func) if isinstance(x, ast.Call) and first < x.lineno < c.lineno
                       and x not in made]  # fmt: skip
            if between:
                yield _hit("MIR024", c, cleanup=unparse(c, 40), made=first)
                break


def mir025_commit_per_row(mod: Module) -> Iterator[Hit]:
    """`conn.commit()` as a statement of a for loop's own body (not under an `if`: a batch) where
    the loop walks data, on a database connection."""
    for func in mod.functions():
        params = _params(func)
        for loop in walk_local(func):
            if not isinstance(loop, ast.For | ast.AsyncFor) or is_constant_collection(loop.iter):
                continue
            it = _loop_iters(loop)[0]
            if isinstance(it, ast.Call) and callee_last(it.func) == "range":
                continue
            for s in loop.body:
                call = s.value if isinstance(s, ast.Expr) else None
                if isinstance(call, ast.Await):
                    call = call.value
                if not (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "commit"
                ):
                    continue
                recv = key_of(call.func.value) or ""
                last = recv.rsplit(".", 1)[-1].lower()
                dbish = mod.object_kind(call.func.value, call) in DB_KINDS or any(
                    last.startswith(p) or last.endswith(p) for p in ("conn", "db", "connection", "session")
                )
                if dbish and (_iterates_input(loop, params) or isinstance(it, ast.Name)):
                    yield _hit("MIR025", call, call=unparse(call, 40), rows=unparse(it, 30) if it else "rows")


def _single_worker(cls: ast.ClassDef) -> set[str | None]:
    """Executors of the class made with max_workers=1 (`self._pool = ThreadPoolExecutor(max_workers=1)`,
    `with ThreadPoolExecutor(max_workers=1) as pool:`): they run one task at a time."""
    pairs: list[tuple[ast.AST | None, ast.AST]] = []
    for n in ast.walk(cls):
        if isinstance(n, ast.Assign):
            pairs += [(t, n.value) for t in n.targets]
        elif isinstance(n, ast.With):
            pairs += [(i.optional_vars, i.context_expr) for i in n.items]
    return {
        key_of(t)
        for t, v in pairs
        if t is not None and isinstance(v, ast.Call)
        and any(k.arg == "max_workers" and getattr(k.value, "value", None) == 1 for k in v.keywords)
    }  # fmt: skip


def _worker_methods(mod: Module, cls: ast.ClassDef) -> set[str]:
    """Methods of `cls` that run on several worker threads at once: `self.m` handed to an
    executor's submit/map (not one with a single worker) or to `Thread(target=...)` made in a
    loop, inside the class, and the `self.x()` they call, two calls down."""
    methods = {m.name: m for m in cls.body if isinstance(m, FUNCS)}
    single = _single_worker(cls)
    roots: set[str] = set()
    for m in methods.values():
        for n in walk_local(m):
            if not isinstance(n, ast.Call):
                continue
            given: list[ast.AST] = []
            if callee_last(n.func) in ("Thread", "Timer") and any(
                isinstance(a, (*LOOPS, *COMPREHENSIONS)) for a in _ancestors_in(mod, n, m)
            ):
                given += [k.value for k in n.keywords if k.arg == "target"]
            pool = n.func.value if isinstance(n.func, ast.Attribute) else None
            if (
                callee_last(n.func) in HANDS_TO_WORKER
                and n.args
                and pool is not None
                and key_of(pool) not in single
            ):
                given.append(n.args[0])
            roots |= {g.attr for g in given if isinstance(g, ast.Attribute) and key_of(g) == f"self.{g.attr}"}
    called = {name: {c.func.attr for c in walk_local(m) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                     and key_of(c.func.value) == "self"} for name, m in methods.items()}  # fmt: skip
    return _reached(called, roots, roots) & set(methods)


def mir026_unlocked_worker_update(mod: Module) -> Iterator[Hit]:
    """`self.x += n` / `self.stats[k] += 1` in a function run on worker threads (a Thread target
    or an executor's submit/map, as MIR010), with no `with <lock>:` around it."""
    reported: set[ast.AST] = set()
    for n in sorted((x for x in mod.nodes if isinstance(x, ast.AugAssign)), key=lambda x: x.lineno):
        if not isinstance(n, ast.AugAssign) or not isinstance(n.target, ast.Attribute | ast.Subscript):
            continue
        if root_name(n.target) != "self":
            continue
        func = mod.enclosing(n, FUNCS)
        cls = mod.enclosing(n, (ast.ClassDef,))
        if func is None or isinstance(func, ast.AsyncFunctionDef) or not isinstance(cls, ast.ClassDef):
            continue
        if getattr(func, "name", "") not in _worker_methods(mod, cls):
            continue
        locked = any(isinstance(a, ast.With) and any(is_lockish(mod, i.context_expr, a) for i in a.items)
                     for a in _ancestors_in(mod, n, func))  # fmt: skip
        if not locked and func not in reported:  # one finding per function: the first such update
            reported.add(func)
            op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}.get(type(n.op), "")
            yield _hit("MIR026", n, target=unparse(n.target, 40), op=op, func=getattr(func, "name", "?"))


SYNC_PROCESS_MAKERS = ("subprocess.Popen",)
KILLS = frozenset({"kill", "terminate", "send_signal"})


def _processes(mod: Module, func: ast.AST, makers: tuple[str, ...]) -> set[str]:
    """Local names bound to a child process made by one of `makers` (`p = Popen(..)`, `with Popen(..) as p`)."""
    found = set()
    for n in walk_local(func):
        pairs: list[tuple[ast.AST, ast.AST | None]] = []
        if isinstance(n, ast.Assign) and len(n.targets) == 1:
            pairs.append((n.value, n.targets[0]))
        elif isinstance(n, ast.With | ast.AsyncWith):
            pairs += [(i.context_expr, i.optional_vars) for i in n.items]
        for value, target in pairs:
            value = value.value if isinstance(value, ast.Await) else value
            if (
                isinstance(value, ast.Call)
                and mod.dotted(value.func) in makers
                and isinstance(target, ast.Name)
            ):
                found.add(target.id)
    return found


def mir027_process_not_killed(mod: Module) -> Iterator[Hit]:
    """A child waited on with a timeout (`p.communicate(timeout=)`, `p.wait(timeout=)`, or
    asyncio's under `wait_for`) and never killed in the function: the timeout ends the wait,
    not the child. The subprocess docs' own pitfall; `subprocess.run(timeout=)` kills it, so
    it is not flagged. A process handed elsewhere (returned, stored, passed) may be killed
    there, so it is not flagged either."""
    for func in mod.functions():
        sync = _processes(mod, func, SYNC_PROCESS_MAKERS)
        procs = sync | _processes(mod, func, PROCESS_MAKERS)
        nodes = walk_local(func)
        for n in nodes:
            if isinstance(n, ast.Name) and n.id in procs and isinstance(n.ctx, ast.Load):
                up = mod.parents.get(n)
                if not isinstance(up, ast.Attribute) or up.attr in KILLS:
                    procs.discard(n.id)  # handed on, or killed
        for n in nodes:
            if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr in ("communicate", "wait") and isinstance(n.func.value, ast.Name)
                    and n.func.value.id in procs):  # fmt: skip
                continue
            proc = n.func.value.id
            timed = has_kw(n, "timeout") or (n.func.attr == "wait" and bool(n.args)) or len(n.args) > 1
            if proc in sync and timed or proc not in sync and _under_timeout(mod, n):
                yield _hit("MIR027", n, call=f"`{unparse(n.func, 40)}()`", proc=proc,
                           func=getattr(func, "name", "?"))  # fmt: skip
                procs.discard(proc)  # one finding per process


SLOW_HASHES = frozenset({"hashlib.pbkdf2_hmac", "hashlib.scrypt", "bcrypt.hashpw", "bcrypt.checkpw", "bcrypt.kdf",
                         "scrypt.hash", "argon2.low_level.hash_secret", "argon2.low_level.verify_secret"})  # fmt: skip


def _slow_hash(mod: Module, func: ast.AST) -> str | None:
    return next((f"{unparse(n.func, 40)}()" for n in walk_local(func)
                 if isinstance(n, ast.Call) and (mod.dotted(n.func) or "") in SLOW_HASHES), None)  # fmt: skip


def mir028_slow_hash_in_async(mod: Module) -> Iterator[Hit]:
    """A key derivation (pbkdf2, scrypt, bcrypt, argon2: slow on purpose, tens to hundreds of
    milliseconds each) called in async def, directly or through a plain function or method of
    the module (one level down; its name defined once). Handed to a thread (`to_thread(hashlib.
    pbkdf2_hmac, ...)`) it is a reference, not a call, so it is not flagged."""
    defs: dict[str, list[ast.AST]] = {}
    for f in mod.functions():
        defs.setdefault(f.name, []).append(f)
    hashing = {name: via for name, fs in defs.items() if len(fs) == 1 and isinstance(fs[0], ast.FunctionDef)
               and (via := _slow_hash(mod, fs[0]))}  # fmt: skip
    for func in mod.functions():
        if isinstance(func, ast.AsyncFunctionDef):
            for n in walk_local(func):
                if not isinstance(n, ast.Call):
                    continue
                if (mod.dotted(n.func) or "") in SLOW_HASHES:
                    yield _hit("MIR028", n, call=f"`{unparse(n.func, 40)}()`")
                elif (
                    (name := callee_last(n.func)) in hashing
                    and name != func.name
                    and root_name(n.func) not in mod.aliases  # `jwt.verify()`: the module's, not the file's
                ):
                    yield _hit("MIR028", n, call=f"`{unparse(n.func, 40)}()` (through `{hashing[name]}`)")


STOPPERS = ("stop", "close", "aclose", "shutdown", "__aexit__", "disconnect", "cleanup", "terminate")
TASK_MAKERS = ("create_task", "ensure_future")


def _made_task(mod: Module, value: ast.AST | None) -> str | None:
    """`asyncio.create_task`, `asyncio.ensure_future` or `loop.create_task`: what made the task."""
    if not (isinstance(value, ast.Call) and callee_last(value.func) in TASK_MAKERS):
        return None
    made = mod.dotted(value.func) or ""
    if made.startswith("asyncio.") or "loop" in made.lower():
        return f"{unparse(value.func, 40)}()"
    return None


def mir029_task_never_cancelled(mod: Module) -> Iterator[Hit]:
    """`self.x = asyncio.create_task(...)` in a class with a stop/close method, where nothing in
    the class cancels `self.x`, awaits it, or hands it on (to gather, wait, a list of tasks)."""
    for cls in mod.classes:
        methods = {m.name: m for m in cls.body if isinstance(m, FUNCS)}
        stop = next((name for name in STOPPERS if name in methods), None)
        if stop is None:
            continue
        tasks: dict[str, tuple[ast.AST, str]] = {}
        for n in ast.walk(cls):
            target, value = (n.targets[0], n.value) if isinstance(n, ast.Assign) and len(n.targets) == 1 else (
                (n.target, n.value) if isinstance(n, ast.AnnAssign) else (None, None))  # fmt: skip
            key = key_of(target) if target is not None else None
            made = _made_task(mod, value)
            if key and key.startswith("self.") and key.count(".") == 1 and made:
                tasks.setdefault(key, (n, made))
        for n in ast.walk(cls):
            if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load) and key_of(n) in tasks:
                up = mod.parents.get(n)
                looked_at = isinstance(up, ast.Compare | ast.If | ast.BoolOp | ast.UnaryOp) or (
                    isinstance(up, ast.Attribute) and up.attr != "cancel")  # fmt: skip
                if not looked_at:
                    tasks.pop(str(key_of(n)), None)  # awaited, handed on or cancelled
        for key, (node, made) in tasks.items():
            yield _hit("MIR029", node, attr=key.removeprefix("self."), made=made, stop=stop)


def mir030_chdir_on_worker(mod: Module) -> Iterator[Hit]:
    """`os.chdir(...)` in a function run on a worker thread (as MIR010 finds them)."""
    for n in mod.nodes:
        if isinstance(n, ast.Call) and mod.dotted(n.func) == "os.chdir" and _on_worker_thread(mod, n):
            func = mod.enclosing(n, FUNCS)
            yield _hit("MIR030", n, func=getattr(func, "name", "?"))


HASHERS = ("hashlib.", "xxhash.", "zlib.crc32", "zlib.adler32", "blake3.")


def _whole_read(call: ast.AST) -> bool:
    """`path.read_bytes()`, or `f.read()` with no size."""
    return isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and (
        call.func.attr == "read_bytes" or call.func.attr == "read" and not call.args and not call.keywords)  # fmt: skip


def mir031_whole_file_hashed(mod: Module) -> Iterator[Hit]:
    """A hash fed a whole file at once: `hashlib.sha256(path.read_bytes())`, `h.update(f.read())`
    where `h` is a hashlib object, `zlib.crc32(f.read())`."""
    for n in mod.nodes:
        if not (isinstance(n, ast.Call) and n.args and _whole_read(n.args[0])):
            continue
        callee = mod.dotted(n.func) or ""
        hasher = callee.startswith(HASHERS) and callee != "hashlib.file_digest"
        if not hasher and isinstance(n.func, ast.Attribute) and n.func.attr == "update":
            made = [a.value for a in mod.nodes if isinstance(a, ast.Assign) and len(a.targets) == 1
                    and key_of(a.targets[0]) == key_of(n.func.value)]  # fmt: skip
            hasher = any(
                isinstance(v, ast.Call) and (mod.dotted(v.func) or "").startswith(HASHERS) for v in made
            )
        if hasher:
            yield _hit("MIR031", n, call=f"`{unparse(n, 50)}`")


# Keyword arguments through which an HTTP or storage call sends a body; a file object streams there.
BODY_KEYWORDS = frozenset({"data", "content", "body", "Body"})


def _file_handles(mod: Module, func: ast.AST) -> set[str]:
    """Names bound to an open file in `func`: `with open(p) as fh`, `with path.open("rb") as fh`,
    `fh = gzip.open(p)`, `with opener(p) as fh` (any callee named for opening)."""
    out: set[str] = set()
    for n in walk_local(func):
        pairs: list[tuple[ast.AST | None, ast.AST]] = []
        if isinstance(n, ast.With):
            pairs = [(i.optional_vars, i.context_expr) for i in n.items]
        elif isinstance(n, ast.Assign) and len(n.targets) == 1:
            pairs = [(n.targets[0], n.value)]
        for target, value in pairs:
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Call)
                and "open" in callee_last(value.func)
            ):
                out.add(target.id)
    return out


def mir032_whole_file_streamed(mod: Module) -> Iterator[Hit]:
    """`lines = fh.readlines()` whose one use is a `for` loop over it, or `body = fh.read()` whose one
    use is the body of a request or upload: the whole file is held only to be walked or sent once,
    which the file object itself does a block at a time."""
    for func in mod.functions():
        handles = _file_handles(mod, func)
        nodes = walk_local(func)
        bound = [
            t.id for n in nodes if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
        ]
        for n in nodes:
            if not (isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)):
                continue
            v, name = n.value, n.targets[0].id
            if not (isinstance(v, ast.Call) and isinstance(v.func, ast.Attribute)) or bound.count(name) > 1:
                continue
            recv = v.func.value
            lines = (
                v.func.attr == "readlines"
                and not v.args
                and isinstance(recv, ast.Name)
                and recv.id in handles
            )
            whole = _whole_read(v) and (
                v.func.attr == "read_bytes" or (isinstance(recv, ast.Name) and recv.id in handles)
            )
            if not (lines or whole):
                continue
            uses = [
                m for m in nodes if isinstance(m, ast.Name) and m.id == name and isinstance(m.ctx, ast.Load)
            ]
            if len(uses) != 1:
                continue
            parent = mod.parents.get(uses[0])
            if lines and isinstance(parent, ast.For) and parent.iter is uses[0]:
                yield _hit("MIR032", n, name=name, call=unparse(v, 40), use="walk it line by line",
                           fix=f"loop over `{unparse(recv, 30)}` itself, which reads a line at a time")  # fmt: skip
            elif whole and isinstance(parent, ast.keyword) and parent.arg in BODY_KEYWORDS:
                sink = mod.parents.get(parent)
                callee = unparse(sink.func, 40) if isinstance(sink, ast.Call) else "the call"
                yield _hit("MIR032", n, name=name, call=unparse(v, 40),
                           use=f"send it as `{parent.arg}=` of `{callee}()`",
                           fix="pass the open file instead, which is sent a block at a time")  # fmt: skip


ALL_RULES: list[Callable[[Module], Iterable[Hit]]] = [
    mir001_lock_across_await,
    mir002_not_released,
    mir003_sequential_awaits,
    mir004_list_search_in_loop,
    mir005_string_concat_in_loop,
    mir006_loop_invariant,
    mir007_n_plus_one,
    mir008_unbounded_growth,
    mir009_blocking_object_in_async,
    mir010_no_timeout,
    mir011_list_as_set,
    mir012_process_no_timeout,
    mir013_lock_across_network,
    mir014_close_skipped,
    mir015_expired_never_swept,
    mir016_list_front_in_loop,
    mir017_independent_awaits,
    mir018_reload_per_call,
    mir019_sort_for_one_end,
    mir020_retry_without_backoff,
    mir021_pool_never_shut_down,
    mir022_callbacks_under_lock,
    mir023_lock_per_call,
    mir024_temp_file_left,
    mir025_commit_per_row,
    mir026_unlocked_worker_update,
    mir027_process_not_killed,
    mir028_slow_hash_in_async,
    mir029_task_never_cancelled,
    mir030_chdir_on_worker,
    mir031_whole_file_hashed,
    mir032_whole_file_streamed,
]


# Rules about speed, latency, long-lived growth and network timeouts: they do not matter in tests or
# test doubles. The correctness rules (a lock across await, a lock or file not released) still apply.
TEST_EXEMPT = frozenset(
    {
        "MIR003",
        "MIR004",
        "MIR005",
        "MIR006",
        "MIR007",
        "MIR008",
        "MIR009",
        "MIR010",
        "MIR011",
        "MIR012",
        "MIR013",
        "MIR014",
        "MIR015",
        "MIR016",
        "MIR017",
        "MIR018",
        "MIR019",
        "MIR020",
        "MIR021",
        "MIR022",
        "MIR023",
        "MIR024",
        "MIR025",
        "MIR026",
        "MIR027",
        "MIR028",
        "MIR029",
        "MIR030",
        "MIR031",
        "MIR032",
    }
)
TEST_DOUBLE_PREFIXES = ("Fake", "Mock", "Dummy", "Stub")


def _test_double_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name.lstrip("_").startswith(TEST_DOUBLE_PREFIXES):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


# Calls that borrow an open file and never close it: handing the file to one is not handing it on.
BORROWERS = frozenset({"csv.writer", "csv.reader", "csv.DictWriter", "csv.DictReader", "json.load", "json.dump",
                       "pickle.load", "pickle.dump", "shutil.copyfileobj", "print", "yaml.safe_load", "yaml.load",
                       "yaml.safe_dump", "yaml.dump", "tomllib.load", "iter", "enumerate", "len", "next",
                       "subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
                       "subprocess.Popen", "hashlib.file_digest"})  # fmt: skip


def _dotted_name(expr: ast.AST | None) -> str:
    if isinstance(expr, ast.Attribute):
        return f"{_dotted_name(expr.value)}.{expr.attr}"
    return expr.id if isinstance(expr, ast.Name) else ""


def handed_on(tree: ast.Module, line: int) -> bool:
    """The file opened on `line` is owned elsewhere: returned by a lambda, stored on an object, later
    returned, yielded or passed to a call, or closed in a `finally`."""
    for lam in ast.walk(tree):
        if isinstance(lam, ast.Lambda) and lam.body.lineno <= line <= (lam.body.end_lineno or line):
            return True
    for func in ast.walk(tree):
        if not isinstance(func, FUNCS) or not (func.lineno <= line <= (func.end_lineno or func.lineno)):
            continue
        parents = {c: p for p in walk_local(func) for c in ast.iter_child_nodes(p)}
        for n in walk_local(func):
            if not (isinstance(n, ast.Assign | ast.AnnAssign) and n.lineno == line):
                continue
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            if len(targets) != 1 or not isinstance(targets[0], ast.Name):
                return True  # stored on an object or in a container
            name = targets[0].id
            for m in walk_local(func):
                if isinstance(m, ast.Try) and any(_calls_method(f, name, "close") for f in m.finalbody):
                    return True
                if isinstance(m, ast.With | ast.AsyncWith) and any(
                    key_of(i.context_expr) == name for i in m.items
                ):
                    return True  # closed by a later `with name:`
                if isinstance(m, ast.Name) and m.id == name and isinstance(m.ctx, ast.Load):
                    parent = parents.get(m)
                    if isinstance(parent, ast.Call) and (
                        parent.func is m or _dotted_name(parent.func) in BORROWERS
                    ):
                        continue  # its own method, or lent to a reader or writer that does not close it
                    if (
                        isinstance(parent, ast.keyword)
                        and _dotted_name(getattr(parents.get(parent), "func", None)) in BORROWERS
                    ):
                        continue  # print(..., file=f)
                    if isinstance(parent, ast.Return | ast.Yield | ast.Assign | ast.keyword | ast.Call):
                        return True
            return False
    return False


def is_test_path(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name in ("conftest.py", "testing.py")
        or any(p in ("test", "tests", "testing") for p in parts[:-1])
    )


def run_rules(text: str, filename: str = "<document>") -> list[Hit]:
    """Every rule over one source text; [] when it does not parse."""
    try:
        tree = ast.parse(text, filename=filename)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    _memo.cache = {}
    try:
        mod = Module(tree)
        hits: list[Hit] = []
        for rule in ALL_RULES:
            hits.extend(rule(mod))
    finally:
        _memo.cache = None
    if is_test_path(filename):
        hits = [h for h in hits if h.rule not in TEST_EXEMPT]
    else:
        doubles = _test_double_lines(tree)
        hits = [h for h in hits if h.rule not in TEST_EXEMPT or h.line not in doubles]
    n_plus_one = {h.line for h in hits if h.rule == "MIR007"}
    hits = [h for h in hits if not (h.rule == "MIR003" and h.line in n_plus_one)]
    searched = {h.line for h in hits if h.rule == "MIR004"}
    hits = [h for h in hits if not (h.rule == "MIR011" and h.line in searched)]
    unreleased = {h.line for h in hits if h.rule == "MIR002"}  # MIR014 would say it again
    hits = [h for h in hits if not (h.rule == "MIR014" and h.line in unreleased)]
    unique: dict[tuple[str, int, int], Hit] = {}
    for h in hits:
        unique.setdefault((h.rule, h.line, h.col), h)
    return sorted(unique.values(), key=lambda h: (h.line, h.col, h.rule))
