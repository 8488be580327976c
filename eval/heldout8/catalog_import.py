"""Nightly import of supplier product catalogues (CSV) into the catalogue database.

Suppliers drop files named ``supplier-<id>-<date>.csv`` into the inbox; each file
is imported in one transaction and renamed to ``.done`` once committed.
"""

from __future__ import annotations

import csv
import logging
import os
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from psycopg2.pool import ThreadedConnectionPool

log = logging.getLogger("catalog_import")

REQUIRED_COLUMNS = ("sku", "name", "brand", "price")
BATCH_SIZE = 500

POOL = ThreadedConnectionPool(
    1, 8, dsn=os.environ.get("CATALOG_DSN", "postgresql://catalog@db.internal/catalog"), connect_timeout=10
)


class RowError(ValueError):
    pass


def parse_price(raw: str) -> Decimal:
    try:
        price = Decimal(raw.replace(",", "").strip())
    except InvalidOperation as exc:
        raise RowError(f"bad price {raw!r}") from exc
    if price < 0:
        raise RowError(f"negative price {raw!r}")
    return price.quantize(Decimal("0.01"))


def brand_id(cur, name: str) -> int:
    cur.execute("SELECT id FROM brands WHERE lower(name) = lower(%s)", (name,))
    row = cur.fetchone()
    if row:
        return row[0]
    cur.execute("INSERT INTO brands (name) VALUES (%s) RETURNING id", (name,))
    return cur.fetchone()[0]


def existing_skus(cur, supplier_id: int) -> list[str]:
    cur.execute("SELECT sku FROM products WHERE supplier_id = %s", (supplier_id,))
    return [r[0] for r in cur.fetchall()]


def flush(cur, inserts: list[tuple], updates: list[tuple]) -> None:
    if inserts:
        cur.executemany(
            "INSERT INTO products (supplier_id, sku, name, brand_id, price) VALUES (%s, %s, %s, %s, %s)",
            inserts,
        )
    if updates:
        cur.executemany(
            "UPDATE products SET name = %s, brand_id = %s, price = %s WHERE supplier_id = %s AND sku = %s",
            updates,
        )
    inserts.clear()
    updates.clear()


def import_file(path: Path, supplier_id: int) -> dict[str, int]:
    conn = POOL.getconn()
    cur = conn.cursor()
    known = existing_skus(cur, supplier_id)
    stats = {"inserted": 0, "updated": 0, "rejected": 0}
    inserts: list[tuple] = []
    updates: list[tuple] = []

    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise RowError(f"{path.name}: missing columns {', '.join(missing)}")

        for lineno, row in enumerate(reader, start=2):
            try:
                price = parse_price(row["price"])
            except RowError as exc:
                log.warning("%s:%d: %s", path.name, lineno, exc)
                stats["rejected"] += 1
                continue
            sku = row["sku"].strip()
            name = row["name"].strip()
            bid = brand_id(cur, row["brand"].strip())
            if sku in known:
                updates.append((name, bid, price, supplier_id, sku))
                stats["updated"] += 1
            else:
                inserts.append((supplier_id, sku, name, bid, price))
                known.append(sku)
                stats["inserted"] += 1
            if len(inserts) + len(updates) >= BATCH_SIZE:
                flush(cur, inserts, updates)

    flush(cur, inserts, updates)
    conn.commit()
    cur.close()
    POOL.putconn(conn)
    return stats


def main(inbox: Path) -> int:
    failures = 0
    for path in sorted(inbox.glob("supplier-*.csv")):
        try:
            supplier_id = int(path.stem.split("-")[1])
        except (IndexError, ValueError):
            log.error("skipping %s: cannot tell the supplier", path.name)
            continue
        try:
            stats = import_file(path, supplier_id)
        except Exception:
            log.exception("import of %s failed", path.name)
            failures += 1
            continue
        log.info(
            "%s: %d inserted, %d updated, %d rejected",
            path.name, stats["inserted"], stats["updated"], stats["rejected"],
        )
        path.rename(path.with_suffix(".done"))
    return 1 if failures else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "/srv/catalog/inbox")))
