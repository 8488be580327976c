"""Pure routing functions: the query's type, and which node runs next."""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path

import numpy as np

from graph.state import State
from retrieval.chunking import CODE_EXTENSIONS
from retrieval.embeddings import Embedder

_SIGNALS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("comparison", re.compile(r"\b(compare|comparison|versus|vs\.?|differences? between|which is better)\b")),
    ("report", re.compile(r"\b(report|write[- ]up|status update|executive summary)\b")),
    ("code", re.compile(r"\b(code|function|class|method|bug|refactor|implementation|api|compile|"
                        r"exception|stack trace|performance|bottleneck|algorithm|module)\b")),
    ("decision", re.compile(r"\b(should i\b[^?]*\bor\b|shall i\b[^?]*\bor\b|should i (?:accept|take|quit|leave|"
                            r"move|buy|sell|hire|switch|sign|stay)|decide|decision|choose between|"
                            r"whether (?:i|to)|pros and cons|worth it)\b")),
    ("personal", re.compile(r"\b(what should i|my (?:life|career|goals?|week|day|year|health|habits?|strengths?|"
                            r"weaknesses|plans?|priorities|music|band|family)|about me|for me|i feel|myself)\b")),
    ("research", re.compile(r"\b(research|literature|evidence|state of the art|explain why|history of)\b")),
    ("document", re.compile(r"\b(document|paper|article|summari[sz]e|chapter|section)\b")),
)  # fmt: skip
EXAMPLES_FILE = Path(__file__).with_name("query_examples.toml")
EXAMPLE_FLOOR = 0.5  # cosine similarity to the nearest labelled example


@cache
def _examples() -> tuple[tuple[str, str], ...]:
    data = tomllib.loads(EXAMPLES_FILE.read_text(encoding="utf-8"))
    return tuple((query_type, q) for query_type, queries in data.items() for q in queries)


def _nearest_example(query: str, embedder: Embedder) -> tuple[str, str, float]:
    """The labelled example nearest the query (a graph's embedder caches the examples'
    vectors: graph.resources.CachedEmbedder)."""
    examples = _examples()
    vectors = embedder([q for _, q in examples] + [query])
    sims = vectors[:-1] @ vectors[-1]
    best = int(np.argmax(sims))
    return examples[best][0], examples[best][1], float(sims[best])


def classify_query(
    query: str, document_path: str = "", embedder: Embedder | None = None
) -> tuple[str, list[str]]:
    """The query's type and the reasons for it. Deterministic; needs no chat model.

    Signals in order: a source-code document; words in the query; the nearest
    labelled example query (when an embedder is given and it is close enough);
    a document of another kind; otherwise general.
    """
    text = query.lower()
    suffix = Path(document_path).suffix.lower() if document_path else ""
    if suffix in CODE_EXTENSIONS:
        return "code", [f"document is source code ({suffix})"]
    for query_type, pattern in _SIGNALS:
        match = pattern.search(text)
        if match:
            return query_type, [f"query mentions {match.group(0)!r}"]
    if embedder is not None:
        query_type, example, similarity = _nearest_example(query, embedder)
        if similarity >= EXAMPLE_FLOOR and not (document_path and query_type == "general"):
            return query_type, [f"close to the {query_type} example {example!r} ({similarity:.2f})"]
    if document_path:
        return "document", [f"a document is given ({suffix or 'no extension'}) and no other signal"]
    return "general", ["no signal for a more specific type"]


def next_stage(state: State, after: str | None) -> str:
    """The node after stage `after` (None: before the first stage) in this run's plan."""
    names = [stage["name"] for stage in state["plan"]]
    if after is None:
        return names[0]
    if after not in names:
        raise ValueError(f"stage {after!r} is not in the plan {names}")
    index = names.index(after)
    return names[index + 1] if index + 1 < len(names) else "report"


def route_after_stage(state: State, stage: str) -> str:
    """Repeat `stage` when the decision on its last attempt was to repeat it (see
    graph.confidence.decide); otherwise go on."""
    attempts = [r for r in state.get("results", []) if r["stage"] == stage]
    if not attempts:
        raise ValueError(f"stage {stage!r} has no result to route on")
    if attempts[-1]["verdict"] == "repeat":
        return stage
    return next_stage(state, stage)
