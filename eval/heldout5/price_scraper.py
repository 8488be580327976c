"""Competitor price scraper.

For every tracked product, fetches the competitor's product page, pulls the
price out with the site's configured pattern and writes a CSV that the
pricing team imports each morning, plus an HTML summary of the biggest
price gaps that is mailed to the category managers.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

import requests

log = logging.getLogger("price-scraper")

USER_AGENT = "Mozilla/5.0 (compatible; acme-pricewatch/2.3; +https://acme.example/bot)"
MIN_DELAY_PER_HOST = 2.0
WORKERS = 8


@dataclass
class Observation:
    sku: str
    site: str
    url: str
    our_price: Decimal
    their_price: Decimal | None
    error: str | None = None

    @property
    def gap(self) -> Decimal | None:
        if self.their_price is None or not self.our_price:
            return None
        return (self.their_price - self.our_price) / self.our_price * 100


_local = threading.local()
_last_hit: dict[str, float] = {}
_last_hit_lock = threading.Lock()


def _http() -> requests.Session:
    """One session per worker thread."""
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
        _local.session.headers["User-Agent"] = USER_AGENT
    return _local.session


def _wait_for_turn(host: str) -> None:
    """Keep at least MIN_DELAY_PER_HOST seconds between requests to one host."""
    with _last_hit_lock:
        now = time.monotonic()
        ready_at = _last_hit.get(host, 0.0) + MIN_DELAY_PER_HOST
        _last_hit[host] = max(now, ready_at)
    if ready_at > now:
        time.sleep(ready_at - now)


def fetch_page(url: str) -> str:
    _wait_for_turn(urlsplit(url).hostname or "")
    resp = _http().get(url, allow_redirects=True)
    resp.raise_for_status()
    return resp.text


def parse_price(page: str, site: dict) -> Decimal | None:
    """The price on a product page, using the site's pattern (a `price` group)."""
    pattern = re.compile(site["price_pattern"], re.S | re.I)
    m = pattern.search(page)
    if m is None:
        return None
    raw = m.group("price").replace("\u00a0", "").replace(" ", "")
    if site.get("decimal_comma"):
        raw = raw.replace(".", "").replace(",", ".")
    else:
        raw = raw.replace(",", "")
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def observe(product: dict, site_name: str, site: dict) -> Observation:
    url = site["url_template"].format(sku=product["competitor_skus"][site_name])
    try:
        price = parse_price(fetch_page(url), site)
    except requests.RequestException as exc:
        return Observation(product["sku"], site_name, url, Decimal(product["price"]), None, str(exc))
    return Observation(product["sku"], site_name, url, Decimal(product["price"]), price)


def scrape(products: list[dict], sites: dict[str, dict]) -> list[Observation]:
    jobs = [(p, name, sites[name]) for p in products for name in p.get("competitor_skus", {}) if name in sites]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(lambda job: observe(*job), jobs))


def write_csv(observations: list[Observation], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sku", "site", "our_price", "their_price", "gap_pct", "url", "error"])
        for o in observations:
            gap = f"{o.gap:.1f}" if o.gap is not None else ""
            writer.writerow([o.sku, o.site, o.our_price, o.their_price or "", gap, o.url, o.error or ""])


def summary_html(observations: list[Observation], threshold: float = 5.0) -> str:
    """An HTML table of every price seen, cheapest competitor first; rows `threshold`% under ours are marked."""
    priced = sorted((o for o in observations if o.gap is not None), key=lambda o: o.gap)
    undercut = 0
    body = "<table><tr><th>SKU</th><th>Site</th><th>Ours</th><th>Theirs</th><th>Gap</th></tr>"
    for o in priced:
        css = "undercut" if o.gap <= -threshold else "ok"
        undercut += css == "undercut"
        body += (
            f'<tr class="{css}"><td>{html.escape(o.sku)}</td><td>{html.escape(o.site)}</td>'
            f"<td>{o.our_price}</td><td>{o.their_price}</td><td>{o.gap:.1f}%</td></tr>"
        )
    body += "</table>"
    failures = sum(1 for o in observations if o.error)
    return f"<p>{undercut} prices undercut ours by {threshold:g}% or more, {failures} pages failed.</p>{body}"


def main(products_file: str, sites_file: str, out_dir: str) -> None:
    products = json.loads(Path(products_file).read_text())
    sites = json.loads(Path(sites_file).read_text())
    observations = scrape(products, sites)
    out = Path(out_dir)
    write_csv(observations, out / f"prices-{time.strftime('%Y%m%d')}.csv")
    (out / "summary.html").write_text(summary_html(observations), encoding="utf-8")
    log.info("scraped %d pages, %d failed", len(observations), sum(1 for o in observations if o.error))


if __name__ == "__main__":
    import sys

    logging.basicConfig(level=logging.INFO)
    main(*sys.argv[1:4])
