"""Nightly reconciliation of the billing ledger against the bank statement export."""

from __future__ import annotations

import argparse
import csv
import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

log = logging.getLogger("reconcile")

SCHEMA = """
CREATE TABLE IF NOT EXISTS mismatches (
    run_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    expected TEXT NOT NULL,
    received TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_payments_invoice ON payments (invoice_id);
"""


@dataclass(frozen=True)
class StatementLine:
    txn_id: str
    reference: str
    amount: Decimal
    booked: str


def read_statement(path: Path) -> list[StatementLine]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        return [
            StatementLine(
                txn_id=row["Transaction ID"].strip(),
                reference=row["Reference"].strip().upper(),
                amount=Decimal(row["Amount"].replace(",", ".")),
                booked=row["Booking Date"],
            )
            for row in reader
        ]


def open_ledger(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.executescript(SCHEMA)
    return conn


def open_invoices(conn: sqlite3.Connection, period: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT id, reference, total FROM invoices WHERE period = ? AND status != 'void'",
        (period,),
    ).fetchall()


def paid_amount(conn: sqlite3.Connection, invoice_id: str) -> Decimal:
    rows = conn.execute(
        "SELECT amount FROM payments WHERE invoice_id = ?", (invoice_id,)
    ).fetchall()
    return sum((Decimal(r["amount"]) for r in rows), Decimal("0"))


def reconcile(conn: sqlite3.Connection, statement: list[StatementLine], period: str, run_id: str) -> int:
    by_reference: dict[str, list[StatementLine]] = {}
    for line in statement:
        by_reference.setdefault(line.reference, []).append(line)

    mismatches = []
    matched_txns: list[str] = []
    for inv in open_invoices(conn, period):
        received = Decimal("0")
        for line in by_reference.get(inv["reference"].upper(), []):
            if line.txn_id in matched_txns:
                continue
            matched_txns.append(line.txn_id)
            received += line.amount
        received += paid_amount(conn, inv["id"])
        expected = Decimal(inv["total"])
        if received != expected:
            reason = "underpaid" if received < expected else "overpaid"
            mismatches.append((run_id, inv["id"], str(expected), str(received), reason))

    unmatched = [l for l in statement if l.txn_id not in matched_txns]
    for line in unmatched:
        mismatches.append((run_id, "-", "0", str(line.amount), f"unmatched {line.txn_id}"))

    with conn:
        conn.executemany("INSERT INTO mismatches VALUES (?, ?, ?, ?, ?)", mismatches)
    return len(mismatches)


def write_report(conn: sqlite3.Connection, run_id: str, out: Path) -> None:
    cur = conn.execute(
        "SELECT invoice_id, expected, received, reason FROM mismatches WHERE run_id = ?",
        (run_id,),
    )
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["invoice", "expected", "received", "reason"])
        for row in cur:
            writer.writerow(tuple(row))


def previous_runs(db: Path, limit: int = 5) -> list[str]:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        rows = conn.execute(
            "SELECT DISTINCT run_id FROM mismatches ORDER BY run_id DESC LIMIT ?", (limit,)
        ).fetchall()
    return [r[0] for r in rows]


def run(db: Path, statement: list[StatementLine], period: str, run_id: str, out: Path) -> int:
    conn = open_ledger(db)
    count = reconcile(conn, statement, period, run_id)
    write_report(conn, run_id, out)
    conn.close()
    log.info("run %s: %d mismatches over %d statement lines", run_id, count, len(statement))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--statement", type=Path, required=True)
    parser.add_argument("--period", action="append", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    parser.add_argument("--history", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    if args.history:
        for rid in previous_runs(args.db):
            print(rid)
        return
    statement = read_statement(args.statement)
    failed = 0
    for period in args.period:
        out = args.out_dir / f"mismatches-{period}.csv"
        try:
            failed += run(args.db, statement, period, f"{args.run_id}-{period}", out)
        except (sqlite3.DatabaseError, OSError):
            log.exception("period %s failed", period)
            failed += 1
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
