"""Mirador's checks: every rule on code it must flag and on near-misses it must not; the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from checks import KINDS, RULES, Finding, check_paths, check_source
from checks.cli import main
from checks.rules import run_rules

ROOT = Path(__file__).resolve().parents[2]


def fired(code: str, path: str = "app/service.py") -> set[str]:
    return {h.rule for h in run_rules(textwrap.dedent(code), path)}


# (rule, code that must fire it, a near-miss that must not)
CASES: list[tuple[str, str, str]] = [
    (
        "MIR001",
        """
        import threading
        class C:
            def __init__(self):
                self._lock = threading.Lock()
            async def put(self, k, v):
                with self._lock:
                    await self.store.save(k, v)
        """,
        """
        import asyncio
        class C:
            def __init__(self):
                self._lock = asyncio.Lock()
            async def put(self, k, v):
                async with self._lock:
                    await self.store.save(k, v)
        """,
    ),
    (
        "MIR001",
        """
        import threading
        lock = threading.Lock()
        async def put(store, v):
            lock.acquire()
            try:
                await store.save(v)
            finally:
                lock.release()
        """,
        """
        import threading
        lock = threading.Lock()
        async def put(store, v):
            with lock:
                store.cache[v] = 1
            await store.save(v)
        """,
    ),
    (
        "MIR002",
        """
        import threading
        lock = threading.Lock()
        def take(queue):
            lock.acquire()
            if not queue:
                return None
            item = queue.pop()
            lock.release()
            return item
        """,
        """
        import threading
        lock = threading.Lock()
        def take(queue):
            lock.acquire()
            try:
                if not queue:
                    return None
                return queue.pop()
            finally:
                lock.release()
        def take_or_none(queue):
            lock.acquire()
            if not queue:
                lock.release()  # released on the early path too
                return None
            item = queue.pop()
            lock.release()
            return item
        """,
    ),
    (
        "MIR002",
        """
        def first_line(path):
            f = open(path)
            line = f.readline()
            if not line:
                raise ValueError("empty")
            f.close()
            return line
        """,
        """
        def first_line(path):
            with open(path) as f:
                line = f.readline()
                if not line:
                    raise ValueError("empty")
            return line
        """,
    ),
    (
        "MIR003",
        """
        async def load_all(client, ids):
            users = []
            for user_id in ids:
                user = await client.fetch_user(user_id)
                users.append(user)
            return users
        """,
        """
        async def walk(client, start):
            pages = []
            cursor = start
            for _ in range(10):
                page = await client.fetch_page(cursor)
                pages.append(page)
                cursor = page.next
            return pages
        """,
    ),
    (
        "MIR003",
        """
        async def summaries(llm, docs):
            return [await llm.ainvoke(d) for d in docs]
        """,
        """
        async def write_all(db, rows):
            for row in rows:
                await db.insert(row)  # writes in order: not flagged
        """,
    ),
    (
        "MIR003",
        """
        async def pages(session, urls):
            out = []
            for url in urls:
                async with session.get(url) as response:
                    out.append(await response.json())
            return out
        """,
        """
        async def upload(session, files):
            for path in files:
                async with session.post("/upload", data=path) as response:
                    response.raise_for_status()  # nothing kept; a write
        """,
    ),
    (
        "MIR003",
        """
        class Bot:
            async def profile(self, user_id):
                async with self.session.get(URL + user_id) as resp:
                    return await resp.json()

            async def whois(self, ids):
                found = []
                for user_id in ids:
                    person = await self.profile(user_id)  # a request, one method down
                    found.append(person["name"])
                return found
        """,
        """
        class Bot:
            async def profile(self, user_id):
                return self.cache[user_id]  # no I/O one method down

            async def whois(self, ids):
                found = []
                for user_id in ids:
                    person = await self.profile(user_id)
                    found.append(person["name"])
                return found
        """,
    ),
    (
        "MIR003",
        """
        class Room:
            async def _send(self, client, message):
                client.writer.write(message)
                await client.writer.drain()

            async def broadcast(self, message):
                for client in list(self.members):
                    await self._send(client, message)  # one slow peer holds up the rest
        """,
        """
        async def write_parts(parts, writer):
            for part in parts:
                await part.write(writer)  # one sink, in order
        """,
    ),
    (
        "MIR015",
        """
        import time
        class Sessions:
            def __init__(self):
                self._by_id = {}
            def login(self, sid, user):
                self._by_id[sid] = (time.time(), user)
            def get(self, sid):
                seen, user = self._by_id.get(sid, (0, None))
                if time.time() - seen > 3600:
                    self._by_id.pop(sid, None)  # forgotten only when asked for again
                    return None
                return user
        """,
        """
        import time
        class Sessions:
            def __init__(self):
                self._by_id = {}
            def login(self, sid, user):
                self._by_id[sid] = (time.time(), user)
                self._sweep()
            def _sweep(self):
                now = time.time()
                for sid, (seen, _) in list(self._by_id.items()):
                    if now - seen > 3600:
                        del self._by_id[sid]
        """,
    ),
    (
        "MIR004",
        """
        def unique(items):
            seen = []
            for x in items:
                if x not in seen:
                    seen.append(x)
            return seen
        """,
        """
        def keep(items):
            out = []
            for x in items:
                if x in ("a", "b", "c"):
                    out.append(x)
            return out
        """,
    ),
    (
        "MIR004",
        """
        def order(items, names):
            ranked = sorted(names)
            return [ranked.index(x) for x in items]
        """,
        """
        def unique(items):
            seen = set()
            out = []
            for x in items:
                if x not in seen:
                    seen.add(x)
                    out.append(x)
            return out
        """,
    ),
    (
        "MIR004",
        """
        def distinct_titles(conn):
            rows = conn.execute("SELECT title FROM products").fetchall()
            titles = []
            for (title,) in rows:  # rows from the database: as many as the table holds
                name = title.strip().lower()
                if name not in titles:
                    titles.append(name)
            return titles
        """,
        """
        import re
        def tags(text):
            found = re.findall(r"<(\\w+)", text)
            unique = []
            for tag in found:  # a local list, not rows fetched: not judged
                if tag not in unique:
                    unique.append(tag)
            return unique
        def distinct_titles(cur):
            seen = set()
            out = []
            for (title,) in cur.execute("SELECT title FROM products"):
                if title not in seen:
                    seen.add(title)
                    out.append(title)
            return out
        """,
    ),
    (
        "MIR005",
        """
        class Stream:
            def __init__(self):
                self.text = ""
            def feed(self, chunks):
                for chunk in chunks:
                    self.text += chunk
        """,
        """
        def render(rows):
            out = ""
            for row in rows:
                out += row  # a local str: CPython grows it in place
            return out
        """,
    ),
    (
        "MIR005",
        """
        def read_all(sock):
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data
        """,
        """
        def events(lines):
            buf = b""
            for line in lines:
                buf += line
                if line == b"\\n":
                    yield buf
                    buf = b""  # reset per event: bounded
        def header(read):
            head = b""
            while len(head) < 16:  # grows to a known bound
                head += read(16 - len(head))
            return head
        """,
    ),
    (
        "MIR005",  # written out: `t = t + v`, and `t = t + a + b` (compared as source, not ast.dump)
        """
        class Transcript:
            def __init__(self):
                self.text = ""
            def feed(self, chunks):
                for chunk in chunks:
                    self.text = self.text + chunk + "\\n"
        """,
        """
        class Transcript:
            def __init__(self):
                self.text = ""
            def feed(self, chunks):
                for chunk in chunks:
                    self.text = chunk + self.text[-100:]  # keeps a bounded tail
        """,
    ),
    (
        "MIR006",
        """
        import json
        def tag(rows, config):
            out = []
            for row in rows:
                settings = json.loads(config)
                out.append(settings.get(row))
            return out
        """,
        """
        import json
        def parse(rows):
            out = []
            for row in rows:
                out.append(json.loads(row))  # depends on the item
            return out
        """,
    ),
    (
        "MIR006",
        """
        def common(items, allowed):
            return [x for x in items if x in set(allowed)]
        """,
        """
        def common(items, allowed):
            allowed_set = set(allowed)
            for x in items:
                if x not in allowed_set:
                    raise ValueError(sorted(allowed))  # runs once, on the way out
            return items
        """,
    ),
    (
        "MIR006",
        """
        def render(posts):
            top = sorted(posts, key=lambda p: -p.score)[:10]
            return "\\n".join(p.title for p in top)

        def send_all(smtp, subscribers, posts):
            for who in subscribers:
                body = render(posts)  # the same posts for every subscriber
                smtp.send(who, body)
        """,
        """
        def render(posts, out):
            for p in sorted(posts, key=lambda p: -p.score):
                out.append(p.title)  # changes its argument: calling it again is not redundant
            return out

        def send_all(smtp, subscribers, posts):
            for who in subscribers:
                body = render(posts, [])
                smtp.send(who, body)
        """,
    ),
    (
        "MIR007",
        """
        def names(conn, ids):
            cur = conn.cursor()
            out = []
            for i in ids:
                cur.execute("SELECT name FROM users WHERE id = ?", (i,))
                out.append(cur.fetchone())
            return out
        """,
        """
        def migrate(conn, migrations):
            cur = conn.cursor()
            for version, sql in enumerate(migrations):
                cur.executescript(sql)  # a different statement each time: nothing to batch
                cur.execute("INSERT INTO migrations (v) VALUES (?)", (version,))
        """,
    ),
    (
        "MIR007",
        """
        import requests
        def fetch_all(ids):
            out = []
            for i in ids:
                out.append(requests.get(f"https://api.example.com/items/{i}", timeout=5))
            return out
        """,
        """
        import requests
        def retry(url):
            for attempt in range(3):
                r = requests.get(url, timeout=5)
                if r.ok:
                    return r
        def chain(stages, base):
            context = ""
            for stage in stages:  # each call needs the previous answer: not N+1
                prompt = stage.prompt + context
                context = requests.get(f"{base}/run", params={"p": prompt}, timeout=5).text
            return context
        """,
    ),
    (
        "MIR007",
        """
        class Exporter:
            async def _items(self, conn, order_id):
                return await conn.fetch("SELECT sku FROM order_items WHERE order_id = $1", order_id)

            async def collect(self, conn, orders):
                out = []
                for o in orders:
                    out.append({"id": o["id"], "items": await self._items(conn, o["id"])})  # a query one method down
                return out
        """,
        """
        class Exporter:
            async def _items(self, conn, order_ids):
                return await conn.fetch("SELECT sku FROM order_items WHERE order_id = ANY($1)", order_ids)

            async def _version(self, conn):
                return await conn.fetchval("SELECT max(version) FROM snapshots")

            async def collect(self, conn, orders):
                items = await self._items(conn, [o["id"] for o in orders])  # one query for all
                for o in orders:
                    o["version"] = await self._version(conn)  # nothing per item in the query
                return items
        """,
    ),
    (
        "MIR007",
        """
        class Index:
            def _popularity(self, term):
                row = self._db.execute("SELECT hits FROM log WHERE term = ?", (term,)).fetchone()
                return row[0]

            def rank(self, terms):
                return {t: self._popularity(t) for t in terms}  # one query per term
        """,
        """
        import requests
        def first_mirror(mirrors, path):
            for base in mirrors:  # a search: stops at the first that answers
                r = requests.get(f"{base}/{path}", timeout=5)
                if r.ok:
                    return r
        class Index:
            def _popularity(self, term):
                return self._counts.get(term, 0)  # a dict, not a query

            def rank(self, terms):
                return {t: self._popularity(t) for t in terms}
        """,
    ),
    (
        "MIR007",
        """
        import redis.asyncio as redis
        class Prefs:
            def __init__(self, url):
                self.redis = redis.from_url(url)
            async def for_users(self, user_ids):
                return [await self.redis.hgetall(f"prefs:{u}") for u in user_ids]
        """,
        """
        import redis.asyncio as redis
        class Prefs:
            def __init__(self, url):
                self.redis = redis.from_url(url)
                self.local = {}
            async def for_users(self, user_ids):
                found = [self.local.get(u) for u in user_ids]  # a dict
                async with self.redis.pipeline() as pipe:
                    for u in user_ids:
                        pipe.hgetall(f"prefs:{u}")  # queued, sent once
                    return found, await pipe.execute()
        """,
    ),
    (
        "MIR008",
        """
        class Tracker:
            def __init__(self):
                self.events = []
            def on_event(self, event):
                self.events.append(event)
        TRACKER = Tracker()  # one for the program's life
        """,
        """
        from collections import deque
        class Tracker:
            def __init__(self):
                self.events = deque(maxlen=1000)
                self.seen = []
            def on_event(self, event):
                self.events.append(event)
                self.seen.append(event)
                if len(self.seen) > 1000:
                    del self.seen[0]
        """,
    ),
    (
        "MIR008",  # counts per key are a tally, bounded by the keys (held-out 6's Prometheus counters)
        """
        class Stats:
            def __init__(self):
                self.by_path = {}
            def record(self, path, ms):
                self.by_path[path] = self.by_path.get(path, []) + [ms]  # every sample kept
        def main():
            stats = Stats()
            serve(stats)
        """,
        """
        from collections import Counter, defaultdict
        class Stats:
            def __init__(self):
                self.hits = Counter()
                self.bytes = defaultdict(int)
                self.ms = {}
            def record(self, path, size, ms):
                self.hits.update([path])
                self.bytes[path] += size
                self.ms[path] = self.ms.get(path, 0) + ms
        def main():
            stats = Stats()
            serve(stats)
        """,
    ),
    (
        "MIR008",
        """
        class Metrics:
            def __init__(self):
                self.slow = []
            def record(self, path, ms):
                if ms > 1000:
                    self.slow.append((path, ms))
            def stats(self):
                return {"slow": len(self.slow)}  # its size reported, never capped
        def main():
            metrics = Metrics()
            serve(metrics)
        """,
        """
        class Metrics:
            def __init__(self):
                self.slow = []
            def record(self, path, ms):
                if ms > 1000 and len(self.slow) < 500:  # capped
                    self.slow.append((path, ms))
        """,
    ),
    (
        "MIR008",
        """
        class Consumer:
            def __init__(self):
                self._seen = set()
            def handle(self, message):
                if message.id in self._seen:
                    return
                self._seen.add(message.id)
        registry = {}
        registry["consumer"] = Consumer()
        """,
        """
        class Client:
            def __init__(self):
                self._cache = {}
            def get(self, key):
                if key not in self._cache:
                    self._cache[key] = self._load(key)  # not an async or per-event method
                return self._cache[key]
        class Registry:
            def __init__(self):
                self._handlers = {}
            def register(self, name, fn):
                self._handlers[name] = fn  # setup: a registry keyed by name
        class Builder:
            def __init__(self):
                self.steps = []
            def then(self, step):
                self.steps.append(step)
                return self
        class Printer:
            def __init__(self):
                self.functions = []
            def print_function(self, expr):  # per-print state, not per event
                self.functions.append(expr)
        class Warmer:
            def __init__(self, stages):
                self.stages = stages
                self._warmed = set()
            def warm(self):
                for stage in self.stages:  # bounded by the object's own configuration
                    self._warmed.add(stage.model)
        """,
    ),
    (
        "MIR008",
        """
        class Tracker:
            def __init__(self):
                self.pending = {}
            async def on_request(self, request):
                self.pending[request.id] = request
        tracker = Tracker()
        """,
        """
        class Tracker:
            def __init__(self):
                self.pending = {}
            async def on_request(self, request):
                self.pending[request.id] = request
            async def on_response(self, response):
                self.pending.pop(response.id, None)
        """,
    ),
    (
        "MIR009",
        """
        import requests
        class Api:
            def __init__(self):
                self.session = requests.Session()
            async def user(self, uid):
                return self.session.get(f"/users/{uid}", timeout=5).json()
        """,
        """
        import httpx
        class Api:
            def __init__(self):
                self.client = httpx.AsyncClient()
            async def user(self, uid):
                return (await self.client.get(f"/users/{uid}")).json()
        """,
    ),
    (
        "MIR009",
        """
        import sqlite3
        conn = sqlite3.connect("app.db")
        async def count():
            return conn.execute("SELECT count(*) FROM t").fetchone()
        """,
        """
        import sqlite3
        conn = sqlite3.connect("app.db")
        def count():
            return conn.execute("SELECT count(*) FROM t").fetchone()
        """,
    ),
    (
        "MIR009",
        """
        import socket
        class Checker:
            async def resolve(self, host):
                return socket.gethostbyname(host)  # the DNS lookup stops the loop
        """,
        """
        import asyncio
        import socket
        async def resolve(host):
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, 443)
            addr = await asyncio.to_thread(socket.gethostbyname, host)
            return infos, addr
        def resolve_sync(host):
            return socket.getaddrinfo(host, 443)
        """,
    ),
    (
        "MIR009",
        """
        import smtplib
        async def send_all(host, messages):
            with smtplib.SMTP(host, 587, timeout=10) as smtp:
                smtp.starttls()
                for m in messages:
                    smtp.send_message(m)
        """,
        """
        import asyncio
        import smtplib
        async def send_all(host, messages):
            def _send():  # runs on a worker thread
                with smtplib.SMTP(host, 587, timeout=10) as smtp:
                    for m in messages:
                        smtp.send_message(m)
            await asyncio.to_thread(_send)
        """,
    ),
    (
        "MIR009",
        """
        import boto3
        class Exporter:
            def __init__(self):
                session = boto3.Session(profile_name="export")
                self.s3 = session.client("s3")
            async def upload(self, key, body):
                self.s3.put_object(Bucket="exports", Key=key, Body=body)
        """,
        """
        import asyncio
        import functools
        import boto3
        class Exporter:
            def __init__(self):
                self.s3 = boto3.client("s3")
            async def upload(self, key, body):
                await asyncio.to_thread(self.s3.put_object, Bucket="exports", Key=key, Body=body)
                loop = asyncio.get_running_loop()
                put = functools.partial(self.s3.put_object, Bucket="exports", Key=key + ".md5")
                await loop.run_in_executor(None, put)
                return self.s3.generate_presigned_url("get_object", Params={"Key": key})  # no I/O
        """,
    ),
    (
        "MIR009",
        """
        import psycopg2
        class Ledger:
            def __init__(self, dsn):
                self.conn = psycopg2.connect(dsn)
            async def total(self, account):
                with self.conn.cursor() as cur:
                    cur.execute("SELECT sum(amount) FROM ledger WHERE account = %s", (account,))
                    return cur.fetchone()
        """,
        """
        import psycopg
        async def total(dsn, account):
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                async with conn.cursor() as cur:
                    await cur.execute("SELECT sum(amount) FROM ledger WHERE account = %s", (account,))
                    return await cur.fetchone()
        """,
    ),
    (
        "MIR009",
        """
        import redis
        cache = redis.Redis(host="cache")
        async def profile(uid):
            return cache.hgetall(f"user:{uid}")
        """,
        """
        import redis.asyncio as redis
        cache = redis.Redis(host="cache")
        async def profile(uid):
            return await cache.hgetall(f"user:{uid}")
        """,
    ),
    (
        "MIR009",
        """
        import psycopg
        import requests
        async def balance(conn: psycopg.Connection, account):
            return conn.execute("SELECT sum(amount) FROM ledger WHERE account = %s", (account,)).fetchone()
        class Api:
            def __init__(self, session: requests.Session):
                self.session = session  # its kind comes from the parameter's annotation
            async def user(self, uid):
                return self.session.get(f"/users/{uid}", timeout=5).json()
        """,
        """
        import socket
        import psycopg
        async def balance(conn: psycopg.AsyncConnection, account):
            return await (await conn.execute("SELECT 1 WHERE %s", (account,))).fetchone()
        listener = socket.socket()
        async def accept_one(wait_readable):
            while True:
                try:
                    return listener.accept()  # non-blocking: it raises instead of waiting
                except BlockingIOError:
                    await wait_readable(listener)
        """,
    ),
    (
        "MIR009",
        """
        import smtplib
        class Notifier:
            def _send_email(self, to, msg):
                with smtplib.SMTP("mail", 587, timeout=10) as smtp:
                    smtp.send_message(msg, to_addrs=[to])
            async def notify(self, to, msg):
                self._send_email(to, msg)  # the SMTP exchange runs on the event loop, one call down
        """,
        """
        import asyncio
        import socket
        import requests
        def fetch_profile(uid):
            return requests.get(f"https://api.example.com/users/{uid}", timeout=5).json()
        def bind_address(port):
            return socket.getaddrinfo(None, port, flags=socket.AI_PASSIVE)  # no DNS server asked
        def pages(n):
            for i in range(n):
                yield requests.get(f"https://api.example.com/p/{i}", timeout=5)  # runs when iterated
        async def handler(uid):
            profile = await asyncio.to_thread(fetch_profile, uid)
            return profile, bind_address(8080), pages(3)
        """,
    ),
    (
        "MIR010",
        """
        import requests
        class Client:
            def __init__(self):
                self.session = requests.Session()
            def _request(self, method, path, **kwargs):
                return self.session.request(method, path, **kwargs)
            def quote(self, body):
                return self._request("POST", "/quotes", json=body)  # no caller passes timeout=
        """,
        """
        import requests
        class Client:
            def __init__(self):
                self.session = requests.Session()
            def _request(self, method, path, **kwargs):
                return self.session.request(method, path, **kwargs)
            def quote(self, body):
                return self._request("POST", "/quotes", json=body, timeout=10)
        """,
    ),
    (
        "MIR010",
        """
        import requests
        session = requests.Session()
        def ping(url):
            return session.get(url)
        """,
        """
        import requests
        session = requests.Session()
        def ping(url):
            return session.get(url, timeout=5)
        """,
    ),
    (
        "MIR010",
        """
        from urllib.request import urlopen
        def fetch(url):
            with urlopen(url) as r:
                return r.read()
        """,
        """
        from urllib.request import urlopen
        def fetch(url):
            with urlopen(url, timeout=10) as r:
                return r.read()
        """,
    ),
    (
        "MIR010",
        """
        import asyncio
        class Prober:
            async def banner(self, host, port):
                reader, writer = await asyncio.open_connection(host, port, ssl=True)  # a stalled handshake hangs
                try:
                    return await reader.readline()
                finally:
                    writer.close()
        """,
        """
        import asyncio
        async def banner(host, port):
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
            return reader, writer
        async def _dial(path):
            return await asyncio.open_unix_connection(path)
        async def dial(path):
            async with asyncio.timeout(5):  # the caller bounds it
                return await _dial(path)
        async def probe(host, port, connect_timeout=5.0):
            return await asyncio.open_connection(host, port, ssl_handshake_timeout=connect_timeout)
        """,
    ),
    (
        "MIR007",
        """
        async def names(pool, ids):
            out = []
            for player_id in ids:
                row = await pool.fetchrow("SELECT name FROM players WHERE id = $1", player_id)
                out.append(row["name"])
            return out
        """,
        """
        async def names(pool, ids):
            rows = await pool.fetch("SELECT name FROM players WHERE id = ANY($1)", ids)
            return [r["name"] for r in rows]
        """,
    ),
    (
        "MIR011",
        """
        class Crawler:
            def __init__(self):
                self.seen = []
            async def on_page(self, links):
                for link in links:
                    if link not in self.seen:
                        self.seen.append(link)
        """,
        """
        class Crawler:
            def __init__(self):
                self.seen = set()
            async def on_page(self, links):
                for link in links:
                    if link not in self.seen:
                        self.seen.add(link)
        """,
    ),
    (
        "MIR011",
        """
        class Index:
            def __init__(self):
                self.postings = {}
            def handle_document(self, doc_id, words):
                for word in words:
                    ids = self.postings[word]
                    if doc_id not in ids:
                        ids.append(doc_id)
        """,
        """
        class Card:
            def __init__(self):
                self.tags = []
            def add_tags(self, tags):
                for tag in tags:
                    if tag not in self.tags:
                        self.tags.append(tag)
        """,
    ),
    (
        "MIR011",
        """
        class Recent:
            def __init__(self):
                self.order = []
            def touch(self, key):
                if key in self.order:
                    self.order.remove(key)
                self.order.append(key)
        """,
        """
        def unique(words):
            out = []
            for w in words:
                if w not in out:
                    out.append(w)
            return out
        """,
    ),
    (
        "MIR012",
        """
        import asyncio
        async def run_tool(args):
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            return out
        """,
        """
        import asyncio
        async def run_tool(args):
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=30)
            return out
        """,
    ),
    (
        "MIR013",
        """
        import threading
        import requests
        class Tokens:
            def __init__(self):
                self._lock = threading.Lock()
                self._http = requests.Session()
            def refresh(self):
                with self._lock:
                    self.token = self._fetch()
            def _fetch(self):
                return self._http.post("https://idp/token", timeout=5).json()
        """,
        """
        import threading
        import requests
        class Tokens:
            def __init__(self):
                self._lock = threading.Lock()
                self._http = requests.Session()
            def refresh(self):
                token = self._fetch()
                with self._lock:
                    self.token = token
            def _fetch(self):
                return self._http.post("https://idp/token", timeout=5).json()
        """,
    ),
    (
        "MIR014",
        """
        import requests
        def download(url, path):
            resp = requests.get(url, stream=True, timeout=10)
            if resp.status_code != 200:
                raise RuntimeError(resp.status_code)
            path.write_bytes(resp.content)
            resp.close()
        """,
        """
        import requests
        def download(url, path):
            resp = requests.get(url, stream=True, timeout=10)
            try:
                if resp.status_code != 200:
                    raise RuntimeError(resp.status_code)
                path.write_bytes(resp.content)
            finally:
                resp.close()
        """,
    ),
    (
        "MIR014",
        """
        import smtplib
        def send(msgs, host):
            smtp = smtplib.SMTP(host, 25, timeout=10)
            for m in msgs:
                smtp.send_message(m)
            smtp.quit()
        """,
        """
        def close_cache(local):
            con = getattr(local, "con", None)
            if con is None:
                return
            con.close()
        """,
    ),
    (
        "MIR014",
        """
        import psycopg
        def save(dsn, rows):
            conn = psycopg.connect(dsn, connect_timeout=10)
            conn.executemany("INSERT INTO t (v) VALUES (%s)", rows)  # raises: conn stays open
            conn.commit()
            conn.close()
        """,
        """
        import sqlite3
        from contextlib import closing
        def names(path):
            with closing(sqlite3.connect(path)) as conn:
                return conn.execute("SELECT name FROM t").fetchall()
        def touch(path):
            conn = sqlite3.connect(path)
            conn.close()  # nothing in between
        """,
    ),
    (
        "MIR014",
        """
        import asyncpg
        async def count(dsn):
            conn = await asyncpg.connect(dsn)
            n = await conn.fetchval("SELECT count(*) FROM t")
            await conn.close()
            return n
        """,
        """
        import asyncpg
        async def count(dsn):
            conn = await asyncpg.connect(dsn)
            try:
                return await conn.fetchval("SELECT count(*) FROM t")
            finally:
                await conn.close()
        """,
    ),
    (
        "MIR016",
        """
        def batches(rows: list, size: int):
            while rows:
                batch = []
                while rows and len(batch) < size:
                    batch.append(rows.pop(0))
                yield batch
        """,
        """
        from collections import deque
        def batches(rows: list, size: int):
            pending = deque(rows)
            while pending:
                yield [pending.popleft() for _ in range(min(size, len(pending)))]
            stack = [1]
            while stack:
                stack.pop(0)  # a stack started from one item: a handful, not an input
        """,
    ),
    (
        "MIR017",
        """
        async def dashboard(pool, viewer):
            unread = await pool.fetchval("SELECT count(*) FROM notes WHERE user_id = $1", viewer)
            drafts = await pool.fetchval("SELECT count(*) FROM drafts WHERE user_id = $1", viewer)
            return unread, drafts
        """,
        """
        async def dashboard(pool, conn, viewer):
            user = await pool.fetchrow("SELECT * FROM users WHERE id = $1", viewer)
            drafts = await pool.fetchval("SELECT count(*) FROM drafts WHERE team = $1", user["team"])
            a = await conn.fetchval("SELECT 1")
            b = await conn.fetchval("SELECT 2")  # one connection runs one query at a time
            return drafts, a, b
        """,
    ),
    (
        "MIR018",
        """
        import pickle
        class Scorer:
            def __init__(self, path):
                self.path = path
            def _model(self):
                with open(self.path, "rb") as fh:
                    return pickle.load(fh)
            def score(self, batches):
                return [self._model().predict(b) for b in batches]
        """,
        """
        import json, pickle, sys
        class Scorer:
            def __init__(self, path):
                with open(path, "rb") as fh:
                    self.model = pickle.load(fh)
            def _message(self):
                return json.load(sys.stdin)  # a stream: the next message differs
            def _row(self, conn):
                with open(conn.path_for_today()) as fh:
                    return json.load(fh)
            def score(self, batches, conn):
                return [(self.model.predict(b), self._message(), self._row(conn)) for b in batches]
        """,
    ),
    (
        "MIR008",
        """
        import asyncio
        class AvatarStore:
            def __init__(self, session):
                self.session = session
                self._rendered: dict[tuple[str, int], bytes] = {}
            def remember(self, user, size, data):
                self._rendered[(user, size)] = data
        async def handle_get(request):
            request.app["store"].remember(request.user, 64, b"")
        def make_app(app, session):
            app["store"] = AvatarStore(session)
        """,
        """
        class Parser:  # made per request: its per-request set dies with it
            def __init__(self, text):
                self._seen: set[str] = set()
            def remember(self, word):
                self._seen.add(word)
        async def handle_get(request):
            parser = Parser(request.text)
            parser.remember(request.word)
        """,
    ),
    (
        "MIR014",
        """
        async def load_profile(pool, user_id):
            conn = await pool.acquire()
            row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
            if row is None:
                return None
            await pool.release(conn)
            return dict(row)
        """,
        """
        async def load_profile(pool, user_id):
            conn = await pool.acquire()
            try:
                row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
                return dict(row) if row else None
            finally:
                await pool.release(conn)
        """,
    ),
    (
        "MIR013",
        """
        import threading, requests
        class Rates:
            def __init__(self):
                self._lock = threading.Lock()
                self._session = requests.Session()
            def _fetch(self):
                return self._session.get("https://x", timeout=5).json()
            def refresh(self):
                with self._lock:
                    try:
                        rates = self._fetch()
                    except requests.RequestException:
                        rates = {}
                    self.rates = rates
        """,
        """
        import threading, requests
        class Rates:
            def __init__(self):
                self._lock = threading.Lock()
                self._session = requests.Session()
            def _fetch(self):
                return self._session.get("https://x", timeout=5).json()
            def refresh(self):
                rates = self._fetch()
                with self._lock:
                    self.rates = rates
        """,
    ),
    (
        "MIR008",  # a dict of per-key lists: each key's list only grows
        """
        from collections import defaultdict
        class Hub:
            def __init__(self):
                self.recent = defaultdict(list)
            async def publish(self, room, payload):
                self.recent[room].append(payload)
            async def join(self, ws, room):
                for p in self.recent[room]:
                    await ws.send(p)
        HUB = Hub()
        """,
        """
        from collections import defaultdict
        class Hub:
            def __init__(self):
                self.recent = defaultdict(list)
            async def publish(self, room, payload):
                self.recent[room].append(payload)
                del self.recent[room][:-100]
            async def join(self, ws, room):
                for p in self.recent[room]:
                    await ws.send(p)
        HUB = Hub()
        """,
    ),
    (
        "MIR008",  # an undo stack popped on request, pushed on every reload; kept as a global singleton
        """
        import threading
        class Store:
            def __init__(self):
                self._history = []
                self._current = {}
            def _apply(self, new):
                self._history.append(self._current)
                self._current = new
            def rollback(self):
                if not self._history:
                    raise LookupError("nothing to undo")
                self._apply(self._history.pop())
            def _watch(self, source):
                while True:
                    self._apply(source.next())
        _store = None
        def store():
            global _store
            if _store is None:
                _store = Store()
            return _store
        """,
        """
        import threading
        class Store:
            def __init__(self):
                self._history = []
                self._current = {}
            def _apply(self, new):
                self._history.append(self._current)
                self._current = new
                if len(self._history) > 10:
                    self._history.pop(0)
            def _watch(self, source):
                while True:
                    self._apply(source.next())
        _store = None
        def store():
            global _store
            if _store is None:
                _store = Store()
            return _store
        """,
    ),
    (
        "MIR004",  # the dedupe list grows over a loop on lines read from the input, through a helper
        """
        import csv
        def read_statement(path):
            with open(path) as fh:
                return list(csv.DictReader(fh))
        def reconcile(self, statement):
            lines = read_statement(statement)
            matched: list[str] = []
            for line in lines:
                if line.ref in matched:
                    continue
                matched.append(line.ref)
        """,
        """
        import csv
        def read_statement(path):
            with open(path) as fh:
                return list(csv.DictReader(fh))
        def reconcile(self, statement):
            lines = read_statement(statement)
            matched: set[str] = set()
            for line in lines:
                if line.ref in matched:
                    continue
                matched.add(line.ref)
        """,
    ),
    (
        "MIR004",  # one list of a dict of lists, deduped as it grows
        """
        from collections import defaultdict
        class Index:
            def __init__(self):
                self.postings = defaultdict(list)
            def build(self, pool):
                pages = sorted(self.root.rglob("*.md"))
                for doc_id, counts in enumerate(pool.imap_unordered(analyse, pages)):
                    for term in counts:
                        if doc_id not in self.postings[term]:
                            self.postings[term].append(doc_id)
        """,
        """
        from collections import defaultdict
        class Index:
            def __init__(self):
                self.postings = defaultdict(list)
            def build(self, pool):
                pages = sorted(self.root.rglob("*.md"))
                for doc_id, counts in enumerate(pool.imap_unordered(analyse, pages)):
                    for term in counts:
                        if doc_id not in self.seen[term]:
                            self.postings[term].append(doc_id)
        """,
    ),
    (
        "MIR019",
        """
        def match(leftovers, open_by_day):
            for line in leftovers:
                candidates = sorted(open_by_day[line.day], key=lambda p: abs(p.amount - line.amount))
                if candidates and abs(candidates[0].amount - line.amount) < 1:
                    yield line, candidates[0]
        """,
        """
        def match(leftovers, open_by_day):
            for line in leftovers:
                candidates = sorted(open_by_day[line.day], key=lambda p: abs(p.amount - line.amount))
                yield line, candidates[:3]
        """,
    ),
    (
        "MIR006",  # a copy of the object's state walked per name, the whole snapshot sorted each time
        """
        class Registry:
            def render(self):
                snapshot = dict(self._series)
                helps = dict(self._help)
                out = []
                for name in sorted(helps):
                    for key in sorted(snapshot):
                        if key[0] == name:
                            out.append(key)
                return out
        """,
        """
        class Registry:
            def render(self):
                snapshot = dict(self._series)
                helps = dict(self._help)
                keys = sorted(snapshot)
                out = []
                for name in sorted(helps):
                    for key in keys:
                        if key[0] == name:
                            out.append(key)
                return out
        """,
    ),
    (
        "MIR007",  # a SQLAlchemy select per statement line
        """
        from sqlalchemy import select
        def reconcile(session, lines):
            matched = 0
            for line in lines:
                payment = session.execute(select(Payment).where(Payment.ref == line.ref)).scalar_one_or_none()
                if payment is not None:
                    matched += 1
            return matched
        """,
        """
        from sqlalchemy import select
        def reconcile(session, lines):
            refs = [line.ref for line in lines]
            payments = session.execute(select(Payment).where(Payment.ref.in_(refs))).scalars().all()
            return len(payments)
        """,
    ),
    (
        "MIR007",  # a lookup per row one call down, but not the one that keeps what it fetched
        """
        class Importer:
            def _supplier_id(self, cur, code):
                cur.execute("SELECT id FROM suppliers WHERE code = %s", (code,))
                return cur.fetchone()[0]
            def run(self, cur, rows):
                return [self._supplier_id(cur, row["supplier"]) for row in rows]
        """,
        """
        class Importer:
            def _category_id(self, cur, name):
                if name in self._categories:
                    return self._categories[name]
                cur.execute("SELECT id FROM categories WHERE name = %s", (name,))
                self._categories[name] = cur.fetchone()[0]
                return self._categories[name]
            def run(self, cur, rows):
                return [self._category_id(cur, row["category"]) for row in rows]
        """,
    ),
    (
        "MIR016",  # one per-key list of a dict kept on the object, trimmed from the front
        """
        class Limiter:
            def __init__(self):
                self._hits: dict[str, list[float]] = {}
            def hit(self, client, now, cutoff):
                window = self._hits.setdefault(client, [])
                while window and window[0] <= cutoff:
                    window.pop(0)
                window.append(now)
        """,
        """
        from collections import deque
        class Limiter:
            def __init__(self):
                self._hits: dict[str, deque[float]] = {}
            def hit(self, client, now, cutoff):
                window = self._hits.setdefault(client, deque())
                while window and window[0] <= cutoff:
                    window.popleft()
                window.append(now)
        """,
    ),
    (
        "MIR020",
        """
        import redis
        def hit(script, key):
            while True:
                try:
                    count = script(keys=[key])
                    break
                except redis.ConnectionError as exc:
                    log.warning("store unavailable, retrying: %s", exc)
            return count
        """,
        """
        import time, redis
        def hit(script, key):
            while True:
                try:
                    count = script(keys=[key])
                    break
                except redis.ConnectionError as exc:
                    log.warning("store unavailable, retrying: %s", exc)
                    time.sleep(0.5)
            return count
        def read_all(f):
            while True:  # reads on between tries: not a retry
                chunk = f.read(1024)
                try:
                    return parse(chunk)
                except OSError:
                    pass
        """,
    ),
    (
        "MIR021",
        """
        import multiprocessing as mp
        def build(pages):
            pool = mp.Pool(4)
            return sorted(pool.imap_unordered(analyse, pages))
        """,
        """
        import multiprocessing as mp
        def build(pages):
            with mp.Pool(4) as pool:
                return sorted(pool.imap_unordered(analyse, pages))
        def build_later(pages):
            pool = mp.Pool(4)
            try:
                return sorted(pool.imap_unordered(analyse, pages))
            finally:
                pool.close()
        """,
    ),
    (
        "MIR003",  # the same payload sent to each socket in turn
        """
        class Hub:
            async def publish(self, room, payload):
                for ws in list(self.rooms.get(room, ())):
                    try:
                        await ws.send(payload)
                    except ConnectionError:
                        self.rooms[room].discard(ws)
        """,
        """
        class Archive:
            async def dump(self, parts, out):
                for part in parts:
                    await part.write(out)
        """,
    ),
    (
        "MIR009",  # Pillow's pixel work on the event loop (Image.open alone reads only the header)
        """
        from PIL import Image
        async def render(data, size):
            img = Image.open(data)
            img.thumbnail(size)
            return img
        """,
        """
        import asyncio
        from PIL import Image
        def _render(data, size):
            img = Image.open(data)
            img.thumbnail(size)
            return img
        async def render(data, size):
            head = Image.open(data)
            if head.size[0] > 10_000:
                raise ValueError("too large")
            return await asyncio.to_thread(_render, data, size)
        """,
    ),
    (
        "MIR010",  # a command with no timeout, run by a worker thread (two calls below its target)
        """
        import subprocess, threading
        class Scheduler:
            def _execute(self, job):
                return subprocess.run(job.argv, capture_output=True)
            def _run_job(self, job):
                self.results[job.name] = self._execute(job)
            def tick(self, due):
                for job in due:
                    threading.Thread(target=self._run_job, args=(job,)).start()
        """,
        """
        import subprocess, threading
        class Scheduler:
            def _execute(self, job):
                return subprocess.run(job.argv, capture_output=True, timeout=job.limit)
            def _run_job(self, job):
                self.results[job.name] = self._execute(job)
            def tick(self, due):
                for job in due:
                    threading.Thread(target=self._run_job, args=(job,)).start()
        def main(argv):
            return subprocess.run(argv).returncode  # a script's own command: its user sees it hang
        """,
    ),
    (
        "MIR022",
        """
        import threading
        class Store:
            def __init__(self):
                self._lock = threading.Lock()
                self._listeners = []
            def _apply(self, new):
                with self._lock:
                    self._current = new
                    for listener in self._listeners:
                        listener(new)
        """,
        """
        import threading
        class Store:
            def __init__(self):
                self._lock = threading.Lock()
                self._listeners = []
            def _apply(self, new):
                with self._lock:
                    self._current = new
                    listeners = list(self._listeners)
                for listener in listeners:
                    listener(new)
        """,
    ),
    (
        "MIR018",  # a template read per message: the name is the same constant at every call
        """
        from pathlib import Path
        TEMPLATES = Path("templates")
        def render(name, sub):
            return (TEMPLATES / name).read_text().format(name=sub.name)
        def send_all(subs):
            return [render("digest.txt", sub) for sub in subs]
        """,
        """
        from pathlib import Path
        TEMPLATES = Path("templates")
        def render(name, sub):
            return (TEMPLATES / name).read_text().format(name=sub.name)
        def send_all(subs):
            return [render(sub.template, sub) for sub in subs]
        """,
    ),
    (
        "MIR018",  # a regex built per line from a format the loop never changes
        """
        import re
        def format_to_regex(fmt):
            pattern = re.escape(fmt)
            for var in re.findall(r"\\$(\\w+)", fmt):
                pattern = pattern.replace(re.escape("$" + var), f"(?P<{var}>.*?)", 1)
            return re.compile("^" + pattern + "$")
        def parse_line(line, fmt):
            return format_to_regex(fmt).match(line)
        def analyse(fh, fmt):
            return [parse_line(line, fmt) for line in fh]
        """,
        """
        import re
        def format_to_regex(fmt):
            pattern = re.escape(fmt)
            for var in re.findall(r"\\$(\\w+)", fmt):
                pattern = pattern.replace(re.escape("$" + var), f"(?P<{var}>.*?)", 1)
            return re.compile("^" + pattern + "$")
        def parse_line(line, regex):
            return regex.match(line)
        def analyse(fh, fmt):
            regex = format_to_regex(fmt)
            return [parse_line(line, regex) for line in fh]
        """,
    ),
    (
        "MIR008",  # a set of seen ids on a receiver an app factory makes once
        """
        class Receiver:
            def __init__(self):
                self._seen = set()
            async def handle(self, request):
                self._seen.add(request.id)
        def create_app():
            receiver = Receiver()
            return receiver
        """,
        """
        class Receiver:
            def __init__(self):
                self._seen = set()
            async def handle(self, request):
                self._seen.add(request.id)
        def per_request(request):
            receiver = Receiver()
            return receiver
        """,
    ),
    (
        "MIR020",  # the transient error is one of a long tuple of exceptions
        """
        import psycopg2
        class Consumer:
            def _apply_with_retry(self, event):
                while True:
                    try:
                        apply_event(self.db, event)
                        return
                    except (TransactionRollbackError, psycopg2.OperationalError):
                        self.db.rollback()
        """,
        """
        import psycopg2
        class Consumer:
            def _apply_with_retry(self, event):
                while True:
                    try:
                        apply_event(self.db, event)
                        return
                    except (TransactionRollbackError, psycopg2.OperationalError):
                        self.db.rollback()
                        raise
        """,
    ),
    (
        "MIR016",  # an annotated list attribute drained from the front
        """
        class Consumer:
            def __init__(self):
                self._pending: list[str] = []
            def _drain(self):
                while self._pending:
                    self._handle(self._pending.pop(0))
        """,
        """
        from collections import deque
        class Consumer:
            def __init__(self):
                self._pending: deque[str] = deque()
            def _drain(self):
                while self._pending:
                    self._handle(self._pending.popleft())
        """,
    ),
    (
        "MIR023",
        """
        import asyncio
        class Geocoder:
            async def geocode(self, client, address):
                in_flight = asyncio.Semaphore(5)
                async with in_flight:
                    return await client.get(address)
        """,
        """
        import asyncio
        async def geocode_all(client, addresses):
            in_flight = asyncio.Semaphore(5)
            async def one(address):
                async with in_flight:
                    return await client.get(address)
            return await asyncio.gather(*(one(a) for a in addresses))
        """,
    ),
    (
        "MIR024",
        """
        import os, tempfile
        def run(url, db):
            fd, path = tempfile.mkstemp(suffix=".csv")
            download(url, fd)
            load(db, path)
            os.unlink(path)
        """,
        """
        import os, tempfile
        def run(url, db):
            fd, path = tempfile.mkstemp(suffix=".csv")
            try:
                download(url, fd)
                load(db, path)
            finally:
                os.unlink(path)
        """,
    ),
    (
        "MIR025",
        """
        import sqlite3
        def load(conn: sqlite3.Connection, rows):
            for row in rows:
                conn.execute("INSERT INTO products VALUES (?, ?)", (row["sku"], row["name"]))
                conn.commit()
        """,
        """
        import sqlite3
        def load(conn: sqlite3.Connection, rows):
            for i, row in enumerate(rows):
                conn.execute("INSERT INTO products VALUES (?, ?)", (row["sku"], row["name"]))
                if i % 5000 == 0:
                    conn.commit()
            conn.commit()
        """,
    ),
    (
        "MIR026",
        """
        from concurrent.futures import ThreadPoolExecutor
        class Sync:
            def _sync_one(self, path):
                upload(path)
                self.stats["uploaded"] += 1
            def run(self, paths):
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(self._sync_one, paths))
        """,
        """
        import threading
        from concurrent.futures import ThreadPoolExecutor
        class Sync:
            def _sync_one(self, path):
                upload(path)
                with self._stats_lock:
                    self.stats["uploaded"] += 1
            def run(self, paths):
                with ThreadPoolExecutor(max_workers=8) as pool:
                    list(pool.map(self._sync_one, paths))
        class Prefetch:
            def _fetch(self, block):
                self.misses += 1
            def ahead(self, block):
                with ThreadPoolExecutor(max_workers=1) as one:
                    one.submit(self._fetch, block)
        """,
    ),
    (
        "MIR017",  # two reads one method down, the second needing nothing the first returned
        """
        class Worker:
            async def _get_json(self, path):
                resp = await self.client.get(BASE + path)
                return resp.json()
            async def handle(self, invoice_id):
                customer = await self._get_json(f"/customers/{invoice_id}")
                lines = await self._get_json(f"/invoices/{invoice_id}/lines")
                return customer, lines
        """,
        """
        class Worker:
            async def _get_json(self, path):
                resp = await self.client.get(BASE + path)
                return resp.json()
            async def handle(self, invoice_id):
                invoice = await self._get_json(f"/invoices/{invoice_id}")
                customer = await self._get_json(f"/customers/{invoice['customer_id']}")
                return invoice, customer
        """,
    ),
    (
        "MIR009",  # ReportLab rendering, one call down, on the event loop
        """
        import io
        from reportlab.pdfgen import canvas
        def render_pdf(invoice):
            buf = io.BytesIO()
            pdf = canvas.Canvas(buf)
            pdf.drawString(10, 10, invoice["number"])
            pdf.save()
            return buf.getvalue()
        async def handle(invoice):
            return render_pdf(invoice)
        """,
        """
        import asyncio, io
        from reportlab.pdfgen import canvas
        def render_pdf(invoice):
            buf = io.BytesIO()
            pdf = canvas.Canvas(buf)
            pdf.drawString(10, 10, invoice["number"])
            pdf.save()
            return buf.getvalue()
        async def handle(invoice):
            return await asyncio.to_thread(render_pdf, invoice)
        """,
    ),
    (
        "MIR018",  # the same logo downloaded for every invoice handled
        """
        LOGO_URL = "https://cdn.example.com/logo.png"
        class Worker:
            async def _logo(self):
                resp = await self.client.get(LOGO_URL)
                return resp.content
            async def handle(self, invoice):
                logo = await self._logo()
                return render(invoice, logo)
            async def run(self):
                while True:
                    await self.handle(await self.queue.get())
        """,
        """
        class Worker:
            async def _status(self):
                resp = await self.client.get(self.status_url)
                return resp.json()
            async def handle(self, invoice):
                status = await self._status()
                return render(invoice, status)
            async def run(self):
                while True:
                    await self.handle(await self.queue.get())
        """,
    ),
    (
        "MIR027",
        """
        import subprocess
        def render(args, limit):
            proc = subprocess.Popen(args, stderr=subprocess.PIPE)
            try:
                _, err = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                raise
            return err
        """,
        """
        import subprocess
        def render(args, limit):
            proc = subprocess.Popen(args, stderr=subprocess.PIPE)
            try:
                _, err = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            return err
        """,
    ),
    (
        "MIR027",
        """
        import asyncio
        async def probe(args):
            proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
            return out
        """,
        """
        import subprocess
        def probe(args):
            return subprocess.run(args, capture_output=True, timeout=10).stdout
        """,
    ),
    (
        "MIR028",
        """
        import hashlib
        class Directory:
            def verify(self, password, salt, expected):
                return hashlib.pbkdf2_hmac("sha256", password, salt, 600_000) == expected
        async def login(request, directory: Directory):
            body = await request.json()
            return directory.verify(body["password"], b"salt", b"x")
        """,
        """
        import asyncio
        import hashlib
        async def login(request, salt, expected):
            body = await request.json()
            digest = await asyncio.to_thread(hashlib.pbkdf2_hmac, "sha256", body["password"], salt, 600_000)
            return digest == expected
        """,
    ),
    (
        "MIR028",
        """
        import bcrypt
        async def check(request, stored):
            body = await request.json()
            return bcrypt.checkpw(body["password"].encode(), stored)
        """,
        """
        import hashlib
        import jwt
        class Directory:
            def verify(self, password, salt):
                return hashlib.pbkdf2_hmac("sha256", password, salt, 600_000)
        async def authorise(request, key):
            return jwt.verify(request.headers["token"], key)
        """,
    ),
    (
        "MIR029",
        """
        import asyncio
        class Syncer:
            async def start(self):
                self._pool = await make_pool()
                self._loop_task: asyncio.Task = asyncio.create_task(self._refresh_forever())
            async def stop(self):
                if self._loop_task is not None and not self._loop_task.done():
                    await self._pool.close()
        """,
        """
        import asyncio
        class Syncer:
            async def start(self):
                self._pool = await make_pool()
                self._loop_task = asyncio.create_task(self._refresh_forever())
            async def stop(self):
                self._loop_task.cancel()
                await asyncio.gather(self._loop_task, return_exceptions=True)
                await self._pool.close()
        """,
    ),
    (
        "MIR030",
        """
        import os
        import threading
        def render(job):
            os.chdir(job.workdir)
            run_ffmpeg("poster.jpg")
        def loop(q):
            while True:
                render(q.get())
        def start(q):
            for _ in range(4):
                threading.Thread(target=loop, args=(q,)).start()
        """,
        """
        import os
        import threading
        def main(args):
            os.chdir(args.root)
            threading.Thread(target=serve).start()
        def serve():
            run_ffmpeg("poster.jpg")
        """,
    ),
    (
        "MIR031",
        """
        import hashlib
        def content_key(path):
            return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
        def etag(path):
            h = hashlib.md5()
            with open(path, "rb") as f:
                h.update(f.read())
            return h.hexdigest()
        """,
        """
        import hashlib
        def etag(path):
            h = hashlib.md5()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            return h.hexdigest()
        def tag(text):
            return hashlib.sha1(text.encode()).hexdigest()
        """,
    ),
    (
        "MIR014",  # a connection from a helper of the module, closed after work that can raise
        """
        import sqlite3
        def open_store(path):
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        def prune(path, cutoff):
            conn = open_store(path)
            conn.execute("DELETE FROM events WHERE at < ?", (cutoff,))
            conn.commit()
            conn.close()
        """,
        """
        import sqlite3
        def open_store(path):
            conn = sqlite3.connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        def prune(path, cutoff):
            conn = open_store(path)
            try:
                conn.execute("DELETE FROM events WHERE at < ?", (cutoff,))
                conn.commit()
            finally:
                conn.close()
        """,
    ),
    (
        "MIR004",  # a list fetched whole by one helper, searched for every item another helper fetched
        """
        import requests
        def _all_skus(api: requests.Session) -> list[str]:
            return [p["sku"] for p in api.get("https://shop/products", timeout=10).json()]
        def _orders(api: requests.Session) -> list[dict]:
            return api.get("https://shop/orders", timeout=10).json()
        def unknown_skus(api: requests.Session):
            skus = _all_skus(api)
            orders = _orders(api)
            return [o["id"] for o in orders if o["sku"] not in skus]
        """,
        """
        import requests
        def _all_skus(api: requests.Session) -> set[str]:
            return {p["sku"] for p in api.get("https://shop/products", timeout=10).json()}
        def _orders(api: requests.Session) -> list[dict]:
            return api.get("https://shop/orders", timeout=10).json()
        def unknown_skus(api: requests.Session):
            skus = _all_skus(api)
            orders = _orders(api)
            return [o["id"] for o in orders if o["sku"] not in skus]
        """,
    ),
    (
        "MIR004",  # the dedupe list grows in a loop over rows a helper of the module fetches
        """
        def open_tickets(conn):
            return conn.execute("SELECT id, tags FROM tickets WHERE open = 1").fetchall()
        def all_tags(conn):
            tags = []
            for ticket in open_tickets(conn):
                for tag in ticket["tags"].split(","):
                    if tag not in tags:
                        tags.append(tag)
            return tags
        """,
        """
        def open_tickets(conn):
            return conn.execute("SELECT id, tags FROM tickets WHERE open = 1").fetchall()
        def all_tags(conn):
            tags = {}
            for ticket in open_tickets(conn):
                for tag in ticket["tags"].split(","):
                    tags.setdefault(tag, None)
            return list(tags)
        """,
    ),
    (
        "MIR003",  # each item awaited through an async function of the module that does the I/O
        """
        import asyncio
        async def _lookup(host):
            loop = asyncio.get_running_loop()
            return await loop.getaddrinfo(host, 443)
        async def probe(host):
            try:
                return await _lookup(host)
            except OSError:
                return None
        async def probe_all(hosts):
            results = []
            for host in hosts:
                answer = await probe(host)
                results.append(answer)
            return results
        """,
        """
        import asyncio
        async def _lookup(host):
            loop = asyncio.get_running_loop()
            return await loop.getaddrinfo(host, 443)
        async def probe(host):
            try:
                return await _lookup(host)
            except OSError:
                return None
        async def probe_all(hosts):
            return await asyncio.gather(*(probe(h) for h in hosts))
        async def first_up(hosts):
            for host in hosts:
                if await probe(host):
                    return host
        """,
    ),
    (
        "MIR003",  # the same payload posted to each channel in turn
        """
        class Relay:
            def __init__(self, session):
                self._session = session
            async def _post_one(self, channel, payload):
                async with self._session.post("/chat.post", json={**payload, "channel": channel}) as r:
                    r.raise_for_status()
            async def fan_out(self, channels, payload):
                for channel in channels:
                    await self._post_one(channel, payload)
        """,
        """
        class Relay:
            def __init__(self, session):
                self._session = session
            async def _post_one(self, channel, payload):
                async with self._session.post("/chat.post", json={**payload, "channel": channel}) as r:
                    r.raise_for_status()
            async def replay(self, channel, payloads):
                for payload in payloads:
                    await self._post_one(channel, payload)
        """,
    ),
    (
        "MIR020",  # a bounded retry that goes round at once on 429 / 5xx
        """
        import requests
        def push(session: requests.Session, rows):
            for _ in range(5):
                resp = session.post("https://api.example/rows", json=rows, timeout=10)
                if resp.status_code in (429, 503):
                    continue
                resp.raise_for_status()
                return resp.json()
            raise RuntimeError("gave up")
        """,
        """
        import time
        import requests
        def push(session: requests.Session, rows):
            for attempt in range(5):
                resp = session.post("https://api.example/rows", json=rows, timeout=10)
                if resp.status_code in (429, 503):
                    time.sleep(2**attempt)
                    continue
                resp.raise_for_status()
                return resp.json()
            raise RuntimeError("gave up")
        def push_pages(session: requests.Session, pages):
            for i in range(len(pages)):
                resp = session.post("https://api.example/rows", json=pages[i], timeout=10)
                if resp.status_code == 204:
                    continue
                if resp.status_code >= 400:
                    break
        """,
    ),
    (
        "MIR020",  # a consumer that reconnects at once when its client library's connection drops
        """
        import amqp_client
        async def consume(handle):
            while True:
                try:
                    async with amqp_client.connect("amqp://queue") as conn:
                        async for msg in conn.messages("jobs"):
                            await handle(msg)
                except amqp_client.ChannelError:
                    print("connection lost, reconnecting")
        """,
        """
        import asyncio
        import amqp_client
        async def consume(handle):
            while True:
                try:
                    async with amqp_client.connect("amqp://queue") as conn:
                        async for msg in conn.messages("jobs"):
                            await handle(msg)
                except amqp_client.ChannelError:
                    print("connection lost, reconnecting")
                    await asyncio.sleep(5)
        """,
    ),
    (
        "MIR008",  # per-room history lists that grow with every message (not a bounded deque per room)
        """
        from collections import defaultdict, deque
        class Rooms:
            def __init__(self):
                self.recent = defaultdict(lambda: deque())
            async def handle(self, room, message):
                self.recent[room].append(message)
        rooms = Rooms()
        """,
        """
        from collections import defaultdict, deque
        class Rooms:
            def __init__(self):
                self.recent = defaultdict(lambda: deque(maxlen=50))
            async def handle(self, room, message):
                self.recent[room].append(message)
        rooms = Rooms()
        """,
    ),
    (
        "MIR032",  # a log read whole only to be walked once
        """
        import gzip
        def count_errors(path):
            errors = 0
            with gzip.open(path, "rt") as fh:
                lines = fh.readlines()
            for line in lines:
                if " 500 " in line:
                    errors += 1
            return errors
        """,
        """
        import gzip
        def count_errors(path):
            errors = 0
            with gzip.open(path, "rt") as fh:
                for line in fh:
                    if " 500 " in line:
                        errors += 1
            return errors
        def tail(path, n):
            with open(path) as fh:
                lines = fh.readlines()
            return lines[-n:] if len(lines) > n else lines
        """,
    ),
    (
        "MIR032",  # a dump read whole only to be sent as a request body
        """
        import requests
        def push(url, path):
            with path.open("rb") as fh:
                payload = fh.read()
            requests.put(url, data=payload, timeout=60)
        """,
        """
        import requests
        def push(url, path):
            with path.open("rb") as fh:
                requests.put(url, data=fh, timeout=60)
        def push_signed(url, path, sign):
            with path.open("rb") as fh:
                payload = fh.read()
            requests.put(url, data=payload, headers={"x-sig": sign(payload)}, timeout=60)
        """,
    ),
    (
        "MIR008",  # a worker the module never makes, but whose own loop runs until it is stopped
        """
        import threading
        class Tailer:
            def __init__(self, source):
                self.source = source
                self._stop = threading.Event()
                self.seen = []
            def handle(self, line):
                self.seen.append(line)
            def run(self):
                while not self._stop.is_set():
                    for line in self.source.read_new():
                        self.handle(line)
        """,
        """
        import threading
        class Tailer:
            def __init__(self, source):
                self.source = source
                self._stop = threading.Event()
                self._subscribers = []
            def on_line(self, callback):
                self._subscribers.append(callback)
            def handle(self, line):
                for fn in list(self._subscribers):
                    fn(line)
            def run(self):
                while not self._stop.is_set():
                    for line in self.source.read_new():
                        self.handle(line)
        """,
    ),
    (
        "MIR008",  # a module-level dict filled with what each request fetched, never trimmed
        """
        import httpx
        client = httpx.AsyncClient(timeout=5)
        _thumbs = {}
        async def thumbnail(photo_id: int, width: int):
            key = (photo_id, width)
            if key not in _thumbs:
                resp = await client.get(f"/photos/{photo_id}", params={"w": width})
                _thumbs[key] = resp.content
            return _thumbs[key]
        """,
        """
        import functools
        import httpx
        client = httpx.AsyncClient(timeout=5)
        _backends = {}
        def register_backend(name, factory):
            _backends[name] = factory
        _thumbs = {}
        async def thumbnail(photo_id: int, width: int):
            key = (photo_id, width)
            if key not in _thumbs:
                if len(_thumbs) > 1000:
                    _thumbs.pop(next(iter(_thumbs)))
                resp = await client.get(f"/photos/{photo_id}", params={"w": width})
                _thumbs[key] = resp.content
            return _thumbs[key]
        """,
    ),
    (
        "MIR011",  # a long-lived list checked and grown once per event, not in a loop
        """
        import threading
        class Deduper:
            def __init__(self, sink):
                self.sink = sink
                self._stop = threading.Event()
                self._handled = []
            def handle(self, message):
                if message.id in self._handled:
                    return
                self.sink.write(message)
                self._handled.append(message.id)
            def run(self, inbox):
                while not self._stop.is_set():
                    self.handle(inbox.get())
        """,
        """
        import threading
        class Deduper:
            def __init__(self, sink):
                self.sink = sink
                self._stop = threading.Event()
                self._handled = set()
            def handle(self, message):
                if message.id in self._handled:
                    return
                self.sink.write(message)
                self._handled.add(message.id)
            def run(self, inbox):
                while not self._stop.is_set():
                    self.handle(inbox.get())
        """,
    ),
    (
        "MIR017",  # two reads through a module helper that awaits the client it is given
        """
        async def _read(client, path):
            resp = await client.get(path)
            resp.raise_for_status()
            return resp.json()
        async def overview(users, billing, uid):
            user = await _read(users, f"/users/{uid}")
            invoices = await _read(billing, f"/invoices?user={uid}")
            return user, invoices
        """,
        """
        async def _read(client, path):
            resp = await client.get(path)
            resp.raise_for_status()
            return resp.json()
        async def overview(users, billing, uid):
            user = await _read(users, f"/users/{uid}")
            invoices = await _read(billing, f"/invoices?account={user['account']}")
            return user, invoices
        """,
    ),
    (
        "MIR002",  # a semaphore taken by hand, given back on the early path, lost when the request raises
        """
        import asyncio
        class Fetcher:
            def __init__(self, client):
                self.client = client
                self._gate = asyncio.Semaphore(8)
            async def fetch(self, url):
                await self._gate.acquire()
                resp = await self.client.get(url)
                if resp.status_code == 304:
                    self._gate.release()
                    return None
                body = resp.json()
                self._gate.release()
                return body
        """,
        """
        import asyncio
        class Fetcher:
            def __init__(self, client):
                self.client = client
                self._gate = asyncio.Semaphore(8)
            async def fetch(self, url):
                await self._gate.acquire()
                try:
                    resp = await self.client.get(url)
                    return resp.json()
                finally:
                    self._gate.release()
            def count(self, seen):
                self._gate_lock.acquire()
                n = len(seen)
                self._gate_lock.release()
                return n
        """,
    ),
    (
        "MIR002",  # a lock released after a query that can raise: held for good when it does
        """
        import threading
        class Ledger:
            def __init__(self, conn):
                self.conn = conn
                self._write_lock = threading.Lock()
            def record(self, entry):
                self._write_lock.acquire()
                self.conn.execute("INSERT INTO ledger VALUES (?)", (entry,))
                self.conn.commit()
                self._write_lock.release()
        """,
        """
        import threading
        class Ledger:
            def __init__(self, conn):
                self.conn = conn
                self._write_lock = threading.Lock()
            def record(self, entry):
                with self._write_lock:
                    self.conn.execute("INSERT INTO ledger VALUES (?)", (entry,))
                    self.conn.commit()
            def try_record(self, entry):
                if not self._write_lock.acquire(timeout=1):
                    return False
                try:
                    self.conn.execute("INSERT INTO ledger VALUES (?)", (entry,))
                finally:
                    self._write_lock.release()
                return True
        """,
    ),
    (
        "MIR004",  # the lines of an open file deduplicated into a list the loop grows
        """
        def distinct_hosts(log_path):
            hosts = []
            with open(log_path) as fh:
                for line in fh:
                    host = line.split()[0]
                    if host not in hosts:
                        hosts.append(host)
            return hosts
        """,
        """
        def distinct_hosts(log_path):
            hosts, seen = [], set()
            with open(log_path) as fh:
                for line in fh:
                    host = line.split()[0]
                    if host not in seen:
                        seen.add(host)
                        hosts.append(host)
            return hosts
        """,
    ),
    (
        "MIR010",  # a helper hands its timeout parameter, None by default, to urlopen; a caller gives none
        """
        import urllib.request
        def _get(url, timeout=None):
            return urllib.request.urlopen(url, timeout=timeout)
        def ping(url):
            with _get(url, timeout=2) as r:
                return r.status
        def download(url):
            with _get(url) as r:
                return r.read()
        """,
        """
        import urllib.request
        def _get(url, timeout=None):
            if timeout is None:
                timeout = 30
            return urllib.request.urlopen(url, timeout=timeout)
        def _head(url, timeout=10):
            return urllib.request.urlopen(url, timeout=timeout)
        def download(url):
            with _get(url) as r, _head(url) as h:
                return r.read(), h.status
        """,
    ),
    (
        "MIR013",  # the lock is held across a module function whose helper makes the request
        """
        import threading
        import urllib.request
        def _fetch(url):
            return urllib.request.urlopen(url, timeout=5).read()
        def load_profile(user_id):
            return _fetch(f"http://profiles/{user_id}")
        class Profiles:
            def __init__(self):
                self._lock = threading.Lock()
                self._cache = {}
            def get(self, user_id):
                with self._lock:
                    if user_id not in self._cache:
                        self._cache[user_id] = load_profile(user_id)
                    return self._cache[user_id]
        """,
        """
        import threading
        import urllib.request
        def _fetch(url):
            return urllib.request.urlopen(url, timeout=5).read()
        def load_profile(user_id):
            return _fetch(f"http://profiles/{user_id}")
        class Profiles:
            def __init__(self):
                self._lock = threading.Lock()
                self._cache = {}
            def get(self, user_id):
                with self._lock:
                    if user_id in self._cache:
                        return self._cache[user_id]
                profile = load_profile(user_id)
                with self._lock:
                    self._cache[user_id] = profile
                return profile
        """,
    ),
    (
        "MIR017",  # two reads through a helper that awaits `async with session.get(...)`
        """
        class Weather:
            def __init__(self, session):
                self.session = session
            async def _get(self, path):
                async with self.session.get(path) as resp:
                    return await resp.json()
            async def report(self, city):
                today = await self._get(f"/today/{city}")
                alerts = await self._get(f"/alerts/{city}")
                return today, alerts
        """,
        """
        class Weather:
            def __init__(self, session):
                self.session = session
            async def _get(self, path):
                async with self.session.get(path) as resp:
                    return await resp.json()
            async def report(self, city):
                station = await self._get(f"/station/{city}")
                today = await self._get(f"/today/{station['id']}")
                return today
        """,
    ),
]


@pytest.mark.parametrize(("rule", "bad", "good"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_rule_flags_the_problem_and_not_the_near_miss(rule, bad, good):
    assert rule in fired(bad), f"{rule} should fire"
    assert rule not in fired(good), f"{rule} should not fire on the near-miss"


def test_a_skipped_close_is_reported_where_the_resource_is_opened():
    code = """
        import psycopg
        def load(dsn, rows):
            conn = psycopg.connect(dsn)
            if not rows:
                return 0
            conn.execute("INSERT INTO t VALUES (%s)", rows)
            conn.close()
            return len(rows)
        """
    (hit,) = [h for h in run_rules(textwrap.dedent(code)) if h.rule == "MIR014"]
    assert hit.line == 4
    assert "the `return` on line 6" in hit.message and "`conn.close()` on line 8" in hit.message


def test_every_rule_has_a_case_and_a_plain_message():
    assert {c[0] for c in CASES} == set(RULES)
    for rule in RULES.values():
        assert rule.kind in KINDS
        assert "\n" not in rule.message


def test_speed_rules_stay_quiet_in_tests_and_test_doubles():
    code = """
    async def load_all(client, ids):
        users = []
        for user_id in ids:
            users.append(await client.fetch_user(user_id))
        return users
    """
    assert "MIR003" in fired(code, "app/users.py")
    assert "MIR003" not in fired(code, "tests/test_users.py")
    double = "class FakeClient:\n" + textwrap.indent(
        textwrap.dedent(code).replace("(client", "(self, client"), "    "
    )
    assert "MIR003" not in fired(double, "app/fakes.py")


def test_check_source_merges_ruff_and_own_rules_sorted():
    code = textwrap.dedent(
        """
        import time
        import requests

        class Svc:
            def __init__(self):
                self.history = []

            async def handle(self, url):
                time.sleep(1)
                self.history.append(url)
                return requests.get(url)

        SERVICE = Svc()
        """
    )
    found = check_source(code, "svc.py")
    rules = [f.rule for f in found]
    assert "ASYNC251" in rules and "MIR008" in rules and "S113" in rules
    assert [f.line for f in found] == sorted(f.line for f in found)
    for f in found:
        assert isinstance(f, Finding)
        assert f.kind in KINDS and f.source in ("ruff", "mirador")
        assert f.code and f.code == code.splitlines()[f.line - 1].strip()
        assert set(f.to_dict()) == {
            "path", "line", "col", "end_line", "rule", "source", "kind", "message", "code"
        }  # fmt: skip
    sleep = next(f for f in found if f.rule == "ASYNC251")
    assert sleep.source == "ruff" and sleep.kind == "concurrency" and sleep.col >= 1


def test_ruff_findings_narrowed_by_measurement_are_dropped():
    code = textwrap.dedent(
        """
        import asyncio
        import csv
        import functools
        import subprocess
        import requests

        class Palette:
            @functools.lru_cache(maxsize=1024)
            def bounded(self, i):
                return i

            @functools.cache
            def unbounded(self, i):
                return i

        def fetch(url):
            requests.get(url, timeout=None)
            return requests.get(url)

        def reader(path):
            handle = open(path, "rb")
            return wrap(handle)

        def leaky(path):
            f = open(path)
            data = f.read()
            f.close()
            return data

        def export(rows, path):
            out = open(path, "w")
            writer = csv.writer(out)  # lent to a writer that never closes it: still ours to close
            writer.writerows(rows)
            out.close()

        def build(cmd, log_path):
            log = open(log_path, "a")
            subprocess.run(cmd, stdout=log, check=True)  # lent to the child: still ours to close
            log.close()

        async def spawn():
            loop = asyncio.get_running_loop()
            watcher = loop.create_task(asyncio.sleep(1))
            asyncio.create_task(asyncio.sleep(1))
            await asyncio.sleep(0)
        """
    )
    found = {(f.rule, f.code) for f in check_source(code, "svc.py")}
    assert ("B019", "@functools.cache") in found
    assert not any(rule == "B019" and "maxsize=1024" in line for rule, line in found)
    assert ("S113", "return requests.get(url)") in found
    assert not any(rule == "S113" and "timeout=None" in line for rule, line in found)
    assert ("SIM115", "f = open(path)") in found
    assert not any(rule == "SIM115" and "handle" in line for rule, line in found)
    assert ("SIM115", 'out = open(path, "w")') in found
    assert ("SIM115", 'log = open(log_path, "a")') in found
    assert ("RUF006", "asyncio.create_task(asyncio.sleep(1))") in found
    assert not any(rule == "RUF006" and "watcher" in line for rule, line in found)


def test_check_source_never_raises_on_a_syntax_error():
    found = check_source("def broken(:\n    pass\n", "broken.py")
    assert all(f.rule != "E999" and "SyntaxError" not in f.message for f in found)
    assert run_rules("def broken(:\n") == []


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


BAD = """
class Tracker:
    def __init__(self):
        self.events = []
    def on_event(self, event):
        self.events.append(event)
