"""Confidence in a stage's output, computed from signals that are measured one by one.

Each signal is in [0, 1]:

- relevance: embedding similarity of the output to the question and the
  document under analysis (0.3 query + 0.7 document when there is one),
  mapped from [0.1, 0.4] onto [0, 1]. It catches answers that are off the
  question altogether; it is a coarse signal, not a judge of quality.
- novelty: 1 minus how much the output repeats the most similar earlier
  stage, taken as the largest of (a) the share of its 8-word spans found in
  that stage's output, (b) the share of its lines copied from it, and (c)
  embedding similarity above 0.85, mapped onto [0, 1]. A copy scores near 0.
- hygiene: 1 minus the share of the raw output that cleaning removed.
- completeness: 1 finished, 0.8 cut off by the token cap, 0.5 stopped by the
  timeout, 0 empty or failed.
- token_probability: the mean probability the model gave the tokens it chose
  (llama.cpp reports it; absent for backends that do not).
- echo: 1 minus the share of the stage's own lines (those not copied from an
  earlier stage) that restate its instructions (most of their words are the
  instructions' words).
- grounding (analysts on a document): the share of the stage's findings whose
  quoted code the document holds; absent when there is nothing to ground.

confidence = completeness × min(weighted mean, weakest signal + 0.15), with
weights relevance 0.2, novelty 0.25, echo 0.15, grounding 0.15, hygiene 0.1,
token_probability 0.15 (renormalised when a signal is absent). The cap makes one
failed signal decisive: a copy or an output that is mostly loop cannot be rescued
by the others.

`decide` turns an attempt's status, confidence and signals into the graph's one
decision about it (pass, repeat, kept, dropped, failed); the router reads that field.
A copy (novelty under 0.5) or an echo (echo under 0.5) is never passed: it is
repeated with a correction, and dropped at the repeat limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graph.findings import Finding
from graph.state import FAILED, StageResult, Verdict, kept_results
from retrieval.embeddings import Embedder

WEIGHTS = {"relevance": 0.2, "novelty": 0.25, "echo": 0.15, "grounding": 0.15, "hygiene": 0.1,
           "token_probability": 0.15}  # fmt: skip
COPY, ECHO = 0.5, 0.5  # novelty or echo under these: the attempt is a copy or an echo
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
    """One unit vector for a text of any length: the mean of its chunks' vectors. A graph's
    embedder caches those (graph.resources.CachedEmbedder): a run embeds the same query,
    document and earlier outputs at every stage."""
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


def _lines(text: str) -> list[str]:
    """The output's lines that say something: five words or more."""
    return [line for line in text.splitlines() if len(_WORD.findall(line)) >= 5]


def copied_lines(text: str, earlier: str) -> list[str]:
    """The output's lines that an earlier output already holds (most of their 5-word spans)."""
    return [line for line in _lines(text) if span_overlap(line, earlier, n=5) >= 0.6]


def novelty(embedder: Embedder, text: str, earlier: dict[str, str]) -> tuple[float, str]:
    """Novelty against the earlier stages' outputs, and the stage it is closest to: 1 minus
    the largest of the share of its 8-word spans found in one stage, embedding similarity
    above 0.85 to one stage, and the share of its lines copied from the earlier stages
    together (a summary stitched from three stages' sentences is a copy of all three)."""
    if not earlier:
        return 1.0, ""
    out = embed_text(embedder, text)
    lines = _lines(text)
    stitched = len(copied_lines(text, "\n".join(earlier.values()))) / len(lines) if lines else 0.0
    copied = {stage: len(copied_lines(text, previous)) for stage, previous in earlier.items()}
    worst, closest = 0.0, ""
    for stage, previous in earlier.items():
        similarity = _clamp((float(out @ embed_text(embedder, previous)) - 0.85) / 0.15)
        repeat = max(span_overlap(text, previous), similarity)
        if (repeat, copied[stage]) >= (worst, copied.get(closest, -1)):
            worst, closest = repeat, stage
    if stitched > worst:  # name the stage it took the most lines from
        closest = max(copied, key=lambda stage: copied[stage])
    return round(1.0 - max(worst, stitched), 3), closest


