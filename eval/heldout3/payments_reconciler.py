"""Daily bank statement reconciliation.

Matches each line of the bank's CSV statement against the payments we
recorded, first by the payment reference and then, for lines the bank
stripped the reference from, by the closest open amount on the same day.
"""
from __future__ import annotations

import csv
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from billing.models import Payment, ReconciliationMatch

log = logging.getLogger("reconcile")

AMOUNT_TOLERANCE = Decimal("0.01")


@dataclass
class StatementLine:
    booked: date
    amount: Decimal
    reference: str
    counterparty: str


@dataclass
class Report:
    matched: int = 0
    fuzzy: int = 0
    unmatched: list[StatementLine] = field(default_factory=list)


def read_statement(path: Path) -> list[StatementLine]:
    lines: list[StatementLine] = []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            lines.append(
                StatementLine(
                    booked=datetime.strptime(row["Booking date"], "%d.%m.%Y").date(),
                    amount=Decimal(row["Amount"].replace(".", "").replace(",", ".")),
                    reference=row["Reference"].strip().upper(),
                    counterparty=row["Counterparty"].strip(),
                )
            )
    return lines


class Reconciler:
    def __init__(self, db_url: str):
        self.engine = create_engine(db_url, pool_pre_ping=True)

    def reconcile(self, statement: Path) -> Report:
        report = Report()
        lines = read_statement(statement)
        session = Session(self.engine)
        if not lines:
            log.info("statement %s is empty", statement.name)
            return report

        matched_refs: list[str] = []
        leftovers: list[StatementLine] = []
        for line in lines:
            if not line.reference or line.reference in matched_refs:
                leftovers.append(line)
                continue
            payment = session.execute(
                select(Payment).where(Payment.reference == line.reference, Payment.settled.is_(False))
            ).scalar_one_or_none()
            if payment is None or abs(payment.amount - line.amount) > AMOUNT_TOLERANCE:
                leftovers.append(line)
                continue
            matched_refs.append(line.reference)
            self._settle(session, payment, line, method="reference")
            report.matched += 1

        days = {line.booked for line in leftovers}
        open_by_day: dict[date, list[Payment]] = defaultdict(list)
        if days:
            rows = session.execute(
                select(Payment).where(Payment.settled.is_(False), Payment.value_date.in_(days))
            ).scalars()
            for payment in rows:
                open_by_day[payment.value_date].append(payment)

        for line in leftovers:
            candidates = sorted(open_by_day[line.booked], key=lambda p: abs(p.amount - line.amount))
            if candidates and abs(candidates[0].amount - line.amount) <= AMOUNT_TOLERANCE:
                best = candidates[0]
                open_by_day[line.booked].remove(best)
                self._settle(session, best, line, method="amount")
                report.fuzzy += 1
            else:
                report.unmatched.append(line)

        session.commit()
        session.close()
        log.info(
            "%s: %d by reference, %d by amount, %d unmatched",
            statement.name, report.matched, report.fuzzy, len(report.unmatched),
        )
        return report

    @staticmethod
    def _settle(session: Session, payment: Payment, line: StatementLine, method: str) -> None:
        payment.settled = True
        payment.settled_on = line.booked
        session.add(
            ReconciliationMatch(
                payment_id=payment.id,
                booked=line.booked,
                amount=line.amount,
                counterparty=line.counterparty,
                method=method,
            )
        )


def main(statement_dir: Path, db_url: str) -> None:
    reconciler = Reconciler(db_url)
    for statement in sorted(statement_dir.glob("*.csv")):
        report = reconciler.reconcile(statement)
        for line in report.unmatched:
            log.warning("unmatched %s %s %s", line.booked, line.amount, line.counterparty)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    main(Path(sys.argv[1]), sys.argv[2])
