"""The graph's typed state: what a run carries from stage to stage."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from graph.chains import EmbeddedChoice, FindingKind, QueryType, Role
from graph.findings import Finding

# pass: kept and passed on; repeat: run again with a correction; kept: at the repeat limit,
# kept with a warning; dropped: at the limit but a copy or an echo, so never passed on;
# failed: the model raised or timed out; skipped: not run (query type, early exit).
Verdict = Literal["pass", "repeat", "kept", "dropped", "failed", "skipped"]

# How a stage's model call ended: ok; truncated (stopped at its token cap); empty (nothing
# left after cleaning); timeout; error (the model raised); skipped (not run).
Status = Literal["ok", "truncated", "empty", "timeout", "error", "skipped"]
ANSWERED: tuple[Status, ...] = ("ok", "truncated")  # the model answered, whole or cut at its cap
FAILED: tuple[Status, ...] = ("error", "timeout")  # the model raised or ran out of time


class PlanEntry(TypedDict):
    """One stage of the run's plan: a StageSpec as resolved for this run (StageSpec.to_dict)."""

    name: str
    model: str
    title: str
    role: Role
    prompt: str
    backend: str
    base_url: str
    api_key_env: str
    embedded: Literal["", EmbeddedChoice]
    kind: Literal["", FindingKind]
    temperature: float
    max_tokens: int
    num_ctx: int
    keep_alive: str
    timeout_s: float
    min_confidence: float
    max_repeats: int
    optional: bool
    applies_to: tuple[QueryType, ...]


class Passage(TypedDict):
    """A retrieved chunk in every stage's prompt, numbered for citation as [n]."""

    n: int
    text: str
    source: str
    line_start: int
    line_end: int
    language: str
    kind: str
    score: float  # cosine similarity to the query


class StageResult(TypedDict):
    """One stage's outcome, as stored, reported and streamed."""

    stage: str
    title: str
    role: str
    model: str  # the model that actually ran
    backend: str  # "embedded", "ollama" or "openai"
    base_url: str  # the server it ran on; "" in-process
    attempt: int  # 1, then 2... when the stage is repeated
    text: str  # cleaned output, what later stages see
    status: Status
    error: str
    note: str  # why it was skipped, repeated, or kept at its repeat limit
    first_token_s: float | None  # from the model call to its first token
    total_s: float
    tokens: int
    tokens_per_s: float
    finish_reason: str | None  # as the model said: "stop", "length"...; None when it failed
    usage: dict[str, int] | None  # the server's count (input_tokens, output_tokens), where it sends one
    num_ctx: int | None  # the context window sent to Ollama; None on other backends
    prompt_estimate: int | None  # Mirador's estimate of the prompt's tokens (Ollama stages)
    context_overflow: str  # why the prompt did not fit its Ollama context; "" when it did
    removed: dict[str, int]  # what cleaning took out, by kind
    confidence: float | None  # None when skipped
    signals: dict[str, float | None]  # relevance, novelty, echo, grounding, hygiene, completeness, ...
    verdict: Verdict  # what the graph did with this attempt (graph.confidence.decide)
    reasons: list[str]  # why, in plain words ("repeated the cost stage", "echoed its instructions")
    findings: list[Finding]  # an analyst's own findings, grounded in the document
    verdicts: list[dict[str, Any]]  # an analyst's judgement of each check finding it was shown
    set_aside: list[dict[str, Any]]  # findings whose code the document does not hold


MAX_TURNS = 3  # earlier turns a thread keeps for follow-ups


def add_or_reset(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Append; `None` starts the list afresh (each run in a thread starts with no results)."""
    return [] if right is None else [*(left or []), *right]


def add_turn(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Append finished turns, keeping only the last MAX_TURNS."""
    return [*(left or []), *(right or [])][-MAX_TURNS:]


class InputState(TypedDict):
    """What a caller sets: the question and, optionally, a document to analyse."""

    query: str
    document_path: NotRequired[str]


class OutputState(TypedDict, total=False):
    """What a run returns."""

    query: str
    query_type: str
    query_type_reasons: list[str]
    chain: str
    warm: list[dict[str, Any]]
    retrieved: list[Passage]
    facts: list[Finding] | None
    findings: list[Finding]
    results: list[StageResult]
    summary: str
    report_path: str
    json_path: str
    errors: list[str]
    turn: int


class State(InputState, total=False):
    query_type: str
    query_type_reasons: list[str]
    document_text: str
    chain: str
    early_exit: float | None
    plan: list[PlanEntry]  # the chain's stages as resolved for this run
    retrieved: list[Passage]  # passages in every stage's prompt
    facts: list[Finding] | None  # the checks' findings on a code document (None: no checks ran)
    retrieval_notes: list[str]
    backend_notes: list[str]
    warm: list[dict[str, Any]]  # each Ollama model loaded before the first stage: status, seconds, error
    started_at: str
    results: Annotated[list[StageResult], add_or_reset]
    errors: Annotated[list[str], add_or_reset]
    history: Annotated[list[dict[str, Any]], add_turn]  # earlier turns of this thread (bounded)
    turn: int
    findings: list[Finding]  # every finding, merged and ranked (the report's list)
    summary: str
    report_path: str
    json_path: str


def kept_results(results: list[StageResult]) -> list[StageResult]:
    """One result per stage, in chain order: an attempt that passed over one sent back for a
    repeat, else the one with the highest confidence; the last one when the stage was dropped
    (a copy or an echo is never passed on, however it scored)."""

    def rank(r: StageResult) -> tuple[bool, float]:
        return r.get("verdict") != "repeat", r["confidence"] or 0.0

    best: dict[str, StageResult] = {}
    for r in results:
        held = best.get(r["stage"])
        if r.get("verdict") == "dropped" or held is None or rank(r) > rank(held):
            best[r["stage"]] = r
    return list(best.values())


def usable_results(results: list[StageResult]) -> list[StageResult]:
    """The kept attempts later stages and the summary may draw on: with text, not dropped."""
    return [
        r for r in kept_results(results) if r["text"] and r["verdict"] not in ("dropped", "failed", "skipped")
    ]
