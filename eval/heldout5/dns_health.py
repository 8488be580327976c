"""DNS and service health checker for the edge fleet.

Every minute, resolves each monitored hostname, opens a TCP connection to
its service port, reads the greeting line and compares it with what the
service should say. The results go to a JSON status file the on-call
dashboard polls; a host is only reported down after several failed rounds
so one dropped packet does not page anybody.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("dns-health")

INTERVAL = 60.0
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 5.0
DOWN_AFTER = 3
STATUS_FILE = Path(os.environ.get("HEALTH_STATUS", "/var/www/status/edge.json"))


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    expect: bytes = b""


@dataclass
class Result:
    host: str
    ok: bool
    address: str | None
    latency_ms: float | None
    error: str | None
    checked_at: float


_history: dict[str, deque[bool]] = defaultdict(lambda: deque(maxlen=DOWN_AFTER))


async def _resolve(host: str) -> str:
    """The first IPv4 address of `host`."""
    return socket.gethostbyname(host)


async def _probe(target: Target, address: str) -> float:
    """Connect, read the greeting and return the round trip in milliseconds."""
    start = time.monotonic()
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(address, target.port), timeout=CONNECT_TIMEOUT
    )
    greeting = await asyncio.wait_for(reader.readline(), timeout=READ_TIMEOUT)
    if target.expect and not greeting.startswith(target.expect):
        raise ValueError(f"unexpected greeting {greeting[:40]!r}")
    writer.close()
    await writer.wait_closed()
    return (time.monotonic() - start) * 1000


async def check(target: Target) -> Result:
    """One health check of one target; never raises."""
    address = None
    try:
        address = await _resolve(target.host)
        latency = await _probe(target, address)
    except (OSError, asyncio.TimeoutError, ValueError) as exc:
        return Result(target.host, False, address, None, f"{type(exc).__name__}: {exc}", time.time())
    return Result(target.host, True, address, round(latency, 1), None, time.time())


async def run_round(targets: list[Target]) -> list[Result]:
    results = []
    for target in targets:
        result = await check(target)
        _history[target.host].append(result.ok)
        results.append(result)
    return results


def _status(results: list[Result]) -> dict:
    hosts = {}
    for r in results:
        recent = _history[r.host]
        down = len(recent) == DOWN_AFTER and not any(recent)
        hosts[r.host] = {**asdict(r), "state": "down" if down else ("degraded" if not r.ok else "up")}
    return {"generated_at": time.time(), "hosts": hosts}


def write_status(status: dict, path: Path = STATUS_FILE) -> None:
    """Replace the status file atomically so the dashboard never reads half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2))
    tmp.replace(path)


def load_targets(path: Path) -> list[Target]:
    raw = json.loads(path.read_text())
    return [Target(t["host"], int(t["port"]), t.get("expect", "").encode()) for t in raw]


async def main(targets_file: str) -> None:
    targets = load_targets(Path(targets_file))
    log.info("checking %d targets every %.0fs", len(targets), INTERVAL)
    while True:
        started = time.monotonic()
        results = await run_round(targets)
        await asyncio.to_thread(write_status, _status(results))
        failed = [r.host for r in results if not r.ok]
        if failed:
            log.warning("%d/%d checks failed: %s", len(failed), len(results), ", ".join(failed))
        await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "/etc/dns-health/targets.json"))
