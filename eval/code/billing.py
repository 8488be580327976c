"""Monthly invoice run: totals each customer's usage and exports a CSV for accounting."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

SUPPORTED_CURRENCIES = ("EUR", "USD", "GBP")
VAT_RATES = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "NL": Decimal("0.21"), "GB": Decimal("0.20")}
CENT = Decimal("0.01")


@dataclass
class Invoice:
    customer_id: int
    name: str
    country: str
    currency: str
    net: Decimal
    vat: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.vat


def month_bounds(month: date) -> tuple[str, str]:
    start = month.replace(day=1)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.isoformat(), end.isoformat()


def active_customers(conn: sqlite3.Connection) -> list[tuple[int, str, str, str]]:
    return conn.execute(
        "SELECT id, name, country, currency FROM customers WHERE active = 1 ORDER BY id"
    ).fetchall()


def build_invoices(conn: sqlite3.Connection, month: date) -> list[Invoice]:
    start, end = month_bounds(month)
    invoices = []
    for customer_id, name, country, currency in active_customers(conn):
        if currency not in SUPPORTED_CURRENCIES:
            raise ValueError(f"customer {customer_id}: unsupported currency {currency}")
        rows = conn.execute(
            "SELECT quantity, unit_price FROM usage WHERE customer_id = ? AND day >= ? AND day < ?",
            (customer_id, start, end),
        ).fetchall()
        net = sum((Decimal(str(q)) * Decimal(str(p)) for q, p in rows), Decimal(0))
        if net == 0:
            continue
        vat = (net * VAT_RATES.get(country, Decimal(0))).quantize(CENT, ROUND_HALF_UP)
        invoices.append(Invoice(customer_id, name, country, currency, net.quantize(CENT), vat))
    return invoices


def _csv_field(value: object) -> str:
    text = str(value)
    if any(ch in text for ch in (",", '"', "\n")):
        text = '"' + text.replace('"', '""') + '"'
    return text


def export_csv(invoices: list[Invoice]) -> str:
    out = "customer_id,name,country,currency,net,vat,gross\n"
    for inv in invoices:
        fields = (inv.customer_id, inv.name, inv.country, inv.currency, inv.net, inv.vat, inv.gross)
        out += ",".join(_csv_field(f) for f in fields) + "\n"
    return out


def totals_by_currency(invoices: list[Invoice]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for inv in invoices:
        totals[inv.currency] = totals.get(inv.currency, Decimal(0)) + inv.gross
    return totals


def run(db_path: str, month: date, out_path: str) -> dict[str, Decimal]:
    with sqlite3.connect(db_path) as conn:
        invoices = build_invoices(conn, month)
    with open(out_path, "w", encoding="utf-8", newline="") as f:
        f.write(export_csv(invoices))
    return totals_by_currency(invoices)


if __name__ == "__main__":
    import sys

    print(run(sys.argv[1], date.fromisoformat(sys.argv[2]), sys.argv[3]))
