"""Geocode a CSV of customer addresses with the maps provider's HTTP API.

Usage: geocode_batch.py addresses.csv out.csv

Results are cached in a JSON file keyed by the normalised address, so a batch that was
interrupted can be re-run and only asks for the addresses not resolved yet. The provider
allows five requests in flight per key and answers 429 with a Retry-After when we exceed it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

log = logging.getLogger("geocode")

API_URL = "https://geocode.example-maps.com/v1/search"
MAX_IN_FLIGHT = 5
CACHE_PATH = Path(os.environ.get("GEOCODE_CACHE", "geocode-cache.json"))


@dataclass
class Location:
    lat: float | None
    lon: float | None
    confidence: float
    matched: str


def normalise(address: str) -> str:
    return " ".join(address.lower().replace(",", " ").split())


class Geocoder:
    """Resolves addresses to coordinates, with a persistent on-disk cache."""

    def __init__(self, api_key: str, cache_path: Path = CACHE_PATH) -> None:
        self.api_key = api_key
        self.cache_path = cache_path
        self.cache: dict[str, dict] = self._load_cache()

    def _load_cache(self) -> dict[str, dict]:
        if not self.cache_path.exists():
            return {}
        with self.cache_path.open(encoding="utf-8") as fh:
            return json.load(fh)

    def _save_cache(self) -> None:
        tmp = self.cache_path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(self.cache, fh)
        os.replace(tmp, self.cache_path)

    async def _request(self, client: httpx.AsyncClient, address: str) -> dict:
        while True:
            resp = await client.get(API_URL, params={"q": address, "key": self.api_key, "limit": 1})
            if resp.status_code == 429 or resp.status_code >= 500:
                delay = float(resp.headers.get("Retry-After", "1"))
                log.info("provider answered %s, waiting %.1f s", resp.status_code, delay)
                await asyncio.sleep(delay)
                continue
            resp.raise_for_status()
            return resp.json()

    async def geocode(self, client: httpx.AsyncClient, address: str) -> Location:
        key = normalise(address)
        if key not in self.cache:
            in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
            async with in_flight:
                data = await self._request(client, address)
            features = data.get("features") or []
            if features:
                best = features[0]
                lon, lat = best["geometry"]["coordinates"]
                self.cache[key] = asdict(Location(lat, lon, best["properties"]["confidence"], best["properties"]["label"]))
            else:
                self.cache[key] = asdict(Location(None, None, 0.0, ""))
            self._save_cache()
        return Location(**self.cache[key])

    async def geocode_all(self, addresses: list[str]) -> list[Location]:
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as client:
            return await asyncio.gather(*(self.geocode(client, a) for a in addresses))


def read_addresses(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_results(path: Path, rows: list[dict[str, str]], locations: list[Location]) -> None:
    fields = list(rows[0].keys()) + ["lat", "lon", "confidence", "matched"] if rows else []
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row, loc in zip(rows, locations):
            writer.writerow({**row, **asdict(loc)})


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    rows = read_addresses(Path(sys.argv[1]))
    geocoder = Geocoder(os.environ["GEOCODE_API_KEY"])
    addresses = [f"{r['street']}, {r['postcode']} {r['city']}, {r.get('country', '')}" for r in rows]
    locations = asyncio.run(geocoder.geocode_all(addresses))
    write_results(Path(sys.argv[2]), rows, locations)
    missing = sum(1 for loc in locations if loc.lat is None)
    log.info("geocoded %d addresses, %d without a match", len(locations), missing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
