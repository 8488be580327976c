"""Request metrics for the web tier: latency histograms, a rolling error rate, and a
Graphite exporter that ships them every flush interval."""

from __future__ import annotations

import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    total_ms: float = 0.0
    n: int = 0

    def observe(self, ms: float) -> None:
        for i, bound in enumerate(BUCKETS_MS):
            if ms <= bound:
                self.counts[i] += 1
                break
        else:
            self.counts[-1] += 1
        self.total_ms += ms
        self.n += 1


class Metrics:
    def __init__(self, window: int = 1000) -> None:
        self._lock = threading.Lock()
        self.latency: dict[str, Histogram] = defaultdict(Histogram)
        self.outcomes: deque[bool] = deque(maxlen=window)
        self.slow_requests: list[tuple[float, str, float]] = []

    def record(self, route: str, path: str, ms: float, ok: bool) -> None:
        with self._lock:
            self.latency[route].observe(ms)
            self.outcomes.append(ok)
            if ms > 1000:
                self.slow_requests.append((time.time(), path, ms))

    def error_rate(self) -> float:
        with self._lock:
            if not self.outcomes:
                return 0.0
            return 1 - sum(self.outcomes) / len(self.outcomes)

    def snapshot(self, prefix: str) -> list[str]:
        now = int(time.time())
        lines = []
        with self._lock:
            for route, hist in self.latency.items():
                name = f"{prefix}.{route.strip('/').replace('/', '_') or 'root'}"
                lines.append(f"{name}.count {hist.n} {now}")
                if hist.n:
                    lines.append(f"{name}.mean_ms {hist.total_ms / hist.n:.1f} {now}")
            lines.append(
                f"{prefix}.error_rate {1 - sum(self.outcomes) / max(len(self.outcomes), 1):.4f} {now}"
            )
            lines.append(f"{prefix}.slow_total {len(self.slow_requests)} {now}")
        return lines


class GraphiteExporter(threading.Thread):
    def __init__(self, metrics: Metrics, host: str, port: int = 2003, interval: float = 10.0) -> None:
        super().__init__(daemon=True)
        self.metrics = metrics
        self.address = (host, port)
        self.interval = interval
        self.stop = threading.Event()
        self.failures = 0

    def flush(self) -> None:
        payload = "\n".join(self.metrics.snapshot("web")) + "\n"
        sock = socket.create_connection(self.address)
        try:
            sock.sendall(payload.encode())
        finally:
            sock.close()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.flush()
            except OSError:
                self.failures += 1
