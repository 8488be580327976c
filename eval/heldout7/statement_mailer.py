"""Monthly statement batch: render a PDF statement per account and mail it.

Run from cron on the first of the month:

    python -m billing.statement_mailer --period 2024-05
"""
from __future__ import annotations

import argparse
import logging
import shutil
import smtplib
import sqlite3
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.message import EmailMessage
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

log = logging.getLogger("statement_mailer")

TEMPLATES = Path(__file__).with_name("templates")
SMTP_HOST = "smtp.internal"
SMTP_PORT = 587
SENDER = "billing@example.com"
RENDER_TIMEOUT = 90


def accounts_for(db: sqlite3.Connection, period: str) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT a.id, a.name, a.email, a.currency FROM account a"
        " WHERE EXISTS (SELECT 1 FROM invoice_line l WHERE l.account_id = a.id AND l.period = ?)"
        " ORDER BY a.id",
        (period,),
    ).fetchall()


def statement_lines(db: sqlite3.Connection, account_id: int, period: str) -> list[dict]:
    lines = []
    for row in db.execute(
        "SELECT product_id, quantity, amount_cents FROM invoice_line"
        " WHERE account_id = ? AND period = ? ORDER BY id",
        (account_id, period),
    ):
        product = db.execute(
            "SELECT name, unit FROM product WHERE id = ?", (row["product_id"],)
        ).fetchone()
        lines.append(
            {
                "product": product["name"] if product else f"#{row['product_id']}",
                "unit": product["unit"] if product else "",
                "quantity": row["quantity"],
                "amount": row["amount_cents"] / 100,
            }
        )
    return lines


def render_pdf(account: sqlite3.Row, lines: list[dict], period: str, workdir: Path) -> Path:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    html = env.get_template("statement.html").render(
        account=dict(account), lines=lines, period=period,
        total=sum(l["amount"] for l in lines),
    )
    src = workdir / f"{account['id']}.html"
    out = workdir / f"statement-{account['id']}-{period}.pdf"
    src.write_text(html, encoding="utf-8")
    subprocess.run(
        ["wkhtmltopdf", "--quiet", "--encoding", "utf-8", str(src), str(out)],
        check=True,
        capture_output=True,
        timeout=RENDER_TIMEOUT,
    )
    return out


def send(account: sqlite3.Row, pdf: Path, period: str) -> None:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = account["email"]
    msg["Subject"] = f"Your statement for {period}"
    msg.set_content(f"Dear {account['name']},\n\nyour statement for {period} is attached.\n")
    msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name)
    with smtplib.SMTP(SMTP_HOST, SMTP_PORT) as smtp:
        smtp.starttls()
        smtp.send_message(msg)


def process(db_path: str, account: sqlite3.Row, period: str, workdir: Path) -> int:
    db = sqlite3.connect(db_path, timeout=15)
    db.row_factory = sqlite3.Row
    try:
        lines = statement_lines(db, account["id"], period)
    finally:
        db.close()
    pdf = render_pdf(account, lines, period, workdir)
    send(account, pdf, period)
    return account["id"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--period", required=True)
    parser.add_argument("--db", default="/var/lib/billing/billing.db")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args(argv)

    db = sqlite3.connect(args.db, timeout=15)
    db.row_factory = sqlite3.Row
    try:
        accounts = accounts_for(db, args.period)
    finally:
        db.close()

    workdir = Path(tempfile.mkdtemp(prefix="statements-"))
    failed = 0
    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = {pool.submit(process, args.db, a, args.period, workdir): a for a in accounts}
            for fut in as_completed(futures):
                try:
                    fut.result()
                except (subprocess.SubprocessError, smtplib.SMTPException, OSError) as exc:
                    failed += 1
                    log.error("account %s failed: %s", futures[fut]["id"], exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log.info("%d statements sent, %d failed", len(accounts) - failed, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
