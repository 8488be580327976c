"""The graph's nodes: prepare the run, one node per model stage, write the report."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
from langchain_core.exceptions import ModelTimeoutError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_config
from langgraph.runtime import Runtime

from graph.chains import Chain, ChainSet, StageSpec
from graph.clean import clean_output
from graph.confidence import Attempt, chain_confidence, copied_lines, decide, describe, score, substantive
from graph.config import Context
from graph.findings import (
    NOTES_GRAMMAR,
    Finding,
    checked,
    cite_notes,
    confirmed,
    denied,
    fixes_grammar,
    ground,
    leading,
    merge,
    parse,
    rank,
    relocate,
    render,
    render_places,
    scored,
    sentence_faults,
    summarise,
    summary_grammar,
    unchanged_fixes,
    unfixed,
)
from graph.findings import grammar as findings_grammar
from graph.models import (
    api_key,
    context_overflow,
    estimate_tokens,
    fit_num_ctx,
    redact,
    share_num_ctx,
    warm_ollama,
)
from graph.prompts import (
    Prompts,
    default_prompts,
    format_chunks,
    format_document,
    format_findings,
    format_history,
    format_notes,
)
from graph.report import write_report
from graph.resources import Resources
from graph.routing import classify_query
from graph.runtime.backends import embedded_spec
from graph.state import ANSWERED, FAILED, StageResult, State, kept_results, usable_results
from retrieval.chunking import CHUNK_CHARS, Unreadable, read_text
from retrieval.embeddings import Embedder
from retrieval.locations import is_index
from retrieval.retriever import DEFAULT_FLOOR
from retrieval.retriever import retrieve as retrieval_search
from retrieval.store import Found, UnusableIndex, index_location

TURN_CHARS = 600  # how much of an earlier turn's summary a follow-up carries
Resolver = Callable[[StageSpec, str, str], tuple[StageSpec, str]]


def check_query(query: str, max_chars: int) -> str:
    """The query, stripped, or a one-line ValueError saying why it cannot be used."""
    query = query.strip()
    if not query:
        raise ValueError("the query is empty")
    if len(query) > max_chars:
        raise ValueError(f"the query is too long: {len(query)} characters (the limit is {max_chars}; "
                         "put long text in a document)")  # fmt: skip
    return query


def read_document(path: str, max_bytes: int = 5_000_000) -> str:
    """The document's text, or a one-line ValueError saying why it cannot be used."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"document not found: {path}")
    if not p.is_file():
        raise ValueError(f"document is not a file: {path}")
    try:
        return read_text(p, max_bytes, what="document", pdf=False)
    except Unreadable as exc:
        raise ValueError(f"{exc}: {path}") from None


def plan_stages(chain: Chain, ctx: Context, resolve: Resolver) -> tuple[list[StageSpec], list[str]]:
    """The chain's stages with the run's overrides applied and their backends decided."""
    unknown = sorted(set(ctx.models) - {s.name for s in chain.stages} - {"*"})
    if unknown:
        raise ValueError(f"models: chain {chain.name!r} has no stage {', '.join(unknown)}")
    base_url = ctx.openai_base_url if ctx.backend == "openai" else ctx.ollama_base_url
    plan, notes = [], []
    for spec in chain.stages:
        overrides: dict[str, Any] = {}
        if ctx.max_tokens:
            overrides["max_tokens"] = ctx.max_tokens
        if ctx.min_confidence is not None:
            overrides["min_confidence"] = ctx.min_confidence
        if spec.name in ctx.models or "*" in ctx.models:
            overrides["model"] = ctx.models.get(spec.name, ctx.models.get("*"))
        if ctx.embedded_model:
            overrides["embedded"] = ctx.embedded_model
        if ctx.num_ctx:
            overrides["num_ctx"] = ctx.num_ctx
        resolved, note = resolve(replace(spec, **overrides), ctx.backend, base_url)
        if resolved.backend == "ollama":
            resolved = replace(resolved, keep_alive=ctx.ollama_keep_alive)
        elif resolved.backend == "openai":
            api_key(resolved)  # a key variable that is not set is bad configuration: refused now
        plan.append(resolved)
        notes.append(note)
    return plan, notes


