"""Folds rotated edge access logs into per-tenant request metrics and pushes them upstream."""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests

log = logging.getLogger("edge-metrics")

LINE = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) (?P<host>\S+) (?P<rt>[\d.]+)$'
)
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TENANTS_FILE = Path(os.environ.get("TENANTS_FILE", "/etc/edge/tenants.json"))


def tenant_hosts() -> dict[str, str]:
    with TENANTS_FILE.open(encoding="utf-8") as fh:
        data = json.load(fh)
    return {host: t["id"] for t in data["tenants"] for host in t["hosts"]}


def _bucket(rt: float) -> str:
    for b in BUCKETS:
        if rt <= b:
            return str(b)
    return "+Inf"


class Aggregator:
    def __init__(self, push_url: str, job: str) -> None:
        self.push_url = push_url
        self.job = job
        self.requests: Counter[tuple[str, str]] = Counter()
        self.latency: Counter[tuple[str, str]] = Counter()
        self.bytes_out: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def ingest_file(self, path: Path) -> int:
        local_req: Counter[tuple[str, str]] = Counter()
        local_lat: Counter[tuple[str, str]] = Counter()
        local_bytes: Counter[str] = Counter()
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            lines = fh.readlines()
        parsed = 0
        for raw in lines:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            tenant = tenant_hosts().get(m["host"], "unknown")
            local_req[(tenant, m["status"][0] + "xx")] += 1
            local_lat[(tenant, _bucket(float(m["rt"])))] += 1
            if m["bytes"] != "-":
                local_bytes[tenant] += int(m["bytes"])
            parsed += 1
        with self._lock:
            self.requests.update(local_req)
            self.latency.update(local_lat)
            self.bytes_out.update(local_bytes)
        return parsed

    def _exposition(self) -> str:
        out = []
        for (tenant, cls), n in sorted(self.requests.items()):
            out.append(f'edge_requests_total{{tenant="{tenant}",class="{cls}"}} {n}')
        for (tenant, le), n in sorted(self.latency.items()):
            out.append(f'edge_request_seconds_bucket{{tenant="{tenant}",le="{le}"}} {n}')
        for tenant, n in sorted(self.bytes_out.items()):
            out.append(f'edge_bytes_out_total{{tenant="{tenant}"}} {n}')
        return "\n".join(out) + "\n"

    def push(self) -> None:
        with self._lock:
            body = self._exposition()
            resp = requests.put(
                f"{self.push_url}/metrics/job/{self.job}",
                data=body.encode(),
                headers={"content-type": "text/plain; version=0.0.4"},
                timeout=15,
            )
        if resp.status_code >= 300:
            log.warning("push rejected: %s", resp.status_code)

    def _pusher(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.push()
            except requests.RequestException as exc:
                log.warning("push failed: %s", exc)

    def run(self, files: list[Path], workers: int = 6, push_every: float = 15.0) -> int:
        pusher = threading.Thread(target=self._pusher, args=(push_every,), name="pusher")
        pusher.start()
        total = 0
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(self.ingest_file, f): f for f in files}
                for fut in as_completed(futures):
                    try:
                        total += fut.result()
                    except OSError as exc:
                        log.error("could not read %s: %s", futures[fut], exc)
        finally:
            self._stop.set()
            pusher.join()
        self.push()
        return total


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    root = Path(os.environ.get("EDGE_LOG_DIR", "/var/log/edge"))
    files = sorted(root.glob("access.log*"))
    agg = Aggregator(os.environ.get("PUSHGATEWAY", "http://pushgateway:9091"), "edge_logs")
    log.info("parsed %d lines from %d files", agg.run(files), len(files))


if __name__ == "__main__":
    main()
