"""Crawls a documentation site and collects page titles and outbound links."""

from __future__ import annotations

import asyncio
import re
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlparse

import aiohttp
import requests

TITLE = re.compile(r"<title>(.*?)</title>", re.I | re.S)
HREF = re.compile(r'href="([^"#]+)"', re.I)
SKIP_EXTENSIONS = (".png", ".jpg", ".pdf", ".zip")


@dataclass
class Page:
    url: str
    title: str
    links: list[str] = field(default_factory=list)


class Crawler:
    def __init__(self, root: str, max_pages: int = 200) -> None:
        self.root = root
        self.host = urlparse(root).netloc
        self.max_pages = max_pages
        self.visited: list[str] = []
        self.pages: list[Page] = []
        self._disallowed: set[str] = set()

    def load_robots(self) -> None:
        resp = requests.get(urljoin(self.root, "/robots.txt"), timeout=10)
        for line in resp.text.splitlines():
            if line.lower().startswith("disallow:"):
                self._disallowed.add(line.split(":", 1)[1].strip())

    def allowed(self, url: str) -> bool:
        path = urlparse(url).path
        if path.endswith(SKIP_EXTENSIONS):
            return False
        return not any(path.startswith(prefix) for prefix in self._disallowed if prefix)

    async def fetch(self, session: aiohttp.ClientSession, url: str) -> Page | None:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as resp:
            if resp.status != 200 or "html" not in resp.headers.get("content-type", ""):
                return None
            html = await resp.text()
        match = TITLE.search(html)
        title = match.group(1).strip() if match else url
        links = [urljoin(url, href) for href in HREF.findall(html)]
        return Page(url, title, [link for link in links if urlparse(link).netloc == self.host])

    async def sitemap_urls(self) -> list[str]:
        resp = requests.get(urljoin(self.root, "/sitemap.xml"), timeout=10)
        return re.findall(r"<loc>(.*?)</loc>", resp.text)

    async def crawl(self) -> list[Page]:
        self.load_robots()
        frontier = deque([self.root, *(await self.sitemap_urls())])
        async with aiohttp.ClientSession() as session:
            while frontier and len(self.pages) < self.max_pages:
                batch = [frontier.popleft() for _ in range(min(20, len(frontier)))]
                for url in batch:
                    if url in self.visited or not self.allowed(url):
                        continue
                    self.visited.append(url)
                    try:
                        page = await self.fetch(session, url)
                    except (TimeoutError, aiohttp.ClientError):
                        continue
                    if page is None:
                        continue
                    self.pages.append(page)
                    frontier.extend(page.links)
        return self.pages


def summarize(pages: list[Page]) -> str:
    lines = [f"{len(pages)} pages"]
    for page in sorted(pages, key=lambda p: p.url)[:20]:
        lines.append(f"- {page.title} ({page.url}, {len(page.links)} links)")
    return "\n".join(lines)


if __name__ == "__main__":
    crawler = Crawler("https://docs.example.org/")
    print(summarize(asyncio.run(crawler.crawl())))
