"""Health checker for customer-facing hostnames.

Every minute each monitored hostname is resolved, its TLS certificate expiry is read and
its `/healthz` endpoint is probed. Results are published to the status page API.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx

log = logging.getLogger("dnshealth")

CONCURRENCY = 20
CERT_WARN_DAYS = 14


@dataclass
class HostResult:
    host: str
    address: str | None = None
    cert_days_left: int | None = None
    http_status: int | None = None
    latency_ms: float | None = None
    error: str | None = None

    @property
    def healthy(self) -> bool:
        return (
            self.error is None
            and self.http_status == 200
            and (self.cert_days_left or 0) > CERT_WARN_DAYS
        )


class HealthChecker:
    def __init__(self, hosts: list[str], status_api: str) -> None:
        self.hosts = hosts
        self.status_api = status_api
        self._sem = asyncio.Semaphore(CONCURRENCY)
        self._tls = ssl.create_default_context()

    async def _resolve(self, host: str) -> str:
        return socket.gethostbyname(host)

    async def _cert_days_left(self, host: str, address: str) -> int:
        reader, writer = await asyncio.open_connection(
            address, 443, ssl=self._tls, server_hostname=host
        )
        try:
            cert = writer.get_extra_info("peercert")
        finally:
            writer.close()
            await writer.wait_closed()
        if not cert:
            raise ssl.SSLError(f"{host} presented no certificate")
        expires = datetime.strptime(cert["notAfter"], "%b %d %H:%M:%S %Y %Z")
        return (expires.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)).days

    async def _probe(self, client: httpx.AsyncClient, host: str) -> tuple[int, float]:
        start = time.perf_counter()
        resp = await client.get(f"https://{host}/healthz")
        return resp.status_code, (time.perf_counter() - start) * 1000

    async def check(self, client: httpx.AsyncClient, host: str) -> HostResult:
        result = HostResult(host)
        async with self._sem:
            try:
                result.address = await self._resolve(host)
                result.cert_days_left = await self._cert_days_left(host, result.address)
                result.http_status, result.latency_ms = await self._probe(client, host)
            except (OSError, ssl.SSLError, httpx.HTTPError) as exc:
                result.error = f"{type(exc).__name__}: {exc}"
        return result

    async def run_once(self) -> list[HostResult]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0), follow_redirects=False) as client:
            results = await asyncio.gather(*(self.check(client, h) for h in self.hosts))
            payload = [
                {
                    "host": r.host,
                    "healthy": r.healthy,
                    "cert_days_left": r.cert_days_left,
                    "latency_ms": r.latency_ms,
                    "error": r.error,
                }
                for r in results
            ]
            resp = await client.post(self.status_api, json={"checks": payload})
            resp.raise_for_status()
        unhealthy = [r.host for r in results if not r.healthy]
        if unhealthy:
            log.warning("unhealthy hosts: %s", ", ".join(unhealthy))
        return results

    async def run_forever(self, interval: float = 60.0) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.run_once()
            except httpx.HTTPError as exc:
                log.error("could not publish results: %s", exc)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
