"""Pipeline step: load the daily orders extract into the warehouse.

The upstream job drops `orders-YYYYMMDD.csv.zst` files; this step
decompresses them, normalises the rows, drops duplicate order lines and
appends them to `fact_order_line`, upserting the SKU dimension as it goes.
"""
from __future__ import annotations

import csv
import io
import logging
import re
import sqlite3
import subprocess
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator

log = logging.getLogger("orders_loader")

REQUIRED = ("order_id", "line_no", "sku", "qty", "unit_price", "currency", "ordered_at")


class BadRow(ValueError):
    pass


def decompressed_rows(path: Path) -> Iterator[dict]:
    proc = subprocess.Popen(["zstd", "-dc", str(path)], stdout=subprocess.PIPE)
    reader = csv.DictReader(io.TextIOWrapper(proc.stdout, encoding="utf-8", newline=""))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise BadRow(f"{path.name}: missing columns {missing}")
    for row in reader:
        yield row
    if proc.wait() != 0:
        raise RuntimeError(f"zstd failed on {path}")


def normalise(row: dict) -> dict:
    sku = row["sku"].strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{3,12}(-[A-Z0-9]{1,6})?", sku):
        raise BadRow(f"bad sku {row['sku']!r}")
    ordered = datetime.fromisoformat(row["ordered_at"]).astimezone(timezone.utc)
    return {
        "order_id": row["order_id"].strip(),
        "line_no": int(row["line_no"]),
        "sku": sku,
        "qty": int(row["qty"]),
        "unit_price": str(Decimal(row["unit_price"]).quantize(Decimal("0.01"))),
        "currency": row["currency"].upper(),
        "ordered_at": ordered.isoformat(),
    }


def known_categories(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT sku, category FROM dim_sku"))


def load_file(conn: sqlite3.Connection, path: Path, max_bad: int = 100) -> int:
    categories = known_categories(conn)
    kept: list[dict] = []
    bad = 0
    for raw in decompressed_rows(path):
        try:
            row = normalise(raw)
        except (BadRow, ValueError, KeyError) as exc:
            bad += 1
            if bad > max_bad:
                raise BadRow(f"{path.name}: more than {max_bad} bad rows, last: {exc}")
            continue
        if (row["order_id"], row["line_no"]) in [(k["order_id"], k["line_no"]) for k in kept]:
            continue
        row["category"] = categories.get(row["sku"], "unknown")
        kept.append(row)

    new_skus = sorted({r["sku"] for r in kept} - categories.keys())
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO dim_sku (sku, category) VALUES (?, 'unknown')",
            [(s,) for s in new_skus],
        )
    for row in kept:
        conn.execute(
            "INSERT INTO fact_order_line (order_id, line_no, sku, category, qty, unit_price,"
            " currency, ordered_at) VALUES (:order_id, :line_no, :sku, :category, :qty,"
            " :unit_price, :currency, :ordered_at)",
            row,
        )
        conn.commit()
    log.info("%s: %d lines loaded, %d bad", path.name, len(kept), bad)
    return len(kept)


def run(drop_dir: Path, db_path: Path) -> int:
    conn = sqlite3.connect(db_path, timeout=30)
    total = 0
    try:
        for path in sorted(drop_dir.glob("orders-*.csv.zst")):
            done = path.with_suffix(".loaded")
            if done.exists():
                continue
            try:
                total += load_file(conn, path)
            except BadRow as exc:
                log.error("skipping %s: %s", path.name, exc)
                continue
            done.touch()
    finally:
        conn.close()
    return total