_STOP_WORDS = """a an and are as at be by for from how in is it its of on or so that the this to what when
which with you your do does not only one each then than into"""
_STOP = frozenset(_STOP_WORDS.split())


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def echo(text: str, instructions: str, earlier: dict[str, str] | None = None, query: str = "") -> float:
    """1 minus the share of the stage's own lines (of 5+ content words, not copied from an
    earlier stage) that restate its instructions: most of their content words are the
    instructions' own. The question's words do not count: an answer restates its question."""
    told = _content(instructions) - _content(query)
    before = "\n".join((earlier or {}).values())
    copied = set(copied_lines(text, before)) if before else set()
    own = [c for line in text.splitlines() if line not in copied and len(c := _content(line)) >= 5]
    if not own or not told:
        return 1.0
    echoed = sum(len(c & told) / len(c) >= 0.6 for c in own)
    return round(1.0 - echoed / len(own), 3)


def substantive(reason: str, instructions: str) -> bool:
    """A reason with four or more content words of its own (not the instructions')."""
    return len(_content(reason) - _content(instructions)) >= 4


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
    instructions: str = "",
    grounded: tuple[int, int] | None = None,
) -> tuple[float, dict[str, float | None], str]:
    """The stage's confidence, its signals, and the earlier stage it is closest to.
    `grounded` is (findings whose code the document holds, findings set aside)."""
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
        "echo": echo(text, instructions, earlier, query),
        "grounding": round(grounded[0] / sum(grounded), 3) if grounded and sum(grounded) else None,
        "hygiene": hygiene(raw, removed),
        "completeness": COMPLETENESS.get(status, 0.0),
        "token_probability": None if token_probability is None else round(token_probability, 3),
    }
    return combine(signals, status), signals, closest


def _echoed(signals: dict[str, float | None]) -> bool:
    value = signals.get("echo")
    return value is not None and value < ECHO


def problems(signals: dict[str, float | None], closest: str) -> list[str]:
    """Plain words for what pulled a stage's confidence down (the note for a repeat)."""
    found = []
    if (signals.get("novelty") or 0.0) < COPY and closest:
        found.append(f"repeated the {closest} stage")
    if _echoed(signals):
        found.append("restated its own instructions")
    if signals.get("grounding") is not None and (signals["grounding"] or 0.0) < 0.5:
        found.append("cited code the document does not hold")
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


@dataclass(frozen=True)
class Attempt:
    """One run of a stage, assessed: what it said, how it scored, and what happens next."""

    text: str
    removed: dict[str, int]
    status: str
    confidence: float
    signals: dict[str, float | None]
    verdict: Verdict
    reasons: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    set_aside: list[dict[str, Any]] = field(default_factory=list)


def decide(
    status: str,
    confidence: float,
    signals: dict[str, float | None],
    closest: str,
    min_confidence: float,
    attempt: int,
    max_repeats: int,
) -> tuple[Verdict, tuple[str, ...]]:
    """The graph's decision about an attempt, and why. A copy or an echo is never passed."""
    if status in FAILED:
        return "failed", (status,)
    reasons = tuple(problems(signals, closest))
    copied = (signals.get("novelty") or 0.0) < COPY and bool(closest)
    echoed = _echoed(signals)
    if confidence >= min_confidence and not copied and not echoed:
        return "pass", ()
    reasons = reasons or ("scored low",)
    if attempt <= max_repeats:
        return "repeat", reasons
    return ("dropped" if copied or echoed else "kept"), reasons


def describe(verdict: Verdict, reasons: tuple[str, ...] | list[str]) -> str:
    """The decision in words, as the report and the stream show it."""
    what = " and ".join(reasons)
    return {
        "repeat": f"repeated: {what}",
        "kept": f"kept at its repeat limit: {what}",
        "dropped": f"dropped at its repeat limit: {what}",
    }.get(verdict, "")
