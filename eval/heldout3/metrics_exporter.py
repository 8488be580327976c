"""In-process metrics registry with a Prometheus text endpoint.

The API service records request latencies through `observe_request`; the
exporter serves /metrics on a side port and also merges in the metrics of
the sidecar processes listed in METRICS_UPSTREAMS.
"""
from __future__ import annotations

import bisect
import logging
import os
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("metrics")

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UPSTREAMS = [u for u in os.environ.get("METRICS_UPSTREAMS", "").split(",") if u]


class Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, value)] += 1
        self.total += value
        self.count += 1


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], Histogram] = {}
        self._help: dict[str, str] = {}
        self.started = time.time()

    def histogram(self, name: str, help_text: str, **labels: str) -> Histogram:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            hist = self._series.get(key)
            if hist is None:
                hist = self._series[key] = Histogram()
                self._help.setdefault(name, help_text)
            return hist

    def observe(self, name: str, value: float, help_text: str = "", **labels: str) -> None:
        hist = self.histogram(name, help_text, **labels)
        with self._lock:
            hist.observe(value)

    def render(self) -> str:
        with self._lock:
            snapshot = {key: (list(h.counts), h.total, h.count) for key, h in self._series.items()}
            helps = dict(self._help)
        out: list[str] = []
        for name in sorted(helps):
            out.append(f"# HELP {name} {helps[name]}")
            out.append(f"# TYPE {name} histogram")
            for key in sorted(snapshot):
                if key[0] != name:
                    continue
                counts, total, count = snapshot[key]
                labels = ",".join(f'{k}="{v}"' for k, v in key[1])
                sep = "," if labels else ""
                running = 0
                for bound, c in zip(BUCKETS + (float("inf"),), counts):
                    running += c
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} {running}')
                out.append(f"{name}_sum{{{labels}}} {total}")
                out.append(f"{name}_count{{{labels}}} {count}")
        out.append(f"process_uptime_seconds {time.time() - self.started:.0f}")
        return "\n".join(out) + "\n"


REGISTRY = Registry()


def observe_request(method: str, path: str, status: int, seconds: float) -> None:
    REGISTRY.observe(
        "http_request_duration_seconds",
        seconds,
        "Latency of API requests",
        method=method,
        path=path,
        status=str(status),
    )


def collect_upstreams() -> str:
    parts: list[str] = []
    for url in UPSTREAMS:
        try:
            with urllib.request.urlopen(url) as resp:
                parts.append(resp.read().decode("utf-8"))
        except OSError as exc:
            log.warning("upstream %s unavailable: %s", url, exc)
    return "".join(parts)


class MetricsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/metrics":
            self.send_error(404)
            return
        body = (REGISTRY.render() + collect_upstreams()).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args) -> None:
        log.debug(fmt, *args)


def start_exporter(port: int = 9102) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("0.0.0.0", port), MetricsHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server


class TimingMiddleware:
    """WSGI middleware feeding `observe_request`."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status_holder: dict[str, int] = {}

        def _start(status, headers, exc_info=None):
            status_holder["code"] = int(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            return self.app(environ, _start)
        finally:
            observe_request(
                environ.get("REQUEST_METHOD", "GET"),
                environ.get("PATH_INFO", "/"),
                status_holder.get("code", 500),
                time.perf_counter() - started,
            )