# Tokens of a stage's prompt that planning cannot see yet: the checks' findings and those of
# earlier stages (a passage's share is counted apart, and earlier stages' notes by max_tokens).
UNSEEN_TOKENS = 1024


def _chars(messages: list[BaseMessage]) -> str:
    return "".join(str(m.content) for m in messages)


def fit_contexts(
    plan: list[StageSpec], state: State, ctx: Context, passages: bool, prompts: Prompts | None = None
) -> list[StageSpec]:
    """The plan with a num_ctx for every Ollama stage that has none set: the larger of 8,192
    and its estimated prompt plus max_tokens, at most ctx.max_num_ctx, then the largest of a
    model's stages for all of them (graph.models.share_num_ctx says why)."""
    draft = cast(State, {**state, "plan": [s.to_dict() for s in plan], "results": []})
    unseen = UNSEEN_TOKENS + (ctx.retrieval_k * estimate_tokens(" " * (CHUNK_CHARS + 200)) if passages else 0)
    fitted, earlier = [], 0
    for spec in plan:
        if spec.backend == "ollama" and not spec.num_ctx:
            prompt = estimate_tokens(
                _chars(build_messages(draft, spec, ctx.max_document_chars, prompts=prompts))
            )
            prompt += unseen + (0 if spec.kind else earlier)  # an analyst sees no other stage
            spec = replace(spec, num_ctx=fit_num_ctx(prompt, spec.max_tokens, ctx.max_num_ctx))
        earlier += spec.max_tokens
        fitted.append(spec)
    return share_num_ctx(fitted)


def prewarm(plan: list[StageSpec], resources: Resources, load_ollama: bool = True) -> list[dict[str, Any]]:
    """Build every distinct model once (through `resources`, so the first stage on each
    model then uses the one built here) and load every Ollama model on its server, all in
    parallel, before the first stage needs them; one record per Ollama model loaded.

    A load waits at most the longest timeout_s of the model's stages; one that fails or
    times out is recorded and stops nothing (the stage's own call loads the model then)."""
    distinct: dict[tuple[str, str, str], StageSpec] = {}
    timeouts: dict[tuple[str, str, str], float] = {}
    for spec in plan:
        key = (spec.backend, spec.model, spec.base_url)
        distinct.setdefault(key, spec)
        timeouts[key] = max(timeouts.get(key, 0.0), spec.timeout_s)

    def ready(key: tuple[str, str, str]) -> dict[str, Any] | None:
        spec = distinct[key]
        resources.model(spec)
        return warm_ollama(spec, timeouts[key]) if spec.backend == "ollama" and load_ollama else None

    with ThreadPoolExecutor(max_workers=len(distinct)) as pool:
        return [record for record in pool.map(ready, distinct) if record is not None]


