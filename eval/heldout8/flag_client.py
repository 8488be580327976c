"""In-process client for the feature-flag service.

Flags are fetched once at start-up and refreshed by a background thread; every
evaluation is local. Usage counts are flushed to the service periodically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import Any

import httpx

log = logging.getLogger("flags")

OPERATORS = ("eq", "neq", "in", "not_in", "gte", "lte")


class FlagClient:
    def __init__(self, base_url: str, sdk_key: str, refresh_every: float = 30.0) -> None:
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {sdk_key}", "User-Agent": "flags-py/2.3"},
            timeout=5.0,
        )
        self._refresh_every = refresh_every
        self._flags: dict[str, str] = {}
        self._etag: str | None = None
        self._stop = threading.Event()
        self._counts_lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._thread = threading.Thread(target=self._poll, name="flag-refresh", daemon=True)

    def start(self) -> None:
        try:
            self._refresh()
        except httpx.HTTPError as exc:
            log.error("initial flag fetch failed, serving defaults: %s", exc)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush_counts()
        self._http.close()

    def _refresh(self) -> None:
        headers = {"If-None-Match": self._etag} if self._etag else {}
        resp = self._http.get("/v1/flags", headers=headers)
        if resp.status_code == 304:
            return
        resp.raise_for_status()
        self._etag = resp.headers.get("ETag")
        self._flags.clear()
        for flag in resp.json()["flags"]:
            self._flags[flag["key"]] = json.dumps(flag)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh()
            except httpx.HTTPError as exc:
                log.warning("flag refresh failed: %s", exc)
                continue
            self._stop.wait(self._refresh_every)

    @staticmethod
    def _bucket(flag_key: str, user_key: str) -> float:
        digest = hashlib.sha1(f"{flag_key}:{user_key}".encode()).hexdigest()
        return int(digest[:8], 16) / 0xFFFFFFFF * 100

    @staticmethod
    def _matches(clause: dict, attrs: dict[str, Any]) -> bool:
        op = clause.get("op")
        if op not in OPERATORS:
            return False
        value = attrs.get(clause["attr"])
        target = clause.get("value")
        if op == "eq":
            return value == target
        if op == "neq":
            return value != target
        if op == "in":
            return value in target
        if op == "not_in":
            return value not in target
        if value is None:
            return False
        return value >= target if op == "gte" else value <= target

    def is_enabled(self, key: str, user_key: str, attrs: dict[str, Any] | None = None, default: bool = False) -> bool:
        raw = self._flags.get(key)
        if raw is None:
            return default
        flag = json.loads(raw)
        with self._counts_lock:
            self._counts[key] = self._counts.get(key, 0) + 1
        if not flag.get("enabled", False):
            return False
        attrs = attrs or {}
        for rule in flag.get("rules", []):
            if all(self._matches(c, attrs) for c in rule.get("clauses", [])):
                return self._bucket(key, user_key) < rule.get("rollout", 100)
        return self._bucket(key, user_key) < flag.get("rollout", 0)

    def variant(self, key: str, user_key: str, default: str = "control") -> str:
        raw = self._flags.get(key)
        if raw is None:
            return default
        variants = json.loads(raw).get("variants") or []
        if not variants:
            return default
        point, acc = self._bucket(key + ":variant", user_key), 0.0
        for v in variants:
            acc += v.get("weight", 0)
            if point < acc:
                return v["name"]
        return variants[-1]["name"]

    def flush_counts(self) -> None:
        with self._counts_lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return
        try:
            self._http.post("/v1/usage", json={"counts": counts}).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("dropping %d usage counts: %s", sum(counts.values()), exc)
