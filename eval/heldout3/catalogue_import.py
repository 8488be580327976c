"""Nightly product catalogue import.

The merchandising system drops one full catalogue export per region (all
active SKUs, a few million rows each) as CSV files on the shared volume
every night. This job validates each file and upserts it into the
storefront database; a rejected file does not stop the other regions.
"""
from __future__ import annotations

import csv
import logging
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

import psycopg

log = logging.getLogger("catalogue_import")

BATCH_SIZE = 1000
REQUIRED = ("sku", "title", "price", "currency", "category", "supplier_code")

UPSERT = """
INSERT INTO products (sku, title, price, currency, category_id, supplier_id, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, now())
ON CONFLICT (sku) DO UPDATE SET
    title = EXCLUDED.title,
    price = EXCLUDED.price,
    currency = EXCLUDED.currency,
    category_id = EXCLUDED.category_id,
    supplier_id = EXCLUDED.supplier_id,
    updated_at = now()
"""


class ImportRejected(Exception):
    pass


def parse_price(raw: str, line_no: int) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ImportRejected(f"line {line_no}: bad price {raw!r}") from None
    if value < 0:
        raise ImportRejected(f"line {line_no}: negative price")
    return value.quantize(Decimal("0.01"))


class CatalogueImporter:
    def __init__(self, dsn: str):
        self.dsn = dsn
        self._categories: dict[str, int] = {}

    def _category_id(self, cur: psycopg.Cursor, name: str) -> int:
        cached = self._categories.get(name)
        if cached is not None:
            return cached
        cur.execute(
            "INSERT INTO categories (name) VALUES (%s) "
            "ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
            (name,),
        )
        self._categories[name] = cur.fetchone()[0]
        return self._categories[name]

    def _supplier_id(self, cur: psycopg.Cursor, code: str, line_no: int) -> int:
        cur.execute("SELECT id FROM suppliers WHERE code = %s AND active", (code,))
        row = cur.fetchone()
        if row is None:
            raise ImportRejected(f"line {line_no}: unknown supplier {code!r}")
        return row[0]

    def load_rows(self, path: Path) -> list[dict[str, str]]:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ImportRejected(f"missing columns: {', '.join(missing)}")
            return list(reader)

    def run(self, path: Path) -> int:
        rows = self.load_rows(path)
        log.info("%s: %d rows", path.name, len(rows))
        conn = psycopg.connect(self.dsn, connect_timeout=10, application_name="catalogue-import")
        written = 0
        with conn.transaction():
            with conn.cursor() as cur:
                batch: list[tuple] = []
                for line_no, row in enumerate(rows, start=2):
                    batch.append(
                        (
                            row["sku"].strip(),
                            row["title"].strip(),
                            parse_price(row["price"], line_no),
                            row["currency"].upper(),
                            self._category_id(cur, row["category"].strip()),
                            self._supplier_id(cur, row["supplier_code"].strip(), line_no),
                        )
                    )
                    if len(batch) >= BATCH_SIZE:
                        cur.executemany(UPSERT, batch)
                        written += len(batch)
                        batch.clear()
                if batch:
                    cur.executemany(UPSERT, batch)
                    written += len(batch)
        conn.close()
        return written


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    export_dir = Path(os.environ.get("CATALOGUE_EXPORT_DIR", "/mnt/merch/export"))
    importer = CatalogueImporter(os.environ["STOREFRONT_DSN"])
    failures = 0
    for export in sorted(export_dir.glob("catalogue-*.csv")):
        try:
            written = importer.run(export)
        except ImportRejected as exc:
            log.error("%s rejected, nothing written: %s", export.name, exc)
            failures += 1
            continue
        log.info("%s: upserted %d products", export.name, written)
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
