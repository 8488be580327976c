"""Polls subscribed podcast feeds and records new episodes.

Feeds are fetched with conditional GETs (ETag / Last-Modified) so unchanged
feeds cost a 304. New episodes are stored through the async repository and
picked up by the notifier service.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Protocol

import httpx

log = logging.getLogger("podwatch.poller")

POLL_INTERVAL = 900
USER_AGENT = "Podwatch/2.3 (+https://podwatch.example/bot)"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"


@dataclass
class Feed:
    feed_id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class Episode:
    guid: str
    title: str
    audio_url: str
    published: float | None
    duration: str | None


class EpisodeRepo(Protocol):
    async def active_feeds(self) -> list[Feed]: ...
    async def episodes_for(self, feed_id: int) -> list[Episode]: ...
    async def add_episodes(self, feed_id: int, episodes: list[Episode]) -> None: ...
    async def save_validators(self, feed: Feed) -> None: ...


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def parse_feed(body: bytes) -> list[Episode]:
    root = ET.fromstring(body)
    episodes = []
    for item in root.iter("item"):
        enclosure = item.find("enclosure")
        if enclosure is None or not enclosure.get("url"):
            continue
        guid = (item.findtext("guid") or enclosure.get("url", "")).strip()
        episodes.append(Episode(
            guid=guid,
            title=(item.findtext("title") or "").strip(),
            audio_url=enclosure.get("url", ""),
            published=_timestamp(item.findtext("pubDate")),
            duration=item.findtext(f"{ITUNES}duration"),
        ))
    return episodes


class FeedPoller:
    def __init__(self, repo: EpisodeRepo) -> None:
        self.repo = repo

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers={"User-Agent": USER_AGENT},
                                 timeout=httpx.Timeout(20.0), follow_redirects=True)

    async def _fetch(self, client: httpx.AsyncClient, feed: Feed) -> bytes | None:
        headers = {}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        resp = await client.get(feed.url, headers=headers)
        if resp.status_code == 304:
            return None
        resp.raise_for_status()
        feed.etag = resp.headers.get("ETag")
        feed.last_modified = resp.headers.get("Last-Modified")
        return resp.content

    async def _new_episodes(self, feed: Feed, episodes: list[Episode]) -> list[Episode]:
        known = await self.repo.episodes_for(feed.feed_id)
        fresh: list[Episode] = []
        for episode in episodes:
            if episode.guid not in [e.guid for e in known + fresh]:
                fresh.append(episode)
        return fresh

    async def poll_once(self) -> int:
        client = self._client()
        added = 0
        for feed in await self.repo.active_feeds():
            try:
                body = await self._fetch(client, feed)
                if body is None:
                    continue
                episodes = parse_feed(body)
            except (httpx.HTTPError, ET.ParseError) as exc:
                log.warning("feed %s: %s", feed.url, exc)
                continue
            fresh = await self._new_episodes(feed, episodes)
            if fresh:
                await self.repo.add_episodes(feed.feed_id, fresh)
                added += len(fresh)
            await self.repo.save_validators(feed)
        return added

    async def run(self) -> None:
        while True:
            added = await self.poll_once()
            log.info("poll finished, %d new episodes", added)
            await asyncio.sleep(POLL_INTERVAL)
