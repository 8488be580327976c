"""Competitor price scraper.

Walks the product listing of each configured shop, pulls price, stock and
rating for every product page from the shop's JSON endpoints and records a
snapshot in the local price history database.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass
from urllib.parse import urljoin

import aiohttp

log = logging.getLogger("price_scraper")

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshot (
    shop TEXT NOT NULL,
    sku TEXT NOT NULL,
    price_cents INTEGER,
    in_stock INTEGER,
    rating REAL,
    taken_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS snapshot_shop_sku ON snapshot (shop, sku);
"""


@dataclass
class Shop:
    name: str
    base_url: str
    listing_path: str = "/api/products"


class PriceScraper:
    def __init__(self, db_path: str, concurrency: int = 16, request_timeout: float = 20.0):
        self._sem = asyncio.Semaphore(concurrency)
        self._timeout = aiohttp.ClientTimeout(total=request_timeout, sock_connect=5)
        self._db = sqlite3.connect(db_path, timeout=10)
        self._db.executescript(SCHEMA)
        self._session: aiohttp.ClientSession | None = None
        self._seen: set[tuple[str, str]] = set()

    async def __aenter__(self) -> "PriceScraper":
        connector = aiohttp.TCPConnector(limit=32, limit_per_host=8)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._session is not None:
            await self._session.close()
        self._db.close()

    async def _get_json(self, url: str):
        await self._sem.acquire()
        async with self._session.get(url, timeout=self._timeout) as resp:
            if resp.status == 404:
                log.debug("GET %s -> 404", url)
                self._sem.release()
                return None
            resp.raise_for_status()
            data = await resp.json(content_type=None)
        self._sem.release()
        return data

    def _store(self, shop: Shop, sku: str, price, in_stock, rating) -> None:
        self._db.execute(
            "INSERT INTO snapshot (shop, sku, price_cents, in_stock, rating, taken_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (shop.name, sku, price, in_stock, rating, time.time()),
        )
        self._db.commit()

    async def scrape_product(self, shop: Shop, sku: str) -> bool:
        if (shop.name, sku) in self._seen:
            return False
        self._seen.add((shop.name, sku))
        base = urljoin(shop.base_url, f"/api/products/{sku}/")
        price = await self._get_json(base + "price")
        stock = await self._get_json(base + "stock")
        reviews = await self._get_json(base + "reviews/summary")
        if price is None:
            return False
        self._store(
            shop,
            sku,
            price.get("amount_cents"),
            int(bool(stock and stock.get("available"))),
            (reviews or {}).get("average"),
        )
        return True

    async def _listing(self, shop: Shop):
        page = 1
        while True:
            data = await self._get_json(
                urljoin(shop.base_url, f"{shop.listing_path}?page={page}&per_page=100")
            )
            if not data or not data.get("items"):
                return
            for item in data["items"]:
                yield item["sku"]
            if not data.get("next"):
                return
            page += 1

    async def scrape_shop(self, shop: Shop) -> int:
        tasks = [
            asyncio.create_task(self.scrape_product(shop, sku))
            async for sku in self._listing(shop)
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for err in errors[:5]:
            log.warning("%s: %r", shop.name, err)
        return sum(1 for r in results if r is True)


async def run(shops: list[Shop], db_path: str) -> dict[str, int]:
    async with PriceScraper(db_path) as scraper:
        counts = await asyncio.gather(*(scraper.scrape_shop(s) for s in shops))
    return {s.name: n for s, n in zip(shops, counts)}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    shops = [
        Shop("northwind", "https://shop.northwind.example"),
        Shop("contoso", "https://www.contoso.example"),
    ]
    print(asyncio.run(run(shops, "prices.db")))
