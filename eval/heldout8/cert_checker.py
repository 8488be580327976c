"""Checks TLS certificate expiry for every endpoint in the inventory.

Run hourly from cron; posts a summary to the on-call chat channel and exits
non-zero when any certificate is inside the critical window.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import socket
import ssl
from dataclasses import dataclass

import httpx

log = logging.getLogger("certcheck")

CONTEXT = ssl.create_default_context()
WARN_DAYS = 21
CRIT_DAYS = 7


@dataclass
class Result:
    host: str
    port: int
    days_left: int | None
    error: str | None = None

    @property
    def level(self) -> str:
        if self.days_left is None or self.days_left <= CRIT_DAYS:
            return "critical"
        if self.days_left <= WARN_DAYS:
            return "warning"
        return "ok"


def _smtp_starttls(sock: socket.socket) -> None:
    """Speak enough SMTP to upgrade the connection, for mail endpoints."""
    reader = sock.makefile("rb")
    if not reader.readline().startswith(b"220"):
        raise ConnectionError("no SMTP greeting")
    sock.sendall(b"EHLO certcheck.internal\r\n")
    while True:
        line = reader.readline()
        if not line.startswith(b"250"):
            raise ConnectionError(f"EHLO rejected: {line[:80]!r}")
        if line[3:4] != b"-":
            break
    sock.sendall(b"STARTTLS\r\n")
    if not reader.readline().startswith(b"220"):
        raise ConnectionError("STARTTLS not offered")


def fetch_expiry(host: str, port: int = 443, starttls: str | None = None) -> dt.datetime:
    sock = socket.create_connection((host, port))
    if starttls == "smtp":
        _smtp_starttls(sock)
    tls = CONTEXT.wrap_socket(sock, server_hostname=host)
    cert = tls.getpeercert()
    tls.close()
    not_after = dt.datetime.strptime(cert["notAfter"], "%b %d %H:%M:%S %Y %Z")
    return not_after.replace(tzinfo=dt.timezone.utc)


async def check(host: str, port: int, starttls: str | None) -> Result:
    loop = asyncio.get_running_loop()
    try:
        expires = await loop.run_in_executor(None, fetch_expiry, host, port, starttls)
    except (OSError, ssl.SSLError) as exc:
        return Result(host, port, None, f"{type(exc).__name__}: {exc}")
    days = (expires - dt.datetime.now(dt.timezone.utc)).days
    return Result(host, port, days)


async def check_all(endpoints: list[tuple[str, int, str | None]]) -> list[Result]:
    results = []
    for host, port, starttls in endpoints:
        results.append(await check(host, port, starttls))
    return results


def format_summary(results: list[Result]) -> str:
    lines = []
    for r in results:
        if r.level == "ok":
            continue
        detail = r.error if r.error else f"expires in {r.days_left} days"
        lines.append(f"[{r.level.upper()}] {r.host}:{r.port} {detail}")
    ok = sum(1 for r in results if r.level == "ok")
    lines.append(f"{ok}/{len(results)} endpoints healthy")
    return "\n".join(lines)


async def post_summary(text: str, webhook_url: str) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        resp = await client.post(webhook_url, json={"text": text})
        resp.raise_for_status()


def load_inventory(path: str) -> list[tuple[str, int, str | None]]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return [
        (e["host"], int(e.get("port", 443)), e.get("starttls"))
        for e in data["endpoints"]
        if e.get("tls", True)
    ]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inventory", default="/etc/certcheck/inventory.json")
    parser.add_argument("--webhook", required=True)
    args = parser.parse_args(argv)

    endpoints = load_inventory(args.inventory)
    results = await check_all(endpoints)
    results.sort(key=lambda r: (r.level != "critical", r.days_left if r.days_left is not None else -1))
    summary = format_summary(results)
    await post_summary(summary, args.webhook)
    return 2 if any(r.level == "critical" for r in results) else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(asyncio.run(main()))
