"""Nightly ETL: reads exported order CSVs, normalises them and loads them into the warehouse."""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y")
REQUIRED = ("order_id", "sku", "quantity", "price", "ordered_at")


class RejectedRow(Exception):
    pass


def parse_date(text: str) -> str:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    raise RejectedRow(f"bad date {text!r}")


def normalise(row: dict[str, str], sku_rules: dict[str, str]) -> dict:
    missing = [key for key in REQUIRED if not row.get(key)]
    if missing:
        raise RejectedRow(f"missing {', '.join(missing)}")
    sku = row["sku"].strip().upper()
    for pattern, replacement in sku_rules.items():
        sku = re.compile(pattern).sub(replacement, sku)
    return {
        "order_id": int(row["order_id"]),
        "sku": sku,
        "quantity": int(row["quantity"]),
        "price_cents": round(float(row["price"]) * 100),
        "ordered_at": parse_date(row["ordered_at"]),
    }


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def transform(paths: Iterable[Path], sku_rules: dict[str, str]) -> tuple[list[dict], list[str]]:
    good, rejects = [], []
    for path in paths:
        for line_no, row in enumerate(read_rows(path), start=2):
            try:
                good.append(normalise(row, sku_rules))
            except (RejectedRow, ValueError) as exc:
                rejects.append(f"{path.name}:{line_no}: {exc}")
    return good, rejects


def write_batch(out_dir: Path, batch_id: str, rows: list[dict]) -> Path:
    target = out_dir / f"orders-{batch_id}.jsonl"
    out = open(target, "w", encoding="utf-8")
    for row in rows:
        if row["quantity"] <= 0:
            raise RejectedRow(f"order {row['order_id']}: quantity {row['quantity']}")
        out.write(json.dumps(row) + "\n")
    out.close()
    return target


def load_rules(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8") as f:
        return json.load(f)


def run(in_dir: Path, out_dir: Path, rules_path: Path) -> None:
    rules = load_rules(rules_path)
    rows, rejects = transform(sorted(in_dir.glob("*.csv")), rules)
    batch_id = datetime.now().strftime("%Y%m%d%H%M")
    written = write_batch(out_dir, batch_id, rows)
    if rejects:
        (out_dir / f"rejects-{batch_id}.txt").write_text("\n".join(rejects) + "\n", encoding="utf-8")
    log.info("wrote %d rows to %s, %d rejected", len(rows), written, len(rejects))
