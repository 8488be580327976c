"""Nightly order archiver.

Moves orders that were closed more than ARCHIVE_AFTER_DAYS ago out of each
regional shop database into gzip'd JSON-lines files (one per region and
night) on the archive volume, then deletes them from the live tables. Run
from cron at 02:30; each region is archived in its own transaction so a
failure in one region leaves the others done.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2
import psycopg2.extras

log = logging.getLogger("order-archiver")

ARCHIVE_AFTER_DAYS = 400
REGIONS = {
    "eu": os.environ.get("SHOP_DSN_EU", "dbname=shop_eu host=db-eu"),
    "us": os.environ.get("SHOP_DSN_US", "dbname=shop_us host=db-us"),
    "apac": os.environ.get("SHOP_DSN_APAC", "dbname=shop_apac host=db-apac"),
}

ORDERS_SQL = """
    SELECT id, customer_id, status, currency, total_cents, created_at, closed_at, shipping_address
    FROM orders
    WHERE status IN ('delivered', 'cancelled', 'refunded') AND closed_at < %s
    ORDER BY id
"""
LINES_SQL = "SELECT sku, quantity, unit_price_cents, tax_cents FROM order_lines WHERE order_id = %s ORDER BY id"


def _archive_path(root: Path, region: str, cutoff: datetime) -> Path:
    return root / region / f"orders-{cutoff:%Y%m%d}.jsonl.gz"


def archive_region(region: str, dsn: str, root: Path, cutoff: datetime, dry_run: bool = False) -> int:
    """Archive and delete one region's old orders; returns how many were archived."""
    conn = psycopg2.connect(dsn, connect_timeout=10, application_name="order-archiver")
    cur = conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor)
    cur.execute(ORDERS_SQL, (cutoff,))
    orders = cur.fetchall()
    if not orders:
        log.info("%s: nothing closed before %s", region, cutoff.date())
        return 0

    target = _archive_path(root, region, cutoff)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    try:
        with gzip.open(partial, "wt", encoding="utf-8") as fh:
            for order in orders:
                cur.execute(LINES_SQL, (order["id"],))
                order["lines"] = cur.fetchall()
                fh.write(json.dumps(order, default=str, separators=(",", ":")) + "\n")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise

    ids = [order["id"] for order in orders]
    if dry_run:
        log.info("%s: would delete %d orders (archive at %s)", region, len(ids), target)
        conn.rollback()
    else:
        cur.execute("DELETE FROM order_lines WHERE order_id = ANY(%s)", (ids,))
        cur.execute("DELETE FROM orders WHERE id = ANY(%s)", (ids,))
        conn.commit()
        log.info("%s: archived and deleted %d orders into %s", region, len(ids), target)
    cur.close()
    conn.close()
    return len(ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/mnt/archive/orders"))
    parser.add_argument("--region", choices=sorted(REGIONS), action="append")
    parser.add_argument("--days", type=int, default=ARCHIVE_AFTER_DAYS)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")

    cutoff = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=args.days)
    failed = []
    total = 0
    for region in args.region or sorted(REGIONS):
        try:
            total += archive_region(region, REGIONS[region], args.root, cutoff, args.dry_run)
        except (psycopg2.Error, OSError) as exc:
            log.error("%s: archiving failed: %s", region, exc)
            failed.append(region)
    log.info("archived %d orders; failed regions: %s", total, ", ".join(failed) or "none")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
