"""Feature-flag client.

Pulls the flag document from the flag service every `refresh_seconds` on a background
thread and evaluates flags locally for each request: percentage rollouts are bucketed by a
stable hash of the user id, and targeting rules match user attributes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import requests

log = logging.getLogger("flags")

BUCKETS = 10_000


@dataclass
class EvalContext:
    user_id: str
    country: str = ""
    plan: str = "free"
    attributes: dict[str, str] = field(default_factory=dict)


class FlagClient:
    def __init__(self, base_url: str, sdk_key: str, refresh_seconds: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.refresh_seconds = refresh_seconds
        self._http = requests.Session()
        self._http.headers["Authorization"] = f"Bearer {sdk_key}"
        self._lock = threading.Lock()
        self._document = "{}"
        self._etag: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flag-refresh", daemon=True)

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.refresh_seconds + 1)
        self._http.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.refresh()
            except requests.RequestException as exc:
                log.warning("flag refresh failed, keeping last document: %s", exc)

    def refresh(self) -> None:
        headers = {"If-None-Match": self._etag} if self._etag else {}
        with self._lock:
            resp = self._http.get(f"{self.base_url}/v2/flags", headers=headers)
            if resp.status_code == 304:
                return
            resp.raise_for_status()
            self._document = resp.text
            self._etag = resp.headers.get("ETag")
        log.info("flag document refreshed (etag=%s)", self._etag)

    def _flags(self) -> dict[str, Any]:
        with self._lock:
            raw = self._document
        return json.loads(raw).get("flags", {})

    @staticmethod
    def _bucket(flag_key: str, user_id: str) -> int:
        digest = hashlib.sha1(f"{flag_key}:{user_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % BUCKETS

    @staticmethod
    def _rule_matches(rule: dict[str, Any], ctx: EvalContext) -> bool:
        attr = rule.get("attribute")
        values = rule.get("values", [])
        if attr == "country":
            actual = ctx.country
        elif attr == "plan":
            actual = ctx.plan
        else:
            actual = ctx.attributes.get(attr or "", "")
        if rule.get("op") == "not_in":
            return actual not in values
        return actual in values

    def is_enabled(self, key: str, ctx: EvalContext, default: bool = False) -> bool:
        flag = self._flags().get(key)
        if flag is None or not flag.get("on", False):
            return default if flag is None else False
        for rule in flag.get("rules", []):
            if self._rule_matches(rule, ctx):
                return bool(rule.get("serve", True))
        rollout = int(flag.get("rollout_basis_points", BUCKETS))
        return self._bucket(key, ctx.user_id) < rollout

    def variant(self, key: str, ctx: EvalContext) -> str | None:
        flag = self._flags().get(key)
        if not flag or not flag.get("variants"):
            return None
        point = self._bucket(key + ":variant", ctx.user_id)
        upper = 0
        for name, weight in flag["variants"].items():
            upper += int(weight)
            if point < upper:
                return name
        return None

    def evaluate_all(self, ctx: EvalContext) -> dict[str, bool]:
        """All flags for one user, for bootstrapping the front end."""
        return {key: self.is_enabled(key, ctx) for key in self._flags()}
