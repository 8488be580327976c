"""Feature flag client used by the web workers.

Keeps a local copy of the flag definitions, refreshed in the background from
the flag service, and answers `is_enabled` from memory so a request never
waits on the network. How often each flag is evaluated is sent back
periodically so the flag dashboard can show which flags are still live.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

log = logging.getLogger("flags")


def _bucket(flag_key: str, user_id: str) -> float:
    """A stable number in [0, 100) for this user and flag."""
    digest = hashlib.sha1(f"{flag_key}:{user_id}".encode()).hexdigest()
    return int(digest[:8], 16) / 0xFFFFFFFF * 100


class FlagClient:
    """In-memory flag evaluation with a background refresh thread."""

    def __init__(self, base_url: str, sdk_key: str, refresh_interval: float = 30.0) -> None:
        self._base = base_url.rstrip("/")
        self._key = sdk_key
        self._interval = refresh_interval
        self._flags: dict[str, dict[str, Any]] = {}
        self._version: str | None = None
        self._evaluations: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Load the flags once, then keep them fresh in the background."""
        try:
            self.refresh()
        except (urllib.error.URLError, ValueError) as exc:
            log.warning("initial flag load failed, serving defaults: %s", exc)
        self._thread = threading.Thread(target=self._run, name="flag-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._report_evaluations()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.refresh()
                self._report_evaluations()
            except Exception:
                log.exception("flag refresh failed; keeping version %s", self._version)

    def _request(self, path: str, body: dict | None = None) -> urllib.request.Request:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self._key}", "Content-Type": "application/json"}
        return urllib.request.Request(f"{self._base}{path}", data=data, headers=headers)

    def refresh(self) -> None:
        """Fetch the current flag set and swap it in."""
        req = self._request("/sdk/v1/flags")
        with urllib.request.urlopen(req) as resp:
            payload = json.load(resp)
        if payload.get("version") == self._version:
            return
        self._apply(payload)

    def _apply(self, payload: dict) -> None:
        with threading.Lock():
            self._flags.clear()
            for flag in payload.get("flags", []):
                self._flags[flag["key"]] = flag
            self._version = payload.get("version")
        log.info("loaded %d flags (version %s)", len(self._flags), self._version)

    def is_enabled(self, key: str, user_id: str, attributes: dict | None = None, default: bool = False) -> bool:
        """Whether `key` is on for this user; `default` when the flag is unknown."""
        flag = self._flags.get(key)
        if flag is None:
            return default
        self._evaluations[key] = self._evaluations.get(key, 0) + 1
        if not flag.get("enabled", False):
            return False
        attributes = attributes or {}
        for rule in flag.get("rules", []):
            if attributes.get(rule["attribute"]) in rule.get("values", []):
                return bool(rule.get("serve", True))
        if user_id in flag.get("allow", []):
            return True
        return _bucket(key, user_id) < float(flag.get("rollout", 0))

    def _report_evaluations(self) -> None:
        if not self._evaluations:
            return
        counts = dict(self._evaluations)
        self._evaluations.clear()
        req = self._request("/sdk/v1/evaluations", {"version": self._version, "counts": counts})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
        except urllib.error.URLError as exc:
            log.warning("could not report %d flag evaluations: %s", sum(counts.values()), exc)


_client: FlagClient | None = None


def init(base_url: str, sdk_key: str) -> FlagClient:
    """Create and start the process-wide client (called once from the app factory)."""
    global _client
    if _client is None:
        _client = FlagClient(base_url, sdk_key)
        _client.start()
    return _client


def enabled(key: str, user_id: str, **attributes: Any) -> bool:
    if _client is None:
        return False
    return _client.is_enabled(key, user_id, attributes)
