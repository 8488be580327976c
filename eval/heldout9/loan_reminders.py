"""Nightly overdue-loan reminders for the branch libraries.

Run from cron once a night. Finds loans that are past due (after a short
grace period) and not yet reminded today, e-mails each patron using the
branch's own wording, and stamps the loans as reminded.
"""

from __future__ import annotations

import logging
import os
import smtplib
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from string import Template

import psycopg
from psycopg.rows import dict_row

log = logging.getLogger("libris.reminders")

TEMPLATE_DIR = Path("/etc/libris/templates")
GRACE_DAYS = 2
SMTP_HOST = "mail.libris.internal"
SMTP_PORT = 587
FROM_ADDR = "City Libraries <noreply@libris.example>"


@dataclass
class Reminder:
    loan_id: int
    email: str
    name: str
    title: str
    due: date
    days_late: int
    branch: str


def overdue_loans(conn: psycopg.Connection, today: date) -> list[dict]:
    cutoff = today - timedelta(days=GRACE_DAYS)
    return conn.execute(
        "SELECT id, patron_id, item_id, due_date, branch FROM loans"
        " WHERE returned_at IS NULL AND due_date < %s"
        " AND (reminded_on IS NULL OR reminded_on < %s)"
        " ORDER BY branch, due_date",
        (cutoff, today),
    ).fetchall()


def _patron(conn: psycopg.Connection, patron_id: int) -> dict | None:
    return conn.execute(
        "SELECT name, email, opted_out FROM patrons WHERE id = %s", (patron_id,)
    ).fetchone()


def _title(conn: psycopg.Connection, item_id: int) -> str:
    row = conn.execute(
        "SELECT b.title FROM items i JOIN books b ON b.id = i.book_id WHERE i.id = %s",
        (item_id,),
    ).fetchone()
    return row["title"] if row else "(unknown item)"


def build_reminders(conn: psycopg.Connection, today: date) -> list[Reminder]:
    reminders = []
    for loan in overdue_loans(conn, today):
        patron = _patron(conn, loan["patron_id"])
        if patron is None or patron["opted_out"] or not patron["email"]:
            continue
        title = _title(conn, loan["item_id"])
        due = loan["due_date"]
        reminders.append(Reminder(loan["id"], patron["email"], patron["name"], title,
                                  due, (today - due).days, loan["branch"]))
    return reminders


def render(reminder: Reminder) -> str:
    path = TEMPLATE_DIR / f"overdue_{reminder.branch}.txt"
    if not path.exists():
        path = TEMPLATE_DIR / "overdue_default.txt"
    template = Template(path.read_text(encoding="utf-8"))
    return template.safe_substitute(
        name=reminder.name, title=reminder.title,
        due=reminder.due.strftime("%d %B %Y"), days=reminder.days_late,
    )


def send_all(reminders: list[Reminder]) -> list[int]:
    """Send every reminder over one SMTP session; the ids of the loans reminded."""
    sent: list[int] = []
    with smtplib.SMTP(SMTP_HOST, SMTP_PORT) as smtp:
        smtp.starttls()
        smtp.login(os.environ["LIBRIS_SMTP_USER"], os.environ["LIBRIS_SMTP_PASSWORD"])
        for reminder in reminders:
            msg = EmailMessage()
            msg["From"] = FROM_ADDR
            msg["To"] = reminder.email
            msg["Subject"] = f"Overdue: {reminder.title}"
            msg.set_content(render(reminder))
            try:
                smtp.send_message(msg)
            except smtplib.SMTPRecipientsRefused:
                log.warning("loan %s: recipient refused", reminder.loan_id)
                continue
            sent.append(reminder.loan_id)
    return sent


def mark_reminded(conn: psycopg.Connection, loan_ids: list[int], today: date) -> None:
    with conn.cursor() as cur:
        cur.executemany("UPDATE loans SET reminded_on = %s WHERE id = %s",
                        [(today, loan_id) for loan_id in loan_ids])
    conn.commit()


def main() -> None:
    today = date.today()
    with psycopg.connect(os.environ["LIBRIS_DSN"], row_factory=dict_row,
                         connect_timeout=10) as conn:
        reminders = build_reminders(conn, today)
        log.info("%d overdue loans to remind", len(reminders))
        sent = send_all(reminders)
        mark_reminded(conn, sent, today)
        log.info("reminded %d of %d", len(sent), len(reminders))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
