"""Game leaderboard service: records match results and serves the season's top players."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import asyncpg

K_FACTOR = 24
TOP_N = 50


@dataclass
class Entry:
    player_id: int
    name: str
    country: str
    rating: float
    wins: int


def expected(rating_a: float, rating_b: float) -> float:
    return 1 / (1 + 10 ** ((rating_b - rating_a) / 400))


class Leaderboard:
    def __init__(self, pool: asyncpg.Pool, cache_s: float = 30.0) -> None:
        self.pool = pool
        self.cache_s = cache_s
        self._cached: tuple[float, list[Entry]] | None = None
        self._lock = threading.Lock()

    async def current_season(self) -> int:
        return await self.pool.fetchval("SELECT id FROM seasons WHERE now() BETWEEN starts AND ends")

    async def record_match(self, winner: int, loser: int) -> tuple[float, float]:
        season = await self.current_season()
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT player_id, rating FROM ratings WHERE season = $1 AND player_id = ANY($2) FOR UPDATE",
                season,
                [winner, loser],
            )
            ratings = {r["player_id"]: r["rating"] for r in rows}
            rw, rl = ratings.get(winner, 1500.0), ratings.get(loser, 1500.0)
            delta = K_FACTOR * (1 - expected(rw, rl))
            await conn.executemany(
                "INSERT INTO ratings (season, player_id, rating, wins) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (season, player_id) DO UPDATE SET rating = $3, wins = ratings.wins + $4",
                [(season, winner, rw + delta, 1), (season, loser, rl - delta, 0)],
            )
        self._cached = None
        return rw + delta, rl - delta

    async def _load_top(self) -> list[Entry]:
        season = await self.current_season()
        rows = await self.pool.fetch(
            "SELECT player_id, rating, wins FROM ratings WHERE season = $1 ORDER BY rating DESC LIMIT $2",
            season,
            TOP_N,
        )
        entries = []
        for row in rows:
            player = await self.pool.fetchrow(
                "SELECT name, country FROM players WHERE id = $1", row["player_id"]
            )
            entries.append(
                Entry(row["player_id"], player["name"], player["country"], row["rating"], row["wins"])
            )
        return entries

    async def top(self) -> list[Entry]:
        with self._lock:
            cached = self._cached
            if cached is None or time.monotonic() - cached[0] > self.cache_s:
                entries = await self._load_top()
                self._cached = (time.monotonic(), entries)
                cached = self._cached
        return cached[1]

    async def rank_of(self, player_id: int) -> int | None:
        for position, entry in enumerate(await self.top(), start=1):
            if entry.player_id == player_id:
                return position
        return None


async def main(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn)
    board = Leaderboard(pool)
    await board.record_match(1, 2)
    print([(e.name, round(e.rating)) for e in await board.top()][:10])
    await asyncio.gather(board.rank_of(1), board.rank_of(2))


if __name__ == "__main__":
    import sys

    asyncio.run(main(sys.argv[1]))
