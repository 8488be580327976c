"""Client for the online feature store used by the ranking and fraud services."""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger("features")

DEFAULT_TIMEOUT = (2.0, 5.0)


@dataclass(frozen=True)
class FeatureView:
    name: str
    version: int
    features: tuple[str, ...]
    ttl_seconds: int


class FeatureStoreError(RuntimeError):
    pass


class FeatureClient:
    def __init__(self, base_url: str, token: str, pool_size: int = 20) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        retry = Retry(total=3, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET"}))
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=retry)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["authorization"] = f"Bearer {token}"
        self._values: dict[tuple[str, str, str], tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self.view = functools.lru_cache(maxsize=128)(self._load_view)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "FeatureClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _get(self, path: str, **params) -> dict:
        resp = self.session.get(f"{self.base_url}{path}", params=params, timeout=DEFAULT_TIMEOUT)
        if resp.status_code == 404:
            raise KeyError(path)
        if not resp.ok:
            raise FeatureStoreError(f"{resp.status_code} {resp.text[:200]}")
        return resp.json()

    def _load_view(self, name: str) -> FeatureView:
        data = self._get(f"/v2/views/{name}")
        return FeatureView(
            name=data["name"],
            version=data["version"],
            features=tuple(f["name"] for f in data["features"]),
            ttl_seconds=data.get("ttl_seconds", 300),
        )

    def online(self, view_name: str, entity_id: str, as_of: str = "latest") -> dict:
        key = (view_name, entity_id, as_of)
        now = time.monotonic()
        with self._lock:
            hit = self._values.get(key)
        if hit and now - hit[0] < self.view(view_name).ttl_seconds:
            return hit[1]
        data = self._get(f"/v2/views/{view_name}/online/{entity_id}", as_of=as_of)
        values = {k: data["values"].get(k) for k in self.view(view_name).features}
        with self._lock:
            self._values[key] = (now, values)
        return values

    def online_many(self, view_name: str, entity_ids: Iterable[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for entity_id in dict.fromkeys(entity_ids):
            try:
                out[entity_id] = self.online(view_name, entity_id)
            except KeyError:
                out[entity_id] = {}
        return out

    def push(self, view_name: str, rows: Mapping[str, Mapping[str, object]]) -> int:
        view = self.view(view_name)
        unknown = {k for row in rows.values() for k in row} - set(view.features)
        if unknown:
            raise ValueError(f"unknown features for {view_name}: {sorted(unknown)}")
        body = {
            "view": view.name,
            "version": view.version,
            "rows": [{"entity_id": eid, "values": dict(vals)} for eid, vals in rows.items()],
        }
        resp = self.session.post(f"{self.base_url}/v2/views/{view_name}/push", json=body)
        if not resp.ok:
            raise FeatureStoreError(f"push failed: {resp.status_code}")
        return resp.json().get("accepted", 0)

    def lookup_batch(self, view_name: str, entity_ids: list[str]) -> dict[str, dict]:
        resp = self.session.post(
            f"{self.base_url}/v2/views/{view_name}/online:batch",
            json={"entity_ids": entity_ids},
            timeout=DEFAULT_TIMEOUT,
        )
        if not resp.ok:
            raise FeatureStoreError(f"batch lookup failed: {resp.status_code}")
        return {r["entity_id"]: r["values"] for r in resp.json()["results"]}


def score_candidates(client: FeatureClient, user_id: str, item_ids: list[str]) -> list[tuple[str, float]]:
    user = client.online("user_profile_v3", user_id)
    items = client.online_many("item_stats_v5", item_ids)
    scored = []
    for item_id in item_ids:
        feats = items.get(item_id, {})
        ctr = float(feats.get("ctr_7d") or 0.0)
        affinity = float(user.get(f"cat_affinity_{feats.get('category', 'none')}") or 0.0)
        scored.append((item_id, 0.7 * ctr + 0.3 * affinity))
    scored.sort(key=lambda x: x[1], reverse=True)
    return scored
