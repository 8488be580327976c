"""Builds the inverted index for the internal docs search.

Walks the exported knowledge base (markdown files), tokenizes every page in
a process pool, merges the per-page term lists into postings and stores the
result in the SQLite file the search frontend reads.
"""
from __future__ import annotations

import logging
import math
import multiprocessing as mp
import re
import sqlite3
import sys
from collections import Counter, defaultdict
from pathlib import Path

log = logging.getLogger("indexer")

TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9_\-]{1,40}")
FRONT_MATTER_RE = re.compile(r"\A---\n.*?\n---\n", re.S)
STOPWORDS_FILE = Path(__file__).with_name("stopwords.txt")
MIN_DF = 2


def tokenize(text: str) -> list[str]:
    stopwords = set(STOPWORDS_FILE.read_text(encoding="utf-8").split())
    text = FRONT_MATTER_RE.sub("", text.lower())
    return [tok for tok in TOKEN_RE.findall(text) if tok not in stopwords]


def analyse(path: Path) -> tuple[str, str, Counter]:
    text = path.read_text(encoding="utf-8", errors="replace")
    title = next((line.lstrip("# ").strip() for line in text.splitlines() if line.startswith("#")), path.stem)
    return str(path), title, Counter(tokenize(text))


class IndexBuilder:
    def __init__(self, root: Path, db_path: Path, workers: int | None = None):
        self.root = root
        self.db_path = db_path
        self.workers = workers or max(1, mp.cpu_count() - 1)
        self.docs: list[tuple[str, str, int]] = []
        self.postings: dict[str, list[int]] = defaultdict(list)
        self.freqs: dict[tuple[str, int], int] = {}

    def build(self) -> int:
        pages = sorted(self.root.rglob("*.md"))
        if not pages:
            raise SystemExit(f"no pages under {self.root}")
        pool = mp.Pool(self.workers)
        for path, title, counts in pool.imap_unordered(analyse, pages, chunksize=32):
            doc_id = len(self.docs)
            self.docs.append((path, title, sum(counts.values())))
            for term, n in counts.items():
                if doc_id not in self.postings[term]:
                    self.postings[term].append(doc_id)
                self.freqs[(term, doc_id)] = n
        self._write()
        return len(self.docs)

    def _write(self) -> None:
        n_docs = len(self.docs)
        tmp = self.db_path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp)
        try:
            with conn:
                conn.executescript(
                    """
                    CREATE TABLE docs (id INTEGER PRIMARY KEY, path TEXT, title TEXT, length INTEGER);
                    CREATE TABLE postings (term TEXT, doc_id INTEGER, tf INTEGER, idf REAL);
                    """
                )
                conn.executemany("INSERT INTO docs VALUES (?, ?, ?, ?)", ((i, *d) for i, d in enumerate(self.docs)))
                for term, doc_ids in self.postings.items():
                    if len(doc_ids) < MIN_DF:
                        continue
                    idf = math.log(n_docs / len(doc_ids))
                    conn.executemany(
                        "INSERT INTO postings VALUES (?, ?, ?, ?)",
                        ((term, d, self.freqs[(term, d)], idf) for d in doc_ids),
                    )
                conn.execute("CREATE INDEX postings_term ON postings (term)")
        finally:
            conn.close()
        tmp.replace(self.db_path)


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    root, db = Path(sys.argv[1]), Path(sys.argv[2])
    count = IndexBuilder(root, db).build()
    log.info("indexed %d pages into %s", count, db)


if __name__ == "__main__":
    main()
