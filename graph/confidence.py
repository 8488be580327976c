"""Confidence in a stage's output, computed from signals that are measured one by one.

Each signal is in [0, 1]:

- relevance: embedding similarity of the output to the question and the
  document under analysis (0.3 query + 0.7 document when there is one),
  mapped from [0.1, 0.4] onto [0, 1]. It catches answers that are off the
  question altogether; it is a coarse signal, not a judge of quality.
- novelty: 1 minus how much the output repeats the most similar earlier
  stage, taken as the larger of (a) the share of its 8-word spans found in
  that stage's output and (b) embedding similarity above 0.85, mapped
  onto [0, 1]. A copy scores near 0.
- hygiene: 1 minus the share of the raw output that cleaning removed.
- completeness: 1 finished, 0.8 cut off by the token cap, 0.5 stopped by the
  timeout, 0 empty or failed.
- token_probability: the mean probability the model gave the tokens it chose
  (llama.cpp reports it; absent for backends that do not).

confidence = completeness × min(weighted mean, weakest signal + 0.15), with
weights relevance 0.3, novelty 0.3, hygiene 0.2, token_probability 0.2
(renormalised when a signal is absent). The cap makes one failed signal
decisive: a copy or an output that is mostly loop cannot be rescued by the others.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from functools import lru_cache
from typing import Any, cast

import numpy as np

from graph.state import StageResult, kept_results
from retrieval.embeddings import Embedder

WEIGHTS = {"relevance": 0.3, "novelty": 0.3, "hygiene": 0.2, "token_probability": 0.2}
CAP_MARGIN = 0.15
COMPLETENESS = {"ok": 1.0, "truncated": 0.8, "timeout": 0.5, "empty": 0.0, "error": 0.0}
SPAN_WORDS = 8
_WORD = re.compile(r"[a-z0-9_]+")


def _clamp(value: float) -> float:
    return float(min(1.0, max(0.0, value)))


def _chunks(text: str, words: int = 150) -> list[str]:
    """MiniLM reads about 256 word pieces; longer texts are embedded in pieces and averaged."""
    tokens = text.split()
    return [" ".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [""]


def embed_text(embedder: Embedder, text: str) -> np.ndarray:
    """One unit vector for a text of any length. Cached: a run embeds the same query,
    document and earlier outputs at every stage; the returned array is not to be modified."""
    return _embed_text(cast(Hashable, embedder), text)


@lru_cache(maxsize=256)
def _embed_text(embedder: Any, text: str) -> np.ndarray:  # embedders are plain (hashable) functions
    vectors = embedder(_chunks(text))
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm else mean


def span_overlap(text: str, earlier: str, n: int = SPAN_WORDS) -> float:
    """Share of `text`'s n-word spans that also occur in `earlier`."""
    words, before = _WORD.findall(text.lower()), _WORD.findall(earlier.lower())
    spans = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    if not spans:
        return 0.0
    seen = {tuple(before[i : i + n]) for i in range(len(before) - n + 1)}
    return len(spans & seen) / len(spans)


def relevance(embedder: Embedder, text: str, query: str, document: str) -> float:
    out = embed_text(embedder, text)
    sim = float(out @ embed_text(embedder, query))
    if document.strip():
        sim = 0.3 * sim + 0.7 * float(out @ embed_text(embedder, document))
    return round(_clamp((sim - 0.1) / 0.3), 3)


def novelty(embedder: Embedder, text: str, earlier: dict[str, str]) -> tuple[float, str]:
    """Novelty against the earlier stages' outputs, and the stage it is closest to."""
    if not earlier:
        return 1.0, ""
    out = embed_text(embedder, text)
    worst, closest = 0.0, ""
    for stage, previous in earlier.items():
        similarity = _clamp((float(out @ embed_text(embedder, previous)) - 0.85) / 0.15)
        repeat = max(span_overlap(text, previous), similarity)
        if repeat >= worst:
            worst, closest = repeat, stage
    return round(1.0 - worst, 3), closest


def hygiene(raw: str, removed: dict[str, int]) -> float:
    if not raw:
        return 1.0
    return round(_clamp(1.0 - sum(removed.values()) / len(raw)), 3)


def combine(signals: dict[str, float | None], status: str) -> float:
    present = {k: v for k, v in signals.items() if k in WEIGHTS and v is not None}
    mean = sum(WEIGHTS[k] * v for k, v in present.items()) / sum(WEIGHTS[k] for k in present)
    capped = min(mean, min(present.values()) + CAP_MARGIN)
    return round(COMPLETENESS.get(status, 0.0) * capped, 3)


def score(
    embedder: Embedder,
    *,
    text: str,
    raw: str,
    removed: dict[str, int],
    status: str,
    query: str,
    document: str,
    earlier: dict[str, str],
    token_probability: float | None,
) -> tuple[float, dict[str, float | None], str]:
    """The stage's confidence, its signals, and the earlier stage it is closest to."""
    if not text:
        signals: dict[str, float | None] = {
            "relevance": 0.0, "novelty": 0.0, "hygiene": hygiene(raw, removed),
            "completeness": 0.0, "token_probability": token_probability,
        }  # fmt: skip
        return 0.0, signals, ""
    new, closest = novelty(embedder, text, earlier)
    signals = {
        "relevance": relevance(embedder, text, query, document),
        "novelty": new,
        "hygiene": hygiene(raw, removed),
        "completeness": COMPLETENESS.get(status, 0.0),
        "token_probability": None if token_probability is None else round(token_probability, 3),
    }
    return combine(signals, status), signals, closest


def problems(signals: dict[str, float | None], closest: str) -> list[str]:
    """Plain words for what pulled a stage's confidence down (the note for a repeat)."""
    found = []
    if (signals.get("novelty") or 0.0) < 0.5 and closest:
        found.append(f"repeated the {closest} stage")
    if (signals.get("relevance") or 0.0) < 0.4:
        found.append("was off the question")
    if (signals.get("hygiene") or 0.0) < 0.6:
        found.append("was mostly template echo or repetition")
    if signals.get("completeness") == 0.0:
        found.append("was empty")
    elif (signals.get("completeness") or 0.0) < 1.0:
        found.append("was cut off")
    tp = signals.get("token_probability")
    if tp is not None and tp < 0.4:
        found.append("was uncertain")
    return found


def chain_confidence(results: list[StageResult]) -> float:
    """Mean confidence of the stages run so far (best attempts; failures count as 0)."""
    ran = [r["confidence"] or 0.0 for r in kept_results(results) if r["status"] != "skipped"]
    return round(sum(ran) / len(ran), 3) if ran else 0.0
