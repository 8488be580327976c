"""Monthly account statements as PDF.

For each customer account the statement HTML is rendered from a Jinja template, converted
to PDF with wkhtmltopdf and uploaded to the statements bucket, where the customer portal
serves it from.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import boto3
from botocore.config import Config
from jinja2 import Environment, FileSystemLoader, select_autoescape

log = logging.getLogger("statements")

TEMPLATE_DIR = Path(__file__).parent / "templates"
WKHTMLTOPDF = os.environ.get("WKHTMLTOPDF", "/usr/local/bin/wkhtmltopdf")
PDF_OPTIONS = ("--quiet", "--page-size", "A4", "--margin-top", "12mm", "--encoding", "utf-8")


@dataclass
class Transaction:
    posted: date
    description: str
    amount: Decimal


@dataclass
class Statement:
    account_id: str
    customer_name: str
    period: str
    opening_balance: Decimal
    transactions: list[Transaction]

    @property
    def closing_balance(self) -> Decimal:
        return self.opening_balance + sum((t.amount for t in self.transactions), Decimal(0))


class StatementRenderer:
    def __init__(self, bucket: str, brand: str = "default") -> None:
        self.bucket = bucket
        self.brand = brand
        self.s3 = boto3.client(
            "s3", config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3})
        )

    def _template(self):
        env = Environment(
            loader=FileSystemLoader(TEMPLATE_DIR / self.brand),
            autoescape=select_autoescape(["html"]),
        )
        env.filters["money"] = lambda v: f"{v:,.2f}"
        return env.get_template("statement.html")

    def render_html(self, stmt: Statement) -> str:
        return self._template().render(
            stmt=stmt,
            rows=sorted(stmt.transactions, key=lambda t: t.posted),
            closing=stmt.closing_balance,
        )

    def to_pdf(self, html: str) -> Path:
        src = tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8")
        src.write(html)
        src.close()
        out = Path(src.name).with_suffix(".pdf")
        subprocess.run([WKHTMLTOPDF, *PDF_OPTIONS, src.name, str(out)], check=True, capture_output=True)
        os.unlink(src.name)
        return out

    def upload(self, stmt: Statement, pdf: Path) -> str:
        key = f"statements/{stmt.period}/{stmt.account_id}.pdf"
        with open(pdf, "rb") as fh:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=fh, ContentType="application/pdf",
                ServerSideEncryption="aws:kms",
            )
        return key

    def publish(self, statements: list[Statement]) -> dict[str, str]:
        """Render and upload every statement; returns account id -> object key."""
        published: dict[str, str] = {}
        for stmt in statements:
            try:
                pdf = self.to_pdf(self.render_html(stmt))
            except subprocess.CalledProcessError as exc:
                log.error("wkhtmltopdf failed for %s: %s", stmt.account_id, exc.stderr[-500:])
                continue
            try:
                published[stmt.account_id] = self.upload(stmt, pdf)
            finally:
                pdf.unlink(missing_ok=True)
        log.info("published %d of %d statements", len(published), len(statements))
        return published
