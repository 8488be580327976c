"""Hot-reloading service configuration.

The base configuration lives in a local JSON file managed by the deploy
tooling; an optional remote endpoint supplies per-environment overrides.
A watcher thread polls both and swaps in a new immutable snapshot, then
notifies subscribers (connection pools, feature flags, log levels).
Previous snapshots are kept so an operator can roll back from the admin page.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import requests

log = logging.getLogger("config")

Listener = Callable[[Mapping[str, Any]], None]


def _deep_merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class ConfigStore:
    def __init__(self, path: Path, remote_url: str | None = None, interval: float = 2.0):
        self.path = path
        self.remote_url = remote_url
        self.interval = interval
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._history: list[tuple[float, Mapping[str, Any]]] = []
        self._mtime = 0.0
        self._remote_etag: str | None = None
        self._remote: dict = {}
        self._local: dict = self._read_file()
        self._current: Mapping[str, Any] = MappingProxyType(self._local)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="config-watch", daemon=True)
        self._thread.start()

    def _read_file(self) -> dict:
        with self.path.open() as fh:
            data = json.load(fh)
        self._mtime = self.path.stat().st_mtime
        return data

    def _fetch_remote(self) -> bool:
        if not self.remote_url:
            return False
        headers = {"If-None-Match": self._remote_etag} if self._remote_etag else {}
        resp = requests.get(self.remote_url, headers=headers)
        if resp.status_code == 304:
            return False
        resp.raise_for_status()
        self._remote_etag = resp.headers.get("ETag")
        self._remote = resp.json()
        return True

    def get(self, dotted: str, default: Any = None) -> Any:
        with self._lock:
            node: Any = self._current
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def snapshot(self) -> Mapping[str, Any]:
        with self._lock:
            return self._current

    def subscribe(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def _apply(self, new: dict) -> None:
        frozen = MappingProxyType(new)
        with self._lock:
            self._history.append((time.time(), self._current))
            self._current = frozen
            for listener in self._listeners:
                try:
                    listener(frozen)
                except Exception:
                    log.exception("config listener %r failed", listener)

    def rollback(self) -> None:
        with self._lock:
            if not self._history:
                raise LookupError("no previous configuration")
            _, previous = self._history.pop()
        self._apply(dict(previous))

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                changed = False
                if self.path.stat().st_mtime != self._mtime:
                    self._local = self._read_file()
                    changed = True
                if self._fetch_remote():
                    changed = True
                if changed:
                    self._apply(_deep_merge(self._local, self._remote))
                    log.info("configuration reloaded")
            except (OSError, ValueError, requests.RequestException) as exc:
                log.warning("config reload failed, keeping current: %s", exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval * 2)


_store: ConfigStore | None = None
_store_lock = threading.Lock()


def store() -> ConfigStore:
    global _store
    with _store_lock:
        if _store is None:
            _store = ConfigStore(
                Path(os.environ.get("APP_CONFIG", "/etc/app/config.json")),
                os.environ.get("APP_CONFIG_REMOTE"),
            )
        return _store
