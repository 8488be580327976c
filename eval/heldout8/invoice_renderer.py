"""HTTP service that renders customer invoices to PDF.

Invoices come from the billing API, are rendered from a Jinja template and
converted with wkhtmltopdf reading HTML on stdin and writing PDF to stdout.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import urllib.request
from dataclasses import dataclass
from decimal import Decimal

import aiohttp
from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

log = logging.getLogger("invoices")

TEMPLATE_DIR = os.environ.get("INVOICE_TEMPLATES", "/srv/invoices/templates")
BILLING_API = os.environ.get("BILLING_API", "http://billing.internal:8080")
WKHTMLTOPDF = os.environ.get("WKHTMLTOPDF", "/usr/bin/wkhtmltopdf")
FINAL_STATES = ("paid", "void", "refunded")


@dataclass
class Line:
    description: str
    quantity: int
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.unit_price * self.quantity


def _logo_data_uri(url: str) -> str:
    """Inline the customer's logo so the PDF converter needs no network access."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        kind = resp.headers.get_content_type()
        body = resp.read()
    return f"data:{kind};base64,{base64.b64encode(body).decode()}"


def _render_html(invoice: dict, customer: dict, lines: list[Line], logo: str | None) -> str:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html"]),
    )
    env.filters["money"] = lambda d: f"{d:,.2f}"
    template = env.get_template(customer.get("template") or "invoice.html")
    return template.render(
        invoice=invoice,
        customer=customer,
        lines=lines,
        subtotal=sum((line.total for line in lines), Decimal("0")),
        logo=logo,
    )


async def _html_to_pdf(html: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        WKHTMLTOPDF, "--quiet", "--encoding", "utf-8", "-", "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(html.encode("utf-8"))
    if proc.returncode != 0:
        raise RuntimeError(f"wkhtmltopdf exited {proc.returncode}: {err.decode(errors='replace')[:500]}")
    return out


async def _get_json(session: aiohttp.ClientSession, path: str) -> dict:
    async with session.get(f"{BILLING_API}{path}") as resp:
        if resp.status == 404:
            raise web.HTTPNotFound(text=f"{path} not found")
        resp.raise_for_status()
        return await resp.json()


async def render_invoice(request: web.Request) -> web.Response:
    invoice_id = request.match_info["invoice_id"]
    session: aiohttp.ClientSession = request.app["http"]

    invoice = await _get_json(session, f"/invoices/{invoice_id}")
    customer = await _get_json(session, f"/customers/{invoice['customer_id']}")

    if invoice["status"] not in FINAL_STATES and request.query.get("draft") != "1":
        raise web.HTTPConflict(text="invoice is still open; pass draft=1 for a preview")

    lines = [
        Line(item["description"], int(item["quantity"]), Decimal(str(item["unit_price"])))
        for item in invoice["lines"]
    ]
    logo = None
    if customer.get("logo_url"):
        try:
            logo = _logo_data_uri(customer["logo_url"])
        except OSError as exc:
            log.warning("no logo for customer %s: %s", customer["id"], exc)

    html = _render_html(invoice, customer, lines, logo)
    pdf = await _html_to_pdf(html)
    filename = f"invoice-{invoice['number']}.pdf"
    return web.Response(
        body=pdf,
        content_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _on_startup(app: web.Application) -> None:
    app["http"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))


async def _on_cleanup(app: web.Application) -> None:
    await app["http"].close()


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/invoices/{invoice_id}.pdf", render_invoice)
    app.router.add_get("/healthz", healthz)
    app.on_startup.append(_on_startup)
    app.on_cleanup.append(_on_cleanup)
    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    web.run_app(make_app(), port=int(os.environ.get("PORT", "8085")))
