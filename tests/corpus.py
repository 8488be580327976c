"""A small project (two code files, a recipe note) and a user's notes, as `mirador index`
sees them: shared by the retrieval tests of both tiers and the Chroma server's."""

from __future__ import annotations

from pathlib import Path

PERSONA = """# About me

I am Matthew, a musician. My band They Came Bearing Arms released several EPs between 2009
and 2013, and my solo project After Annapurna ran from 2014 to 2023. All of my music is on
streaming platforms such as Spotify and Apple Music.

## Goals

This year I want to finish a new album, play twenty shows, and spend more time with my family.
I prefer working in the mornings and I dislike long meetings.
"""

STREAMER = '''"""Streams tokens from several model stages."""

import requests


class StreamingOrchestrator:
    def __init__(self, stages):
        self.stages = stages
        self.history = []  # every token ever streamed; never trimmed

    def process(self, query):
        context = ""
        for stage in self.stages:
            response = requests.post(stage.url, json={"prompt": context + query}, stream=True)
            for line in response.iter_lines():
                self.history.append(line)
                context = context + line.decode()  # quadratic string building
                yield line
'''

BILLING = '''def total(invoices):
    """Sum the amounts of paid invoices, in cents."""
    return sum(i.amount_cents for i in invoices if i.paid)


def overdue(invoices, today):
    return [i for i in invoices if not i.paid and i.due < today]
'''

RECIPES = """# Pancakes

Mix flour, eggs and milk. Rest the batter for ten minutes, then fry in butter.

# Tomato soup

Roast tomatoes with garlic, blend with stock, season with basil.
"""


def make_tree(tmp_path: Path) -> Path:
    """A project (two code files, a recipe note) and the user's notes, as `mirador index` sees them."""
    code = tmp_path / "project"
    (code / "src").mkdir(parents=True)
    (code / "src" / "orchestrator.py").write_text(STREAMER, encoding="utf-8")
    (code / "src" / "billing.py").write_text(BILLING, encoding="utf-8")
    (code / "docs").mkdir()
    (code / "docs" / "recipes.md").write_text(RECIPES, encoding="utf-8")
    notes = tmp_path / "me"
    notes.mkdir()
    (notes / "about.md").write_text(PERSONA, encoding="utf-8")
    return tmp_path


SEED_QUERY = "Analyze the streaming implementation patterns and identify potential performance bottlenecks"
