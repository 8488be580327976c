"""Render monthly invoices as PDF and store them for the customer portal.

The billing run puts invoice ids on a queue; a few worker tasks take them off, fetch the
invoice, customer and line items from the billing API, render the PDF with ReportLab and
upload it to the document store. A local copy is kept for the accounting export.
"""

from __future__ import annotations

import asyncio
import io
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

log = logging.getLogger("invoices")

BILLING_API = "http://billing.internal/api/v2"
DOCSTORE_URL = "http://docstore.internal/v1/documents"
LOGO_URL = "https://cdn.example.com/brand/invoice-logo.png"
ARCHIVE_DIR = Path("/srv/invoices/archive")
WORKERS = 4


def money(value: str | Decimal, currency: str) -> str:
    return f"{Decimal(value):,.2f} {currency}"


def render_pdf(invoice: dict[str, Any], customer: dict[str, Any], lines: list[dict[str, Any]], logo: bytes) -> bytes:
    """The invoice as a one- or multi-page A4 PDF."""
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4)
    width, height = A4
    pdf.drawImage(ImageReader(io.BytesIO(logo)), 20 * mm, height - 40 * mm, width=50 * mm, preserveAspectRatio=True)
    pdf.setFont("Helvetica-Bold", 14)
    pdf.drawString(120 * mm, height - 25 * mm, f"Invoice {invoice['number']}")
    pdf.setFont("Helvetica", 10)
    pdf.drawString(120 * mm, height - 32 * mm, f"Date: {invoice['issued_on']}")
    y = height - 60 * mm
    for text in (customer["name"], *customer["address_lines"], customer.get("vat_id", "")):
        pdf.drawString(20 * mm, y, text)
        y -= 5 * mm
    y -= 10 * mm
    for line in lines:
        if y < 30 * mm:
            pdf.showPage()
            pdf.setFont("Helvetica", 10)
            y = height - 20 * mm
        pdf.drawString(20 * mm, y, line["description"][:70])
        pdf.drawRightString(150 * mm, y, str(line["quantity"]))
        pdf.drawRightString(190 * mm, y, money(line["amount"], invoice["currency"]))
        y -= 6 * mm
    pdf.setFont("Helvetica-Bold", 11)
    pdf.drawRightString(190 * mm, max(y - 6 * mm, 15 * mm), "Total " + money(invoice["total"], invoice["currency"]))
    pdf.save()
    return buf.getvalue()


class InvoiceWorker:
    """Takes invoice ids off `queue` until it is cancelled."""

    def __init__(self, client: httpx.AsyncClient, queue: asyncio.Queue[str]) -> None:
        self.client = client
        self.queue = queue
        self.rendered = 0

    async def _get_json(self, path: str) -> Any:
        resp = await self.client.get(f"{BILLING_API}{path}")
        resp.raise_for_status()
        return resp.json()

    async def _logo(self) -> bytes:
        resp = await self.client.get(LOGO_URL)
        resp.raise_for_status()
        return resp.content

    def _archive(self, invoice: dict[str, Any], pdf: bytes) -> None:
        folder = ARCHIVE_DIR / invoice["issued_on"][:7]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{invoice['number']}.pdf").write_bytes(pdf)

    async def handle(self, invoice_id: str) -> None:
        invoice = await self._get_json(f"/invoices/{invoice_id}")
        customer = await self._get_json(f"/customers/{invoice['customer_id']}")
        lines = await self._get_json(f"/invoices/{invoice_id}/lines")
        logo = await self._logo()
        pdf = render_pdf(invoice, customer, lines, logo)
        resp = await self.client.put(
            f"{DOCSTORE_URL}/invoices/{invoice['number']}.pdf",
            content=pdf,
            headers={"Content-Type": "application/pdf"},
        )
        resp.raise_for_status()
        await asyncio.to_thread(self._archive, invoice, pdf)
        self.rendered += 1

    async def run(self) -> None:
        while True:
            invoice_id = await self.queue.get()
            try:
                await self.handle(invoice_id)
            except (httpx.HTTPError, KeyError, OSError) as exc:
                log.error("invoice %s failed: %s", invoice_id, exc)
            finally:
                self.queue.task_done()


async def render_all(invoice_ids: list[str]) -> int:
    queue: asyncio.Queue[str] = asyncio.Queue(maxsize=WORKERS * 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)) as client:
        workers = [InvoiceWorker(client, queue) for _ in range(WORKERS)]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        for invoice_id in invoice_ids:
            await queue.put(invoice_id)
        await queue.join()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return sum(w.rendered for w in workers)


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    ids = Path(sys.argv[1]).read_text(encoding="utf-8").split()
    print(f"rendered {asyncio.run(render_all(ids))} of {len(ids)} invoices")
