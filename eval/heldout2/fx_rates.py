"""Foreign-exchange rate book for the checkout service.

A background thread refreshes rates from the treasury provider every few
minutes; request threads call `convert` and `cross_table` to price carts and
render the currency picker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import requests

log = logging.getLogger("checkout.fx")

FALLBACK_URL = "https://api.frankfurter.app/latest"
QUANT = Decimal("0.01")


@dataclass(frozen=True)
class Rate:
    code: str
    per_base: Decimal
    provider: str


class StaleRatesError(RuntimeError):
    pass


class RateBook:
    def __init__(self, api_url: str, api_key: str, base: str = "EUR", interval: float = 300.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.base = base
        self.interval = interval
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {api_key}", "Accept": "application/json"})
        self._lock = threading.Lock()
        self._rates: list[Rate] = []
        self._updated_at = 0.0
        self._history: deque[tuple[float, int]] = deque(maxlen=288)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fx-refresh", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _fetch_primary(self) -> list[Rate]:
        resp = self._session.get(f"{self.api_url}/v2/rates", params={"base": self.base})
        resp.raise_for_status()
        return [Rate(item["currency"], Decimal(item["mid"]), "treasury") for item in resp.json()["data"]]

    def _fetch_fallback(self) -> list[Rate]:
        resp = requests.get(FALLBACK_URL, params={"from": self.base}, timeout=5)
        resp.raise_for_status()
        return [Rate(code, Decimal(str(v)), "frankfurter") for code, v in resp.json()["rates"].items()]

    def refresh(self) -> None:
        with self._lock:
            try:
                rates = self._fetch_primary()
            except requests.RequestException as exc:
                log.warning("primary fx provider failed (%s), using fallback", exc)
                rates = self._fetch_fallback()
            rates.append(Rate(self.base, Decimal(1), "identity"))
            self._rates = rates
            self._updated_at = time.time()
            self._history.append((self._updated_at, len(rates)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:
                log.exception("fx refresh failed")
            self._stop.wait(self.interval)

    def _snapshot(self) -> tuple[list[Rate], float]:
        with self._lock:
            return self._rates, self._updated_at

    @staticmethod
    def _rate_for(rates: list[Rate], code: str) -> Decimal:
        for rate in rates:
            if rate.code == code:
                return rate.per_base
        raise KeyError(code)

    def convert(self, amount: Decimal, src: str, dst: str, max_age: float = 3600.0) -> Decimal:
        rates, updated = self._snapshot()
        if time.time() - updated > max_age:
            raise StaleRatesError(f"rates are {time.time() - updated:.0f}s old")
        value = amount / self._rate_for(rates, src) * self._rate_for(rates, dst)
        return value.quantize(QUANT, rounding=ROUND_HALF_EVEN)

    def cross_table(self, codes: list[str] | None = None) -> dict[str, dict[str, Decimal]]:
        rates, _ = self._snapshot()
        codes = codes or [r.code for r in rates]
        table: dict[str, dict[str, Decimal]] = {}
        for src in codes:
            row = {}
            for dst in codes:
                cross = self._rate_for(rates, dst) / self._rate_for(rates, src)
                row[dst] = cross.quantize(Decimal("0.000001"))
            table[src] = row
        return table

    def health(self) -> dict[str, object]:
        rates, updated = self._snapshot()
        return {
            "currencies": len(rates),
            "age_seconds": round(time.time() - updated, 1),
            "recent_refreshes": list(self._history)[-5:],
        }
