"""Translation-memory lookups for the CAT editor.

Exact matches are answered from the approved segments held in memory for
each language pair; anything else goes to Postgres, where the pg_trgm index
on `tm_segments.source_norm` finds fuzzy candidates.
"""

from __future__ import annotations

import asyncio
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass

import asyncpg

FUZZY_THRESHOLD = 0.72
MAX_SUGGESTIONS = 3

Pair = tuple[str, str]


@dataclass(frozen=True)
class Segment:
    source: str
    key: str
    target: str
    quality: int


@dataclass
class Suggestion:
    target: str
    score: float
    origin: str


def normalise(text: str) -> str:
    """Canonical form used for matching: NFC, case-folded, single spaces."""
    text = unicodedata.normalize("NFC", text).casefold()
    return " ".join(text.split())


class TranslationMemory:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._approved: dict[Pair, list[Segment]] = {}
        self._latency: dict[str, list[float]] = defaultdict(list)

    async def load(self, pair: Pair) -> int:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT source, target, quality FROM tm_segments"
                " WHERE src_lang = $1 AND tgt_lang = $2 AND approved",
                *pair,
            )
        self._approved[pair] = [
            Segment(r["source"], normalise(r["source"]), r["target"], r["quality"]) for r in rows
        ]
        return len(rows)

    def _exact(self, pair: Pair, key: str) -> Segment | None:
        best = None
        for seg in self._approved.get(pair, ()):
            if seg.key == key and (best is None or seg.quality > best.quality):
                best = seg
        return best

    async def _fuzzy(self, pair: Pair, key: str) -> list[Suggestion]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT target, similarity(source_norm, $3) AS score FROM tm_segments"
                " WHERE src_lang = $1 AND tgt_lang = $2 AND source_norm % $3"
                " ORDER BY score DESC LIMIT $4",
                pair[0], pair[1], key, MAX_SUGGESTIONS,
            )
        return [Suggestion(r["target"], float(r["score"]), "fuzzy")
                for r in rows if r["score"] >= FUZZY_THRESHOLD]

    async def suggest(self, pair: Pair, text: str) -> list[Suggestion]:
        key = normalise(text)
        exact = self._exact(pair, key)
        if exact is not None:
            return [Suggestion(exact.target, 1.0, "exact")]
        return await self._fuzzy(pair, key)

    async def suggest_document(self, client: str, pair: Pair,
                               sentences: list[str]) -> list[list[Suggestion]]:
        started = time.perf_counter()
        results = []
        for sentence in sentences:
            results.append(await self.suggest(pair, sentence))
        self._latency[client].append(time.perf_counter() - started)
        return results

    def latency_p95(self, client: str) -> float | None:
        samples = sorted(self._latency.get(client, ()))
        if not samples:
            return None
        return samples[min(len(samples) - 1, int(len(samples) * 0.95))]


async def create_memory(dsn: str, pairs: list[Pair]) -> TranslationMemory:
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=10, command_timeout=5)
    memory = TranslationMemory(pool)
    counts = await asyncio.gather(*(memory.load(pair) for pair in pairs))
    for pair, count in zip(pairs, counts):
        print(f"{pair[0]}->{pair[1]}: {count} approved segments")
    return memory


async def handle_pretranslate(memory: TranslationMemory, request: dict) -> dict:
    """Body of POST /pretranslate: {"client", "src", "tgt", "segments": [...]}"""
    pair = (request["src"], request["tgt"])
    suggestions = await memory.suggest_document(request["client"], pair, request["segments"])
    return {
        "segments": [
            {"source": s, "suggestions": [vars(x) for x in sugg]}
            for s, sugg in zip(request["segments"], suggestions)
        ],
        "p95_seconds": memory.latency_p95(request["client"]),
    }
