"""Two-way room-booking calendar sync.

Every five minutes the sync worker pulls changed events from each meeting
room's calendar on the groupware server and upserts them into the booking
database used by the office kiosk app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import asyncpg
import httpx

log = logging.getLogger("rooms.calsync")

TOKEN_URL = "https://login.groupware.example.com/oauth2/token"
API_TIMEOUT = httpx.Timeout(10.0, connect=3.0)


@dataclass
class Room:
    room_id: int
    calendar_id: str
    name: str


@dataclass
class Booking:
    event_id: str
    room_id: int
    title: str
    organizer: str
    starts_at: datetime
    ends_at: datetime
    cancelled: bool


class GroupwareClient:
    def __init__(self, base_url: str, client_id: str, client_secret: str) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=API_TIMEOUT)
        self._client_id = client_id
        self._client_secret = client_secret
        self._token: str | None = None
        self._token_expiry = 0.0
        self._token_lock = asyncio.Lock()

    async def _bearer(self) -> str:
        async with self._token_lock:
            if self._token and time.time() < self._token_expiry - 60:
                return self._token
            resp = httpx.post(
                TOKEN_URL,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "scope": "calendars.read",
                },
                timeout=10.0,
            )
            resp.raise_for_status()
            payload = resp.json()
            self._token = payload["access_token"]
            self._token_expiry = time.time() + payload["expires_in"]
            return self._token

    async def _get(self, path: str, **params) -> dict:
        headers = {"Authorization": f"Bearer {await self._bearer()}"}
        resp = await self._http.get(path, params=params, headers=headers)
        resp.raise_for_status()
        return resp.json()

    async def changed_events(self, calendar_id: str, since: datetime) -> list[dict]:
        listing = await self._get(
            f"/calendars/{calendar_id}/events",
            updatedMin=since.isoformat(),
            showDeleted="true",
            fields="items(id)",
        )
        events = []
        for item in listing.get("items", []):
            events.append(await self._get(f"/calendars/{calendar_id}/events/{item['id']}"))
        return events

    async def aclose(self) -> None:
        await self._http.aclose()


def to_booking(room: Room, ev: dict) -> Booking:
    return Booking(
        event_id=ev["id"],
        room_id=room.room_id,
        title=ev.get("summary", "(no title)")[:200],
        organizer=ev.get("organizer", {}).get("email", ""),
        starts_at=datetime.fromisoformat(ev["start"]["dateTime"]),
        ends_at=datetime.fromisoformat(ev["end"]["dateTime"]),
        cancelled=ev.get("status") == "cancelled",
    )


class CalendarSync:
    def __init__(self, api: GroupwareClient, pool: asyncpg.Pool) -> None:
        self.api = api
        self.pool = pool

    async def sync_room(self, room: Room, since: datetime) -> int:
        events = await self.api.changed_events(room.calendar_id, since)
        bookings = [to_booking(room, ev) for ev in events if "dateTime" in ev.get("start", {})]
        async with self.pool.acquire() as conn:
            await conn.executemany(
                """
                INSERT INTO bookings (event_id, room_id, title, organizer, starts_at, ends_at, cancelled)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (event_id) DO UPDATE SET title = EXCLUDED.title, starts_at = EXCLUDED.starts_at,
                    ends_at = EXCLUDED.ends_at, cancelled = EXCLUDED.cancelled
                """,
                [(b.event_id, b.room_id, b.title, b.organizer, b.starts_at, b.ends_at, b.cancelled) for b in bookings],
            )
        return len(bookings)

    async def sync_all(self, rooms: list[Room], window: timedelta = timedelta(minutes=10)) -> dict[str, int]:
        since = datetime.now(timezone.utc) - window
        counts: dict[str, int] = {}
        for room in rooms:
            try:
                counts[room.name] = await self.sync_room(room, since)
            except httpx.HTTPError as exc:
                log.warning("sync failed for %s: %s", room.name, exc)
                counts[room.name] = -1
        return counts
