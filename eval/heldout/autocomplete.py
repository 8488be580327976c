"""Search-box autocomplete backed by the product catalogue.

The index is rebuilt from SQLite at start-up and every night; `suggest` answers prefix
queries from the in-memory sorted term list and ranks matches by search popularity.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
import unicodedata
from contextlib import closing
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger("autocomplete")

MAX_SUGGESTIONS = 8
MIN_PREFIX = 2


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in folded if not unicodedata.combining(ch)).strip()


@dataclass(frozen=True)
class Suggestion:
    term: str
    popularity: int


class AutocompleteIndex:
    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._terms: list[str] = []
        self._display: dict[str, str] = {}
        self._answers: dict[str, list[Suggestion]] = {}
        self._db = sqlite3.connect(db_path, check_same_thread=False)

    def rebuild(self) -> int:
        """Reload every product title and tag; returns the number of distinct terms."""
        terms: list[str] = []
        display: dict[str, str] = {}
        with closing(sqlite3.connect(self.db_path)) as conn:
            rows = conn.execute(
                "SELECT title FROM products WHERE active = 1 "
                "UNION ALL SELECT tag FROM product_tags"
            ).fetchall()
        for (raw,) in rows:
            term = normalise(raw)
            if len(term) < MIN_PREFIX:
                continue
            if term not in terms:
                terms.append(term)
                display[term] = raw.strip()
        terms.sort()
        self._terms = terms
        self._display = display
        self._answers = {}
        log.info("autocomplete index rebuilt: %d terms", len(terms))
        return len(terms)

    def _prefix_range(self, prefix: str) -> list[str]:
        lo = bisect.bisect_left(self._terms, prefix)
        hi = bisect.bisect_right(self._terms, prefix + "\uffff")
        return self._terms[lo:hi]

    def _popularity(self, term: str) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(hits), 0) FROM search_log WHERE term = ?", (term,)
        ).fetchone()
        return int(row[0])

    def suggest(self, query: str) -> list[Suggestion]:
        prefix = normalise(query)
        if len(prefix) < MIN_PREFIX:
            return []
        cached = self._answers.get(prefix)
        if cached is not None:
            return cached
        candidates = self._prefix_range(prefix)
        ranked = sorted(
            (Suggestion(self._display[t], self._popularity(t)) for t in candidates),
            key=lambda s: (-s.popularity, s.term),
        )
        answer = ranked[:MAX_SUGGESTIONS]
        self._answers[prefix] = answer
        return answer

    def record_search(self, query: str) -> None:
        term = normalise(query)
        with self._db:
            self._db.execute(
                "INSERT INTO search_log(term, hits) VALUES (?, 1) "
                "ON CONFLICT(term) DO UPDATE SET hits = hits + 1",
                (term,),
            )

    def close(self) -> None:
        self._db.close()