def make_prepare(chains: ChainSet, resolve: Resolver, resources: Resources) -> Callable[..., dict[str, Any]]:
    def prepare(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Read the document, type the query, pick the chain, resolve and pre-warm models."""
        ctx = runtime.context or Context()
        query = check_query(state["query"], ctx.max_query_chars)
        document_path = state.get("document_path") or ""
        document_text = read_document(document_path, ctx.max_document_bytes) if document_path else ""
        # The nearest-example fallback needs the embedder (seconds to load, cold); it runs
        # only when the type decides something before the first stage: the route (no chain
        # named) or what retrieval may search. Otherwise the embedder loads once the first
        # token is out (see the stage node): loading torch beside the first prompt tripled
        # the first-token time (2.6 s -> 6.3 s).
        where = index_location(ctx.index_dir)
        searches = ctx.retrieval and is_index(where)
        needs_type = not ctx.chain or searches
        query_type, reasons = classify_query(query, document_path, resources.embedder if needs_type else None)
        chain = chains.get(ctx.chain) if ctx.chain else chains.for_query_type(query_type)
        plan, notes = plan_stages(chain, ctx, resolve)
        seen = cast(State, {"query": query, "document_path": document_path, "document_text": document_text,
                            "history": state.get("history", [])})  # fmt: skip
        plan = fit_contexts(
            plan,
            seen,
            ctx,
            passages=searches and bool(chains.kinds_for(query_type)),
            prompts=resources.prompts,
        )
        warm = prewarm(plan, resources, ctx.ollama_prewarm)
        runtime.stream_writer(
            {"event": "plan", "chain": chain.name, "query_type": query_type, "notes": notes, "warm": warm}
        )
        return {
            "query": query,
            "query_type": query_type,
            "query_type_reasons": reasons,
            "document_path": document_path,
            "document_text": document_text,
            "chain": chain.name,
            "early_exit": chain.early_exit,
            "plan": [s.to_dict() for s in plan],
            "backend_notes": notes,
            "warm": warm,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            # A run in a thread starts afresh; earlier turns live on in `history`.
            "results": None,
            "errors": None,
            "turn": state.get("turn", 0) + 1,
        }

    return prepare


def make_retrieve(chains: ChainSet, resources: Resources) -> Callable[..., dict[str, Any]]:
    def retrieve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Passages from the index that the query type may see and that clear the floor."""
        ctx = runtime.context or Context()
        kinds = chains.kinds_for(state["query_type"])
        found: list[Found] = []
        if not ctx.retrieval:
            note = "retrieval is off"
        elif not kinds:
            note = f"{state['query_type']} queries draw on no indexed content"
        else:
            path = index_location(ctx.index_dir)  # a folder or a Chroma server
            try:
                index = resources.index(path)
            except UnusableIndex as exc:
                note = str(exc)
            else:
                document = state.get("document_path")
                exclude = [str(Path(document).resolve())] if document else []
                try:
                    found = retrieval_search(index, state["query"], kinds, k=ctx.retrieval_k, exclude=exclude)
                    note = f"{len(found)} passages from {', '.join(kinds)} at {path} (floor {DEFAULT_FLOOR})"
                except httpx.HTTPError as exc:  # a Chroma server that stopped answering
                    resources.forget_index(path)
                    note = f"the index at {path} did not answer: {exc}"
        retrieved = [{"n": n, **asdict(f)} for n, f in enumerate(found, start=1)]
        runtime.stream_writer({"event": "retrieval", "kinds": list(kinds), "note": note,
                               "passages": [{k: v for k, v in r.items() if k != "text"} for r in retrieved]})  # fmt: skip
        return {"retrieved": retrieved, "retrieval_notes": [note]}

    return retrieve


def skip_reason(state: State, spec: StageSpec) -> str:
    """Why a stage should not run at all, or "" when it should."""
    query_type = state.get("query_type", "")
    if spec.applies_to and query_type not in spec.applies_to:
        return f"does not apply to {query_type} queries"
    if spec.role == "synthesis" and analysing(state) and not any(map(confirmed, _findings_so_far(state))):
        # Its answer would not be the summary (report.write_report): 15-20 s saved, and no prose
        # streamed that the report then sets aside.
        return "nothing confirmed to summarise: no check fired and no two finders agree on a finding"
    early_exit = state.get("early_exit")
    if spec.optional and early_exit is not None:
        so_far = chain_confidence(state.get("results", []))
        if so_far >= early_exit:
            return f"chain confidence {so_far:.2f} reached the early-exit level {early_exit:.2f}"
    return ""


def _findings_so_far(state: State) -> list[Finding]:
    """The checks' findings and every stage's, merged and ranked (what later stages see);
    a check's finding an analyst disputed carries the dispute."""
    groups = [list(state.get("facts") or [])]
    groups += [r.get("findings") or [] for r in usable_results(state.get("results", []))]
    merged = merge(groups)
    for r in usable_results(state.get("results", [])):
        for dispute in r.get("verdicts") or []:
            for fact in dispute["facts"]:
                held = next(
                    (m for m in merged if m["rule"] == fact["rule"] and m["line"] == fact["line"]), None
                )
                if held is not None:
                    held["disputed_by"].append(f"{r['stage']}: {dispute['why']}")
    return rank(merged)


def analysing(state: State) -> bool:
    """Whether this run's stages work on findings: a document and a chain with analysts."""
    return bool(state.get("document_text")) and any(s.get("kind") for s in state["plan"])


def stage_checks(state: State, spec: StageSpec) -> list[list[Finding]]:
    """The checks' findings an analyst is shown, those of its kind, one group per rule."""
    groups: dict[str, list[Finding]] = {}
    for f in state.get("facts") or []:
        if spec.kind and f["kind"] == spec.kind:
            groups.setdefault(f["rule"], []).append(f)
    return list(groups.values())


def instructions(spec: StageSpec, state: State, correction: str = "", prompts: Prompts | None = None) -> str:
    """The stage's own instructions: its prompt file, then (for an analyst) the checks it
    judges and the shape its findings take."""
    prompts = prompts or default_prompts()
    earlier = [r["stage"] for r in usable_results(state.get("results", [])) if r["stage"] != spec.name]
    failed = [f"{r['stage']} ({r['status']})" for r in kept_results(state.get("results", []))
              if r["status"] in FAILED]  # fmt: skip
    body = prompts(spec.prompt or spec.name).render(
        query=state["query"],
        stages=", ".join(earlier) or "none",
        first_stage=earlier[0] if earlier else spec.name,
        failed=f"These specialists failed and gave nothing: {', '.join(failed)}. Say so." if failed else "",
    )
    if spec.kind and analysing(state):
        groups = stage_checks(state, spec)
        listed = "\n".join(
            f"{n}. line{'s' if len(g) > 1 else ''} {', '.join(str(f['line']) for f in g)} "
            f"`{g[0]['code'][:80]}`: {g[0]['message']}"
            for n, g in enumerate(groups, start=1)
        )
        body += "\n\n" + prompts("findings_format").render(
            checks=f"The checks already found these problems of your kind (they are in the report; "
            f"do not list them again):\n{listed}"
            if groups
            else "The checks found no problem of your kind.",
        )
    if correction:
        body += f"\n\nYour previous answer was set aside because it {correction}. Answer again, in your own words, on your task only."
    return body


def build_messages(
    state: State,
    spec: StageSpec,
    max_document_chars: int,
    correction: str = "",
    prompts: Prompts | None = None,
) -> list[BaseMessage]:
    """The stage's conversation: the system prompt and the shared material first, then
    what earlier stages found (for stages that build on them), then its own instructions.

    Every stage's prompt starts with the same system prompt and material (the fenced
    document, passages, earlier turns, the question), so llama.cpp reuses its KV cache for
    that prefix instead of re-reading the document. An analyst (a stage with a `kind`)
    sees no other stage's words, so it cannot copy them; the checks' findings of its kind
    come with its own instructions.
    """
    material = f"Question: {state['query']}"
    if state.get("history"):
        material = f"{format_history(state['history'])}\n\n{material}"
    if state.get("retrieved"):
        material = f"{format_chunks(state['retrieved'])}\n\n{material}"
    if state.get("document_path"):
        doc = format_document(
            state["document_path"], state.get("document_text", ""), max_chars=max_document_chars
        )
        material = f"{doc}\n\n{material}"
    parts = [material]
    if not spec.kind:
        if analysing(state):
            found = _findings_so_far(state)
            if spec.role == "synthesis":  # where each is and its code: no words to paste
                shown = render_places(found)
            else:
                found = leading(found)  # the confirmed ones, when there are any
                shown = render(found)
            parts.append(format_findings(shown) if found else "Findings so far: none.")
        else:
            earlier = [r for r in usable_results(state.get("results", [])) if r["stage"] != spec.name]
            if earlier:
                parts.append(format_notes([(r["title"], r["text"]) for r in earlier]))
    prompts = prompts or default_prompts()
    parts.append(instructions(spec, state, correction, prompts))
    return [SystemMessage(prompts("system").render()), HumanMessage("\n\n".join(parts))]


def run_model(
    model: BaseChatModel,
    messages: list[BaseMessage],
    spec: StageSpec,
    on_first_token: Callable[[], None] | None = None,
    grammar: str = "",
) -> dict[str, Any]:
    """Stream one model call; measure first token, total time and tokens; enforce the timeout."""
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    tokens = 0
    meta: dict[str, Any] = {}
    usage: dict[str, int] | None = None
    status, error = "ok", ""
    # Every streamed token carries its stage and model in the `messages` stream's metadata.
    tags = {"mirador_stage": spec.name, "mirador_model": spec.model, "mirador_backend": spec.backend}
    # The grammar holds an analyst's findings to their one shape (llama.cpp only).
    kwargs: dict[str, Any] = {"grammar": grammar} if grammar and spec.backend == "embedded" else {}
    stream = model.stream(messages, config={"metadata": tags}, **kwargs)
    try:
        for chunk in stream:
            text = str(chunk.text)
            if text:
                if first is None:
                    first = time.perf_counter() - start
                    if on_first_token:
                        on_first_token()
                parts.append(text)
                tokens += 1
            meta.update({k: v for k, v in chunk.response_metadata.items() if v is not None})
            if counted := getattr(chunk, "usage_metadata", None):  # the server's own count
                usage = {"input_tokens": counted["input_tokens"], "output_tokens": counted["output_tokens"]}
            if time.perf_counter() - start > spec.timeout_s:
                status, error = "timeout", f"stopped after {spec.timeout_s:g} s"
                break
    except Exception as exc:  # a failed stage is recorded; the chain goes on
        if any(
            isinstance(e, TimeoutError | ModelTimeoutError | httpx.TimeoutException) for e in _causes(exc)
        ):
            status, error = "timeout", f"no answer within {spec.timeout_s:g} s ({type(exc).__name__})"
        else:
            status, error = "error", redact(_describe(exc), spec)
    finally:
        stream.close()  # type: ignore[attr-defined]
    finish = meta.get("finish_reason") or meta.get("done_reason")
    if status == "ok" and finish == "length":
        status = "truncated"
    return {
        "raw": "".join(parts),
        "status": status,
        "error": error,
        "first_token_s": None if first is None else round(first, 3),
        "total_s": round(time.perf_counter() - start, 3),
        "tokens": tokens,
        "token_probability": meta.get("token_probability"),
        "finish_reason": finish if status in ANSWERED else None,
        "usage": usage,
        # Ollama's own counts, from its final message: what it read of the prompt, and wrote.
        "prompt_eval_count": meta.get("prompt_eval_count"),
        "eval_count": meta.get("eval_count"),
    }


def _causes(exc: BaseException) -> list[BaseException]:
    """The error and those it wraps, outermost first (a few at most; never a cycle)."""
    chain = [exc]
    while len(chain) < 8 and (inner := chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(inner)
    return chain


def _describe(exc: BaseException) -> str:
    """One line for a failed call: the error and, when it wraps one, its root cause (a client's
    "Connection error." says neither refused nor dropped; its cause does)."""
    text = f"{type(exc).__name__}: {exc}"
    root = _causes(exc)[-1]
    if root is not exc and str(root) not in text:
        text += f" ({type(root).__name__}: {root})"
    return text.splitlines()[0]


def _result(spec: StageSpec, attempt: int, **fields: Any) -> StageResult:
    base: StageResult = {
        "stage": spec.name, "title": spec.title or spec.name, "role": spec.role,
        "model": spec.model, "backend": spec.backend, "base_url": spec.base_url, "attempt": attempt, "text": "",
        "status": "skipped", "error": "", "note": "", "first_token_s": None, "total_s": 0.0,
        "tokens": 0, "tokens_per_s": 0.0, "finish_reason": None, "usage": None, "num_ctx": None,
        "prompt_estimate": None, "context_overflow": "", "removed": {},
        "confidence": None, "signals": {},
        "verdict": "skipped", "reasons": [], "findings": [], "verdicts": [], "set_aside": [],
    }  # fmt: skip
    return cast(StageResult, {**base, **fields})


def assess(
    state: State,
    spec: StageSpec,
    run: dict[str, Any],
    attempt: int,
    embedder: Embedder,
    ctx: Context,
    prompts: Prompts,
) -> Attempt:
    """Clean a stage's output, ground its findings, score it and decide what happens next."""
    own = instructions(spec, state, prompts=prompts)
    text, removed = clean_output(run["raw"], echoes=(prompts("system").render(), own,
                                                     f"Question: {state['query']}"))  # fmt: skip
    status = "empty" if run["status"] in ANSWERED and not text else run["status"]
    verdicts: list[dict[str, Any]] = []
    found: list[Finding] = []
    set_aside: list[dict[str, Any]] = []
    if spec.kind and analysing(state):
        groups = stage_checks(state, spec)
        disputes, raw_found = parse(text)
        # A dispute counts when it names a check shown and says why in words of its own (the
        # 1.5B also writes empty ones, like '"is not a problem here:" because').
        verdicts = [{**d, "facts": groups[d["check"] - 1]} for d in disputes
                    if 0 < d["check"] <= len(groups) and substantive(d["why"], own)]  # fmt: skip
        found, set_aside = ground(raw_found, state["document_text"], spec.name, spec.kind, state.get("facts"))
    if spec.role == "fixes" and analysing(state):
        text, same = unchanged_fixes(text)
        top = _findings_so_far(state)
        set_aside = [{"line": top[n - 1]["line"], "code": top[n - 1]["code"], "reason": "the fix is the line unchanged"}
                     for n in same if 0 < n <= len(top)]  # fmt: skip
        text, still = unfixed(text, top, state["document_text"], state["document_path"])
        set_aside += [{"line": top[n - 1]["line"], "code": top[n - 1]["code"],
                       "reason": f"the checks still find {rule} there after this fix"} for n, rule in still]  # fmt: skip
        status = "empty" if status in ANSWERED and not text else status
    if spec.role == "stage" and not spec.kind and analysing(state):  # a design note
        text, set_aside = denied(text, _findings_so_far(state))
    earlier = {
        r["stage"]: r["text"] for r in usable_results(state.get("results", [])) if r["stage"] != spec.name
    }
    fault = ""
    if spec.role == "synthesis" and analysing(state):
        # The summary is also measured against the findings: the 1.5B pasted the rendered
        # findings in as its bullets, which the Findings section already says, and, held to
        # open each sentence with a finding's place, pasted its message there.
        shown = _findings_so_far(state)
        earlier["findings"] = f"{render_places(shown)}\n{render(shown)}"
        text = relocate(text, shown)  # a sentence about another line's finding names its line
        faults = sentence_faults(text, shown, state["query"], state["document_text"])
        if faults and faults[0][0] == 0:  # the answer itself: said again
            fault = faults[0][2]
        elif faults:  # an "Also," sentence: left out, and the answer stands
            lines = text.splitlines()
            set_aside = [{"line": line, "code": lines[i].partition("): ")[2], "reason": why}
                         for i, line, why in faults]  # fmt: skip
            text = "\n".join(t for i, t in enumerate(lines) if i not in {f[0] for f in faults})
        if not fault and copied_lines(text, earlier["findings"]):
            fault = "pasted lines of the findings it was shown"
    confidence, signals, closest = score(
        embedder, text=text, raw=run["raw"], removed=removed, status=status, query=state["query"],
        document=state.get("document_text", "")[: ctx.max_document_chars], earlier=earlier,
        token_probability=run["token_probability"], instructions=own,
        # Refuted claims are set aside but not held against the stage: at 1.5B most findings
        # are, and repeating the stage costs ~25 s for a similar answer.
        grounded=(len(found), sum(not s.get("refuted") for s in set_aside)) if spec.kind and analysing(state) else None,
    )  # fmt: skip
    if fault:  # it adds nothing to, or contradicts, the findings it was shown: judged as a copy
        signals, closest = {**signals, "novelty": 0.0}, "findings"
    verdict, reasons = decide(
        status, confidence, signals, closest, spec.min_confidence, attempt, spec.max_repeats
    )
    if fault:
        reasons = (fault, *(r for r in reasons if r != "repeated the findings stage"))
    return Attempt(text=text, removed=removed, status=status, confidence=confidence, signals=signals,
                   verdict=verdict, reasons=reasons, findings=found, verdicts=verdicts,
                   set_aside=set_aside)  # fmt: skip


def make_stage_node(name: str, resources: Resources) -> Callable[..., dict[str, Any]]:
    embedder = resources.embedder

    def stage(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = runtime.context or Context()
        spec = next(StageSpec.from_dict(s) for s in state["plan"] if s["name"] == name)
        attempts = [r for r in state.get("results", []) if r["stage"] == name]
        attempt = len(attempts) + 1
        write = runtime.stream_writer
        if attempt == 1 and (reason := skip_reason(state, spec)):
            write({"event": "stage_skip", "stage": name, "reason": reason})
            return {"results": [_result(spec, attempt, verdict="skipped", reasons=[reason],
                                        note=f"skipped: {reason}")]}  # fmt: skip

        correction = attempts[-1]["reasons"][0] if attempts and attempts[-1]["verdict"] == "repeat" else ""
        messages = build_messages(state, spec, ctx.max_document_chars, correction, resources.prompts)
        write({"event": "stage_start", "stage": name, "model": spec.model, "backend": spec.backend,
               "base_url": spec.base_url, "attempt": attempt, "correction": correction})  # fmt: skip

        def warm_embedder() -> None:  # the first stage's first token is out: load it now
            threading.Thread(target=embedder, args=(["warm-up"],), daemon=True).start()

        first_of_run = not state.get("results")
        grammar_text = ""
        if spec.kind and analysing(state):
            groups = stage_checks(state, spec)
            known = frozenset(f["line"] for g in groups for f in g)
            grammar_text = findings_grammar(len(groups), state["document_text"], known)
        elif spec.role == "synthesis" and analysing(state) and (top := _findings_so_far(state)):
            grammar_text = summary_grammar(top)
        elif spec.role == "fixes" and analysing(state) and (top := _findings_so_far(state)):
            grammar_text = fixes_grammar(top)
        elif spec.role == "synthesis" and not analysing(state):
            grammar_text = NOTES_GRAMMAR
        run = run_model(
            resources.model(spec), messages, spec, warm_embedder if first_of_run else None, grammar_text
        )
        fell_back = ""
        if run["status"] == "error" and spec.backend in ("ollama", "openai") and ctx.fallback_to_embedded:
            fell_back = f"{spec.backend} failed ({run['error']}); ran on the embedded model"
            spec = embedded_spec(spec)
            write({"event": "stage_start", "stage": name, "model": spec.model, "backend": spec.backend,
                   "base_url": "", "attempt": attempt, "correction": ""})  # fmt: skip
            run = run_model(resources.model(spec), messages, spec, None, grammar_text)
        window: dict[str, Any] = {}
        if spec.backend == "ollama":  # did the prompt fit the context it was sent with?
            estimated = estimate_tokens(_chars(messages))
            overflow = "" if run["status"] == "error" else context_overflow(
                spec.num_ctx, estimated, run["prompt_eval_count"], run["eval_count"])  # fmt: skip
            window = {"num_ctx": spec.num_ctx, "prompt_estimate": estimated, "context_overflow": overflow}
        a = assess(state, spec, run, attempt, embedder, ctx, resources.prompts)
        # Each finding's relevance to the question ranks it (findings.rank); the checks' are
        # scored here, not in the facts node, so the first stage's first token waits on no embedding.
        own = scored(a.findings, state["query"], embedder)
        facts = state.get("facts")
        rescored = scored(facts, state["query"], embedder) if facts else facts
        note = "; ".join(n for n in (describe(a.verdict, a.reasons), fell_back) if n)
        generating = run["total_s"] - (run["first_token_s"] or 0.0)
        result = _result(
            spec, attempt, text=a.text, status=a.status, error=run["error"], note=note,
            first_token_s=run["first_token_s"], total_s=run["total_s"], tokens=run["tokens"],
            tokens_per_s=round(run["tokens"] / generating, 1) if generating > 0 else 0.0,
            finish_reason=run["finish_reason"], usage=run["usage"], **window,
            removed=a.removed, confidence=a.confidence, signals=a.signals, verdict=a.verdict,
            reasons=list(a.reasons), findings=own, verdicts=a.verdicts, set_aside=a.set_aside,
        )  # fmt: skip
        write({"event": "stage_end", **{k: v for k, v in result.items() if k != "text"}})
        update: dict[str, Any] = {"results": [result]}
        if rescored is not facts:
            update["facts"] = rescored
        if run["error"]:
            update["errors"] = [f"{name}: {run['error']}"]
        return update

    stage.__name__ = f"stage_{name}"
    return stage


def make_facts() -> Callable[..., dict[str, Any]]:
    def facts(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Facts before opinions: the checks' findings on a Python document (no model)."""
        path = state.get("document_path") or ""
        if not path.endswith((".py", ".pyi")):
            return {"facts": None}  # no checks for this language
        found = checked(state.get("document_text", ""), path)
        runtime.stream_writer({"event": "facts", "count": len(found), "findings": found})
        return {"facts": found}

    return facts


def report(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the markdown report and its JSON twin, atomically."""
    ctx = runtime.context or Context()
    synthesis = next((r for r in usable_results(state.get("results", [])) if r["role"] == "synthesis"), None)
    answer = synthesis["text"] if synthesis else ""
    if analysing(state):
        findings = _findings_so_far(state)
        # nothing confirmed (no check's finding, no two finders agreeing): nothing to summarise
        summary = summarise(answer, findings) if any(confirmed(f) for f in findings) else ""
    else:  # the answer over notes says which stage each sentence draws on
        findings = []
        notes = {
            r["stage"]: r["text"]
            for r in usable_results(state.get("results", []))
            if r["role"] != "synthesis"
        }
        summary = cite_notes(answer, notes)
    thread = str(get_config().get("configurable", {}).get("thread_id", ""))
    md_path, json_path = write_report(
        {**state, "summary": summary, "findings": findings}, Path(ctx.reports_dir), thread
    )
    runtime.stream_writer({"event": "report", "path": str(md_path), "json_path": str(json_path)})
    turn = {
        "query": state["query"],
        "summary": summary[:TURN_CHARS],
        "conclusions": {
            r["stage"]: r["text"][: TURN_CHARS // 2]
            for r in usable_results(state.get("results", []))
            if r["role"] != "synthesis"
        },
        "report_path": str(md_path),
    }
    return {"summary": summary, "findings": findings, "report_path": str(md_path), "json_path": str(json_path),
            "history": [turn]}  # fmt: skip
