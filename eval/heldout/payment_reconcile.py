"""Nightly reconciliation of the bank settlement file against the payments ledger.

Reads the acquirer's CSV settlement report, loads the ledger entries for the same value
date from Postgres, matches them by amount, currency and reference, and writes the
unmatched items to the `reconciliation_exceptions` table for the finance team.
"""

from __future__ import annotations

import csv
import logging
import sys
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import psycopg

log = logging.getLogger("recon")

SETTLED_STATES = {"settled", "captured", "refunded"}
CENT = Decimal("0.01")


@dataclass
class BankLine:
    reference: str
    amount: Decimal
    currency: str
    value_date: date


@dataclass
class LedgerEntry:
    id: int
    reference: str
    amount: Decimal
    currency: str
    state: str
    matched: bool = False


def read_settlement(path: Path) -> list[BankLine]:
    lines: list[BankLine] = []
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            lines.append(
                BankLine(
                    reference=row["merchant_ref"].strip().upper(),
                    amount=Decimal(row["net_amount"]).quantize(CENT),
                    currency=row["currency"].upper(),
                    value_date=datetime.strptime(row["value_date"], "%Y-%m-%d").date(),
                )
            )
    return lines


def load_ledger(conn: psycopg.Connection, value_date: date) -> list[LedgerEntry]:
    rows = conn.execute(
        "SELECT id, reference, amount, currency, state FROM ledger_entries "
        "WHERE value_date = %s",
        (value_date,),
    ).fetchall()
    return [
        LedgerEntry(r[0], r[1].upper(), Decimal(r[2]).quantize(CENT), r[3], r[4])
        for r in rows
        if r[4] in SETTLED_STATES
    ]


def match(bank: list[BankLine], ledger: list[LedgerEntry]) -> list[BankLine]:
    """Mark matched ledger entries; returns the bank lines with no ledger counterpart."""
    unmatched: list[BankLine] = []
    for line in bank:
        hit = None
        for entry in ledger:
            if (
                not entry.matched
                and entry.reference == line.reference
                and entry.amount == line.amount
                and entry.currency == line.currency
            ):
                hit = entry
                break
        if hit is None:
            unmatched.append(line)
        else:
            hit.matched = True
    return unmatched


def write_exceptions(
    conn: psycopg.Connection, value_date: date, bank_only: list[BankLine], ledger_only: list[LedgerEntry]
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO reconciliation_exceptions (value_date, side, reference, amount, currency) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(value_date, "bank", b.reference, b.amount, b.currency) for b in bank_only]
            + [(value_date, "ledger", e.reference, e.amount, e.currency) for e in ledger_only],
        )


def reconcile(dsn: str, settlement_file: Path) -> int:
    bank = read_settlement(settlement_file)
    if not bank:
        log.warning("settlement file %s is empty", settlement_file)
        return 0
    value_date = bank[0].value_date
    conn = psycopg.connect(dsn, connect_timeout=10)
    ledger = load_ledger(conn, value_date)
    bank_only = match(bank, ledger)
    ledger_only = [e for e in ledger if not e.matched]
    write_exceptions(conn, value_date, bank_only, ledger_only)
    conn.commit()
    conn.close()
    log.info(
        "reconciled %s: %d bank lines, %d ledger entries, %d exceptions",
        value_date, len(bank), len(ledger), len(bank_only) + len(ledger_only),
    )
    return len(bank_only) + len(ledger_only)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(1 if reconcile(sys.argv[1], Path(sys.argv[2])) else 0)
