"""The graph's nodes: prepare the run, one node per model stage, write the report."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.runtime import Runtime

from graph.chains import ChainSet, StageSpec
from graph.clean import clean_output
from graph.config import Context
from graph.prompts import format_document, load_prompt
from graph.report import write_report
from graph.routing import classify_query
from graph.state import StageResult, State

Resolver = Callable[[StageSpec, str, str], tuple[StageSpec, str]]


def read_document(path: str) -> str:
    """The document's text, or a one-line ValueError saying why it cannot be used."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"document not found: {path}")
    if not p.is_file():
        raise ValueError(f"document is not a file: {path}")
    data = p.read_bytes()
    if b"\x00" in data[:8192]:
        raise ValueError(f"document looks binary: {path}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"document is not valid UTF-8: {path}") from None


def make_prepare(
    chains: ChainSet,
    resolve: Resolver,
    factory: Callable[[StageSpec], BaseChatModel],
) -> Callable[..., dict[str, Any]]:
    def prepare(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        """Read the document, type the query, pick the chain, resolve and pre-warm models."""
        ctx = runtime.context or Context()
        query = state["query"].strip()
        if not query:
            raise ValueError("the query is empty")
        document_path = state.get("document_path") or ""
        document_text = read_document(document_path) if document_path else ""
        query_type, reasons = classify_query(query, document_path)
        chain = chains.get(ctx.chain) if ctx.chain else chains.for_query_type(query_type)
        plan, notes = [], []
        for spec in chain.stages:
            if ctx.max_tokens:
                spec = spec.__class__(**{**spec.to_dict(), "max_tokens": ctx.max_tokens})
            resolved, note = resolve(spec, ctx.backend, ctx.ollama_base_url)
            plan.append(resolved)
            notes.append(note)
        # Load every distinct model once, in parallel, before the first stage needs it.
        distinct: dict[tuple[str, str, str], StageSpec] = {}
        for s in plan:
            distinct.setdefault((s.backend, s.model, s.base_url), s)
        with ThreadPoolExecutor(max_workers=max(1, len(distinct))) as pool:
            list(pool.map(factory, distinct.values()))
        runtime.stream_writer(
            {"event": "plan", "chain": chain.name, "query_type": query_type, "notes": notes}
        )
        return {
            "query": query,
            "query_type": query_type,
            "query_type_reasons": reasons,
            "document_path": document_path,
            "document_text": document_text,
            "chain": chain.name,
            "plan": [s.to_dict() for s in plan],
            "backend_notes": notes,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    return prepare


def _instructions(spec: StageSpec, number: int, state: State) -> str:
    earlier = [r["stage"] for r in state.get("results", []) if r["text"]]
    prompt = load_prompt(spec.prompt or spec.name)
    body = prompt.render(
        query=state["query"],
        stages=", ".join(earlier) or "none",
        first_stage=earlier[0] if earlier else spec.name,
    )
    return f"### Specialist {number}: {spec.title or spec.name} [{spec.name}]\n{body}"


def build_messages(state: State, spec: StageSpec, max_document_chars: int) -> list[BaseMessage]:
    """The stage's conversation, laid out as a continuation of the previous stage's.

    Every stage sees the same system prompt and material first, then each earlier
    stage's instructions and cleaned answer, then its own instructions. The
    shared prefix lets llama.cpp reuse its KV cache instead of re-reading the
    document at every stage.
    """
    material = f"Question: {state['query']}"
    if state.get("document_path"):
        doc = format_document(
            state["document_path"], state.get("document_text", ""), max_chars=max_document_chars
        )
        material = f"{doc}\n\n{material}"
    messages: list[BaseMessage] = [SystemMessage(load_prompt("system").render())]
    plan = {s["name"]: StageSpec.from_dict(s) for s in state["plan"]}
    turns = [(plan[r["stage"]], r["text"]) for r in state.get("results", []) if r["text"]]
    for number, (earlier, text) in enumerate(turns, start=1):
        instructions = _instructions(earlier, number, state)
        if number == 1:
            instructions = f"{material}\n\n{instructions}"
        messages += [HumanMessage(instructions), AIMessage(text)]
    instructions = _instructions(spec, len(turns) + 1, state)
    if not turns:
        instructions = f"{material}\n\n{instructions}"
    messages.append(HumanMessage(instructions))
    return messages


def run_model(model: BaseChatModel, messages: list[BaseMessage], spec: StageSpec) -> dict[str, Any]:
    # Every streamed token carries its stage and model in the `messages` stream's metadata.
    """Stream one model call; measure first token, total time and tokens; enforce the timeout."""
    start = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    tokens = 0
    finish = ""
    status, error = "ok", ""
    try:
        tags = {"mirador_stage": spec.name, "mirador_model": spec.model, "mirador_backend": spec.backend}
        stream = model.stream(messages, config={"metadata": tags})
        for chunk in stream:
            text = str(chunk.text)
            if text:
                if first is None:
                    first = time.perf_counter() - start
                parts.append(text)
                tokens += 1
            finish = (
                chunk.response_metadata.get("finish_reason")
                or chunk.response_metadata.get("done_reason", finish)
                or finish
            )
            if time.perf_counter() - start > spec.timeout_s:
                status, error = "timeout", f"stopped after {spec.timeout_s:g} s"
                stream.close()  # type: ignore[attr-defined]
                break
    except Exception as exc:  # a failed stage is recorded; the chain goes on
        status, error = "error", f"{type(exc).__name__}: {exc}".splitlines()[0]
    total = time.perf_counter() - start
    if status == "ok" and finish == "length":
        status = "truncated"
    return {
        "raw": "".join(parts),
        "status": status,
        "error": error,
        "first_token_s": None if first is None else round(first, 3),
        "total_s": round(total, 3),
        "tokens": tokens,
    }


def make_stage_node(
    name: str, factory: Callable[[StageSpec], BaseChatModel]
) -> Callable[..., dict[str, Any]]:
    def stage(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = runtime.context or Context()
        spec = next(StageSpec.from_dict(s) for s in state["plan"] if s["name"] == name)
        messages = build_messages(state, spec, ctx.max_document_chars)
        runtime.stream_writer(
            {"event": "stage_start", "stage": name, "model": spec.model, "backend": spec.backend}
        )
        run = run_model(factory(spec), messages, spec)
        echoes = (
            load_prompt("system").render(),
            _instructions(spec, 0, state),
            f"Question: {state['query']}",
        )
        text, removed = clean_output(run["raw"], echoes=echoes)
        status = run["status"]
        if status in ("ok", "truncated") and not text:
            status = "empty"
        generating = run["total_s"] - (run["first_token_s"] or 0.0)
        result: StageResult = {
            "stage": name,
            "title": spec.title or name,
            "role": spec.role,
            "model": spec.model,
            "backend": spec.backend,
            "text": text,
            "status": status,
            "error": run["error"],
            "first_token_s": run["first_token_s"],
            "total_s": run["total_s"],
            "tokens": run["tokens"],
            "tokens_per_s": round(run["tokens"] / generating, 1) if generating > 0 else 0.0,
            "removed": removed,
        }
        runtime.stream_writer({"event": "stage_end", **{k: v for k, v in result.items() if k != "text"}})
        update: dict[str, Any] = {"results": [result]}
        if run["error"]:
            update["errors"] = [f"{name}: {run['error']}"]
        if spec.role == "synthesis":
            update["summary"] = text
        return update

    stage.__name__ = f"stage_{name}"
    return stage


def report(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write the markdown report and its JSON twin, atomically."""
    ctx = runtime.context or Context()
    md_path, json_path = write_report(state, Path(ctx.reports_dir))
    runtime.stream_writer({"event": "report", "path": str(md_path), "json_path": str(json_path)})
    return {"report_path": str(md_path), "json_path": str(json_path)}
