"""Monthly partner revenue exports: one CSV per partner, uploaded to the reporting share."""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import logging
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

log = logging.getLogger("exports")

PARTNERS_SQL = text("SELECT id, slug, currency FROM partners WHERE active AND exports_enabled")
LINES_SQL = text(
    """
    SELECT o.id, o.placed_at, o.region, o.sku, o.quantity, o.net_amount
    FROM orders o
    WHERE o.partner_id = :partner AND o.placed_at >= :start AND o.placed_at < :end
    ORDER BY o.placed_at
    """
)
REFUNDS_SQL = text(
    "SELECT order_id, amount FROM refunds WHERE partner_id = :partner AND refunded_at >= :start"
)


def month_bounds(month: str) -> tuple[date, date]:
    year, mon = (int(x) for x in month.split("-"))
    start = date(year, mon, 1)
    end = date(year + (mon == 12), mon % 12 + 1, 1)
    return start, end


def engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True, pool_size=2, connect_args={"connect_timeout": 10})


def stream_refunds(engine: Engine, partner_id: int, start: date) -> Iterator[tuple[int, float]]:
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True).execute(
            REFUNDS_SQL, {"partner": partner_id, "start": start}
        )
        for row in result.yield_per(2000):
            yield row.order_id, float(row.amount)


def export_partner(engine: Engine, partner, start: date, end: date, out_dir: Path) -> Path:
    refunds: dict[int, float] = {}
    for order_id, amount in stream_refunds(engine, partner.id, start):
        refunds[order_id] = refunds.get(order_id, 0.0) + amount

    with engine.connect() as conn:
        rows = conn.execute(LINES_SQL, {"partner": partner.id, "start": start, "end": end}).fetchall()

    target = out_dir / f"{partner.slug}-{start:%Y-%m}.csv.gz"
    tmp = target.with_suffix(".partial")
    try:
        with gzip.open(tmp, "wt", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["order_id", "placed_at", "region", "sku", "qty", "net", "refunded", "share_pct"])
            for row in rows:
                net = float(row.net_amount)
                month_total = sum(float(r.net_amount) for r in rows)
                share = 100.0 * net / month_total if month_total else 0.0
                writer.writerow([
                    row.id,
                    row.placed_at.isoformat(),
                    row.region,
                    row.sku,
                    row.quantity,
                    f"{net:.2f}",
                    f"{refunds.get(row.id, 0.0):.2f}",
                    f"{share:.4f}",
                ])
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    return target


def summary_csv(paths: list[Path]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "bytes"])
    for p in sorted(paths):
        writer.writerow([p.name, p.stat().st_size])
    return buf.getvalue()


def run_exports(db_url: str, month: str, out_dir: Path, only: set[str] | None = None) -> list[Path]:
    start, end = month_bounds(month)
    out_dir.mkdir(parents=True, exist_ok=True)
    with engine_for(db_url).connect() as conn:
        partners = conn.execute(PARTNERS_SQL).fetchall()

    written = []
    for partner in partners:
        if only and partner.slug not in only:
            continue
        engine = engine_for(db_url)
        try:
            written.append(export_partner(engine, partner, start, end, out_dir))
        except Exception:
            log.exception("export for %s failed", partner.slug)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("month", help="YYYY-MM")
    parser.add_argument("--db", default=os.environ.get("REPORTING_DB_URL"))
    parser.add_argument("--out", type=Path, default=Path("exports"))
    parser.add_argument("--partner", action="append")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    written = run_exports(args.db, args.month, args.out, set(args.partner or []) or None)
    (args.out / f"summary-{args.month}.csv").write_text(summary_csv(written), encoding="utf-8")
    log.info("wrote %d exports", len(written))


if __name__ == "__main__":
    main()
