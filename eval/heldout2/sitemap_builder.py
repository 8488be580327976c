"""Sitemap builder for the marketplace storefront.

Collects product, category and article URLs from the catalogue database,
optionally drops URLs that no longer resolve, and writes `sitemap-N.xml` files
plus a `sitemap-index.xml`, then pings the search engines.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import requests

log = logging.getLogger("seo.sitemap")

MAX_URLS_PER_FILE = 50_000
PING_ENDPOINTS = ("https://www.google.com/ping", "https://www.bing.com/ping")
CHANGEFREQ = {"product": "daily", "category": "weekly", "article": "monthly"}


@dataclass
class Entry:
    loc: str
    kind: str
    lastmod: date
    views_30d: int


class SitemapFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._xml = '<?xml version="1.0" encoding="UTF-8"?>\n'
        self._xml += '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'

    def add(self, entry: Entry, priority: float) -> None:
        self._xml += (
            f"  <url><loc>{escape(entry.loc)}</loc><lastmod>{entry.lastmod.isoformat()}</lastmod>"
            f"<changefreq>{CHANGEFREQ[entry.kind]}</changefreq><priority>{priority:.1f}</priority></url>\n"
        )
        self.count += 1

    def write(self) -> None:
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(self._xml + "</urlset>\n")


class SitemapBuilder:
    def __init__(self, db_path: Path, base_url: str, out_dir: Path) -> None:
        self.db_path = db_path
        self.base_url = base_url.rstrip("/")
        self.out_dir = out_dir
        self.entries: list[Entry] = []

    def collect(self) -> None:
        seen: set[str] = set()
        with closing(sqlite3.connect(self.db_path)) as conn:
            for kind, table in (("product", "products"), ("category", "categories"), ("article", "articles")):
                rows = conn.execute(
                    f"SELECT slug, updated_on, views_30d FROM {table} WHERE published = 1"
                ).fetchall()
                for slug, updated_on, views in rows:
                    loc = f"{self.base_url}/{kind}/{slug}"
                    if loc in seen:
                        continue
                    seen.add(loc)
                    self.entries.append(Entry(loc, kind, date.fromisoformat(updated_on), views or 0))
        log.info("collected %d urls", len(self.entries))

    def _still_live(self, entry: Entry) -> bool:
        resp = requests.head(entry.loc, allow_redirects=False)
        return resp.status_code == 200

    def prune_dead(self) -> None:
        before = len(self.entries)
        self.entries = [e for e in self.entries if e.kind != "product" or self._still_live(e)]
        log.info("pruned %d dead product urls", before - len(self.entries))

    def _priority(self, entry: Entry) -> float:
        ranked = sorted(self.entries, key=lambda e: e.views_30d, reverse=True)
        position = ranked.index(entry)
        return round(1.0 - 0.9 * position / max(len(ranked) - 1, 1), 1)

    def write(self) -> list[Path]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        current: SitemapFile | None = None
        for entry in self.entries:
            if current is None or current.count >= MAX_URLS_PER_FILE:
                if current is not None:
                    current.write()
                current = SitemapFile(self.out_dir / f"sitemap-{len(files) + 1}.xml")
                files.append(current.path)
            current.add(entry, self._priority(entry))
        if current is not None:
            current.write()
        self._write_index(files)
        return files

    def _write_index(self, files: list[Path]) -> None:
        today = date.today().isoformat()
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n']
        for path in files:
            parts.append(f"  <sitemap><loc>{self.base_url}/{path.name}</loc><lastmod>{today}</lastmod></sitemap>\n")
        parts.append("</sitemapindex>\n")
        (self.out_dir / "sitemap-index.xml").write_text("".join(parts), encoding="utf-8")

    def ping(self) -> None:
        index_url = f"{self.base_url}/sitemap-index.xml"
        for endpoint in PING_ENDPOINTS:
            try:
                requests.get(endpoint, params={"sitemap": index_url}, timeout=10)
            except requests.RequestException as exc:
                log.warning("ping %s failed: %s", endpoint, exc)
