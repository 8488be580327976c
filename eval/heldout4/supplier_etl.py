"""Nightly ETL: download the supplier's product export and load it into the reporting database.

The export is a gzipped CSV (sku, name, category, price, currency, stock). Rows with a bad
price or an unknown currency are counted and skipped; every other row is inserted, or
updates the product already stored under that sku.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

log = logging.getLogger("supplier_etl")

EXPORT_URL = "https://partners.supplier.example.com/exports/products.csv.gz"
CURRENCIES = {"EUR", "USD", "GBP", "CHF"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    sku TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT,
    price_cents INTEGER NOT NULL,
    currency TEXT NOT NULL,
    stock INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


def download_export(url: str, token: str) -> str:
    """Download the export to a temporary file and return its path."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"})
    fd, path = tempfile.mkstemp(prefix="supplier-", suffix=".csv.gz")
    with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request) as resp:
        shutil.copyfileobj(resp, out, length=1 << 20)
    return path


def read_rows(path: str) -> Iterator[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        yield from csv.DictReader(fh)


def clean(row: dict[str, str]) -> dict[str, object] | None:
    """A row ready for the database, or None when it cannot be loaded."""
    sku = (row.get("sku") or "").strip().upper()
    currency = (row.get("currency") or "").strip().upper()
    if not sku or currency not in CURRENCIES:
        return None
    try:
        price = Decimal(row["price"].replace(",", "."))
    except (InvalidOperation, KeyError, AttributeError):
        return None
    if price < 0:
        return None
    stock = row.get("stock", "0").strip()
    return {
        "sku": sku,
        "name": (row.get("name") or sku).strip(),
        "category": (row.get("category") or "").strip() or None,
        "price_cents": int((price * 100).quantize(Decimal("1"))),
        "currency": currency,
        "stock": int(stock) if stock.isdigit() else 0,
    }


def load(conn: sqlite3.Connection, rows: Iterator[dict[str, str]]) -> dict[str, int]:
    conn.execute(SCHEMA)
    known = [r[0] for r in conn.execute("SELECT sku FROM products")]
    stats = {"inserted": 0, "updated": 0, "rejected": 0}
    for row in rows:
        product = clean(row)
        if product is None:
            stats["rejected"] += 1
            continue
        if product["sku"] in known:
            conn.execute(
                "UPDATE products SET name = :name, category = :category, price_cents = :price_cents, "
                "currency = :currency, stock = :stock, updated_at = datetime('now') WHERE sku = :sku",
                product,
            )
            stats["updated"] += 1
        else:
            conn.execute(
                "INSERT INTO products (sku, name, category, price_cents, currency, stock) "
                "VALUES (:sku, :name, :category, :price_cents, :currency, :stock)",
                product,
            )
            known.append(product["sku"])
            stats["inserted"] += 1
        conn.commit()
    return stats


def run(db_path: str, token: str) -> dict[str, int]:
    path = download_export(EXPORT_URL, token)
    conn = sqlite3.connect(db_path)
    try:
        stats = load(conn, read_rows(path))
    finally:
        conn.close()
    os.unlink(path)
    return stats


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    db_path = sys.argv[1] if len(sys.argv) > 1 else "reporting.sqlite3"
    stats = run(db_path, os.environ["SUPPLIER_TOKEN"])
    log.info("products: %(inserted)d inserted, %(updated)d updated, %(rejected)d rejected", stats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
