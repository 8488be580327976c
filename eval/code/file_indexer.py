"""Indexes a folder of text files into a word -> files map for the desktop search box."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections import defaultdict
from pathlib import Path

WORD = re.compile(r"[a-zA-Z][a-zA-Z0-9_]{2,}")
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".py", ".toml", ".json"}
STOP_WORDS = frozenset({"the", "and", "for", "with", "that", "this", "from", "are", "was"})


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


class Indexer:
    def __init__(self, root: Path, workers: int = 4) -> None:
        self.root = root
        self.workers = workers
        self.index: dict[str, list[str]] = defaultdict(list)
        self.seen_digests: set[str] = set()
        self.skipped: list[str] = []

    def candidates(self) -> list[Path]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                path = Path(dirpath, name)
                if path.suffix.lower() in TEXT_SUFFIXES:
                    found.append(path)
        return found

    async def index_file(self, path: Path) -> None:
        key = await asyncio.to_thread(digest, path)
        if key in self.seen_digests:
            self.skipped.append(str(path))
            return
        self.seen_digests.add(key)
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        rel = str(path.relative_to(self.root))
        for word in WORD.findall(text):
            word = word.lower()
            if word in STOP_WORDS:
                continue
            files = self.index[word]
            if rel not in files:
                files.append(rel)

    async def _worker(self, queue: asyncio.Queue[Path]) -> None:
        while True:
            path = await queue.get()
            try:
                await self.index_file(path)
            except OSError as exc:
                self.skipped.append(f"{path}: {exc}")
            finally:
                queue.task_done()

    async def build(self) -> dict[str, list[str]]:
        queue: asyncio.Queue[Path] = asyncio.Queue()
        for path in self.candidates():
            queue.put_nowait(path)
        tasks = [asyncio.create_task(self._worker(queue)) for _ in range(self.workers)]
        await queue.join()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return dict(self.index)

    def search(self, query: str) -> list[str]:
        words = [w.lower() for w in WORD.findall(query)]
        if not words:
            return []
        hits = set(self.index.get(words[0], []))
        for word in words[1:]:
            hits &= set(self.index.get(word, []))
        return sorted(hits)


if __name__ == "__main__":
    import sys

    indexer = Indexer(Path(sys.argv[1]))
    index = asyncio.run(indexer.build())
    print(len(index), "words;", len(indexer.skipped), "skipped")
    print(indexer.search(" ".join(sys.argv[2:]))[:20])