TRACKER = Tracker()
"""


def test_folders_recurse_skipping_virtualenvs_caches_and_gitignored(tmp_path):
    write(tmp_path / "pkg" / "a.py", BAD)
    write(tmp_path / ".venv" / "lib" / "b.py", BAD)
    write(tmp_path / "env2" / "pyvenv.cfg", "home = /usr\n")
    write(tmp_path / "env2" / "c.py", BAD)
    write(tmp_path / "__pycache__" / "d.py", BAD)
    write(tmp_path / "pkg.egg-info" / "e.py", BAD)
    write(tmp_path / "generated" / "f.py", BAD)
    write(tmp_path / ".gitignore", "generated/\n")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    found = check_paths([str(tmp_path)])
    assert {Path(f.path).relative_to(tmp_path).as_posix() for f in found} == {"pkg/a.py"}


def test_missing_path_raises_value_error(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        check_paths([str(tmp_path / "nope.py")])
    (tmp_path / "notes.txt").write_text("hi", encoding="utf-8")
    with pytest.raises(ValueError, match="not a Python file"):
        check_paths([str(tmp_path / "notes.txt")])


def test_cli_exit_codes_and_text_output(tmp_path, capsys):
    clean = write(tmp_path / "clean.py", "def f(x):\n    return x\n")
    bad = write(tmp_path / "bad.py", BAD)
    assert main([str(clean), "--no-color"]) == 0
    assert "No problems" in capsys.readouterr().err
    assert main([str(bad), "--no-color"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{bad}:6:9 MIR008 ")
    assert "\033[" not in out and "Found 1 problem" in err
    assert main([str(tmp_path / "missing.py")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such file" in err
    notes = write(tmp_path / "notes.md", "# hi\n")
    assert main([str(notes)]) == 2
    assert main([]) == 2  # no path


def test_cli_json(tmp_path, capsys):
    bad = write(tmp_path / "bad.py", BAD)
    assert main([str(bad), "--json"]) == 1
    records = json.loads(capsys.readouterr().out)
    assert records == [
        {
            "path": str(bad),
            "line": 6,
            "end_line": 6,
            "col": 9,
            "rule": "MIR008",
            "source": "mirador",
            "kind": "resources",
            "message": RULES["MIR008"].message.format(
                attr="events", method="on_event", owner="self.", scope="class", life="object"
            ),
            "code": "self.events.append(event)",
        }
    ]
    clean = write(tmp_path / "clean.py", "x = 1\n")
    assert main([str(clean), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_python_dash_m_checks_runs(tmp_path):
    bad = write(tmp_path / "bad.py", BAD)
    proc = subprocess.run(
        [sys.executable, "-m", "checks", str(bad), "--no-color"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "MIR008" in proc.stdout


def test_importing_checks_loads_no_model_runtime():
    code = (
        "import sys, checks, checks.cli\n"
        "heavy = [m for m in ('torch', 'chromadb', 'langgraph', 'langchain_core', 'llama_cpp',"
        " 'sentence_transformers', 'graph') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip() == ""


def test_lock_across_network_names_the_first_call_under_the_lock():
    code = """
import threading, requests
class Rates:
    def __init__(self):
        self._lock = threading.Lock()
    def refresh(self):
        with self._lock:
            try:
                rates = requests.get("https://primary", timeout=5)
            except requests.RequestException:
                rates = requests.get("https://fallback", timeout=5)
"""
    assert [h.line for h in run_rules(code, "svc.py") if h.rule == "MIR013"] == [9]
