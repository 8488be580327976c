"""Summarise nginx access logs: status codes, top paths, slowest endpoints, distinct clients.

Usage: access_log_report.py [--format combined|timed] [--top N] LOG [LOG ...]

Rotated logs compressed by logrotate (`*.gz`) are read transparently. The `timed` format is
`combined` plus `$request_time`, which the latency table needs.
"""

from __future__ import annotations

import argparse
import gzip
import heapq
import re
import statistics
import sys
from collections import Counter, defaultdict
from typing import Any

LOG_FORMATS = {
    "combined": (
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent"'
    ),
    "timed": (
        '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
        '"$http_referer" "$http_user_agent" $request_time'
    ),
}
NUMERIC_ID = re.compile(r"/\d+(?=/|$)")


def format_to_regex(fmt: str) -> re.Pattern[str]:
    """Turn an nginx `log_format` string into a regex with one named group per variable."""
    pattern = re.escape(fmt)
    for var in re.findall(r"\$(\w+)", fmt):
        pattern = pattern.replace(re.escape("$" + var), f"(?P<{var}>.*?)", 1)
    return re.compile("^" + pattern + "$")


def parse_line(line: str, fmt: str) -> dict[str, Any] | None:
    """One log line as a dict, or None when it does not match the format."""
    m = format_to_regex(LOG_FORMATS[fmt]).match(line.rstrip("\n"))
    if not m:
        return None
    entry: dict[str, Any] = m.groupdict()
    parts = entry["request"].split(" ")
    entry["method"], entry["path"] = (parts[0], parts[1].split("?", 1)[0]) if len(parts) >= 2 else ("-", "-")
    entry["status"] = int(entry["status"])
    if "request_time" in entry:
        entry["request_time"] = float(entry["request_time"])
    return entry


def endpoint(path: str) -> str:
    """A path with numeric ids folded, so /orders/17/items and /orders/18/items group together."""
    return NUMERIC_ID.sub("/:id", path)


def read_lines(path: str) -> list[str]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        return fh.readlines()


def analyse(paths: list[str], fmt: str) -> dict[str, Any]:
    statuses: Counter[int] = Counter()
    hits: Counter[str] = Counter()
    latencies: defaultdict[str, list[float]] = defaultdict(list)
    clients: list[str] = []
    unparsed = 0
    for path in paths:
        for line in read_lines(path):
            entry = parse_line(line, fmt)
            if entry is None:
                unparsed += 1
                continue
            statuses[entry["status"]] += 1
            hits[entry["path"]] += 1
            if "request_time" in entry:
                latencies[endpoint(entry["path"])].append(entry["request_time"])
            if entry["remote_addr"] not in clients:
                clients.append(entry["remote_addr"])
    return {
        "statuses": statuses,
        "hits": hits,
        "latencies": latencies,
        "clients": len(clients),
        "unparsed": unparsed,
    }


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=20)[-1]


def print_report(summary: dict[str, Any], top: int, out=sys.stdout) -> None:
    total = sum(summary["statuses"].values())
    print(f"{total} requests from {summary['clients']} clients ({summary['unparsed']} lines unparsed)", file=out)
    print("\nStatus codes:", file=out)
    for status, count in sorted(summary["statuses"].items()):
        print(f"  {status}  {count:>10}  {100 * count / max(total, 1):5.1f}%", file=out)
    print(f"\nTop {top} paths:", file=out)
    for path, count in summary["hits"].most_common(top):
        print(f"  {count:>10}  {path}", file=out)
    if summary["latencies"]:
        print(f"\nSlowest {top} endpoints by p95 (seconds):", file=out)
        ranked = heapq.nlargest(top, summary["latencies"].items(), key=lambda kv: p95(kv[1]))
        for name, values in ranked:
            print(f"  {p95(values):8.3f}  {len(values):>8}  {name}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Summarise nginx access logs.")
    parser.add_argument("logs", nargs="+")
    parser.add_argument("--format", choices=sorted(LOG_FORMATS), default="combined")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        summary = analyse(args.logs, args.format)
    except OSError as exc:
        print(f"cannot read log: {exc}", file=sys.stderr)
        return 2
    print_report(summary, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
