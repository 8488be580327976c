"""An in-process TTL cache in front of the product catalogue service."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

_MISSING = object()


class TTLCache:
    """Caches values for `ttl` seconds; `hits` and `misses` are kept for the metrics page."""

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._data: dict[Hashable, tuple[float, Any]] = {}
        self._recent: list[Hashable] = []
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _touch(self, key: Hashable) -> None:
        if key in self._recent:
            self._recent.remove(key)
        self._recent.append(key)

    def get(self, key: Hashable, default: Any = None) -> Any:
        self._lock.acquire()
        try:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return default
            expires, value = entry
            if expires < self.clock():
                del self._data[key]
                self.misses += 1
                return default
            self.hits += 1
            self._touch(key)
            return value
        finally:
            self._lock.release()

    def set(self, key: Hashable, value: Any, ttl: float | None = None) -> None:
        with self._lock:
            self._data[key] = (self.clock() + (self.ttl if ttl is None else ttl), value)
            self._touch(key)

    def get_or_load(self, key: Hashable, loader: Callable[[], Any]) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = loader()
            self.set(key, value)
        return value

    def invalidate(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def most_recent(self, n: int = 10) -> list[Hashable]:
        with self._lock:
            return list(reversed(self._recent[-n:]))

    def __len__(self) -> int:
        return len(self._data)


class CatalogueClient:
    def __init__(self, fetch: Callable[[str], dict], cache: TTLCache | None = None) -> None:
        self._fetch = fetch
        self.cache = cache or TTLCache(ttl=120)

    def product(self, sku: str) -> dict:
        return self.cache.get_or_load(("product", sku), lambda: self._fetch(f"/products/{sku}"))

    def category(self, slug: str) -> dict:
        return self.cache.get_or_load(("category", slug), lambda: self._fetch(f"/categories/{slug}"))

    def hit_rate(self) -> float:
        total = self.cache.hits + self.cache.misses
        return self.cache.hits / total if total else 0.0
