"""Chains are data: `chains.toml` is loaded here and validated before anything runs."""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal

from graph.config import PROJECT_ROOT, check_base_url
from graph.prompts import load_prompt
from retrieval import KINDS

DEFAULT_CHAINS_FILE = PROJECT_ROOT / "chains.toml"
QUERY_TYPES = ("code", "document", "research", "report", "comparison", "decision", "personal", "general")

ROLES = ("stage", "fixes", "synthesis")
# The embedded models a stage may name (graph.models has their files).
EMBEDDED_CHOICES = ("coder-0.5b", "coder-1.5b")
# The kinds of problem an analyst stage looks for (the checks use the same words).
FINDING_KINDS = ("concurrency", "cost", "resources")


class ChainError(ValueError):
    """A chain file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class StageSpec:
    """One model stage of a chain."""

    name: str
    model: str
    title: str = ""
    role: Literal["stage", "fixes", "synthesis"] = "stage"  # fixes: code for the top findings
    prompt: str = ""  # prompts/<prompt>.md; empty: the stage's name
    backend: str = ""  # resolved per run: "embedded", "ollama" or "openai"
    base_url: str = ""  # the stage's Ollama or OpenAI-compatible server; empty: the run's default
    api_key_env: str = ""  # the environment variable holding its server's key; empty: the run's
    embedded: str = ""  # the embedded model when the stage runs in-process; empty: the default
    kind: str = ""  # an analyst's mandate on a code document (FINDING_KINDS); empty: not an analyst
    temperature: float = 0.2
    max_tokens: int = 320
    num_ctx: int = 0  # Ollama's context window in tokens; 0: fitted to the prompt when the run is planned
    keep_alive: str = ""  # resolved per run from the Context (Ollama stages): how long the model stays loaded
    timeout_s: float = 300.0
    min_confidence: float = 0.45
    max_repeats: int = 1
    optional: bool = False
    applies_to: tuple[str, ...] = ()  # query types; empty: all

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageSpec:
        return cls(**{**data, "applies_to": tuple(data.get("applies_to", ()))})


@dataclass(frozen=True)
class Chain:
    name: str
    description: str
    stages: tuple[StageSpec, ...] = field(default_factory=tuple)
    # Optional stages are skipped once the chain's confidence so far reaches this.
    early_exit: float | None = None


@dataclass(frozen=True)
class ChainSet:
    chains: dict[str, Chain]
    router: dict[str, str]  # query type -> chain name
    gating: dict[str, tuple[str, ...]] = field(default_factory=dict)  # query type -> kinds

    def kinds_for(self, query_type: str) -> tuple[str, ...]:
        """The kinds of indexed content a query type may draw on (none when not listed)."""
        return self.gating.get(query_type, ())

    def get(self, name: str) -> Chain:
        try:
            return self.chains[name]
        except KeyError:
            known = ", ".join(sorted(self.chains))
            raise ChainError(f"unknown chain {name!r} (known: {known})") from None

    def for_query_type(self, query_type: str) -> Chain:
        return self.get(self.router.get(query_type, self.router["general"]))

    def stage_names(self) -> list[str]:
        """Every stage name in every chain, in first-seen order."""
        names: dict[str, None] = {}
        for chain in self.chains.values():
            names.update((s.name, None) for s in chain.stages)
        return list(names)

    def successors(self, stage: str) -> set[str]:
        """Nodes that can follow `stage` in some chain: the next stage, itself when it may be
        repeated, and the report after a chain's last stage."""
        found = set()
        for chain in self.chains.values():
            names = [s.name for s in chain.stages]
            if stage in names:
                index = names.index(stage)
                found.add(names[index + 1] if index + 1 < len(names) else "report")
                if chain.stages[index].max_repeats > 0:
                    found.add(stage)
        return found


_STAGE_KEYS = {f.name for f in fields(StageSpec)} - {"backend", "keep_alive"}
_DEFAULT_KEYS = {
    "temperature",
    "max_tokens",
    "num_ctx",
    "timeout_s",
    "min_confidence",
    "max_repeats",
    "embedded",
}


def _check_keys(where: str, data: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ChainError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _stage(chain: str, raw: Any, defaults: dict[str, Any]) -> StageSpec:
    if not isinstance(raw, dict):
        raise ChainError(f"chain {chain!r}: every stage must be a table")
    where = f"chain {chain!r} stage {raw.get('name', '?')!r}"
    _check_keys(where, raw, _STAGE_KEYS)
    for key in ("name", "model"):
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            raise ChainError(f"{where}: missing {key!r}")
    try:
        spec = StageSpec(**{**defaults, **raw, "applies_to": tuple(raw.get("applies_to", ()))})
    except TypeError as exc:
        raise ChainError(f"{where}: {exc}") from None
    if spec.base_url:
        try:
            check_base_url(spec.base_url, f"{where}: base_url")
        except ValueError as exc:
            raise ChainError(str(exc)) from None
    if spec.api_key_env and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", spec.api_key_env):
        raise ChainError(
            f"{where}: api_key_env must name an environment variable (the key itself never goes here)"
        )
    if spec.embedded and spec.embedded not in EMBEDDED_CHOICES:
        raise ChainError(f"{where}: embedded must be one of {', '.join(EMBEDDED_CHOICES)}")
    if spec.kind and spec.kind not in FINDING_KINDS:
        raise ChainError(f"{where}: kind must be one of {', '.join(FINDING_KINDS)}")
    if spec.role not in ROLES:
        raise ChainError(f"{where}: role must be one of {', '.join(ROLES)}")
    if not 0.0 <= spec.min_confidence <= 1.0:
        raise ChainError(f"{where}: min_confidence must be within [0, 1]")
    if not 0.0 <= spec.temperature <= 2.0:
        raise ChainError(f"{where}: temperature must be within [0, 2]")
    if not isinstance(spec.max_tokens, int) or spec.max_tokens <= 0:
        raise ChainError(f"{where}: max_tokens must be a positive integer")
    if not isinstance(spec.num_ctx, int) or spec.num_ctx < 0:
        raise ChainError(f"{where}: num_ctx must be 0 (fitted to the prompt) or a positive integer")
    if spec.timeout_s <= 0:
        raise ChainError(f"{where}: timeout_s must be positive")
    if not isinstance(spec.max_repeats, int) or spec.max_repeats < 0:
        raise ChainError(f"{where}: max_repeats must be 0 or more")
    unknown_types = sorted(set(spec.applies_to) - set(QUERY_TYPES))
    if unknown_types:
        raise ChainError(f"{where}: unknown query type(s) {', '.join(unknown_types)}")
    try:
        load_prompt(spec.prompt or spec.name)
    except (FileNotFoundError, ValueError) as exc:
        raise ChainError(f"{where}: {exc}") from None
    return spec


def parse_chains(data: dict[str, Any]) -> ChainSet:
    """Validate a parsed chain file and build the ChainSet."""
    _check_keys("chain file", data, {"defaults", "router", "gating", "chains"})
    defaults = data.get("defaults", {})
    _check_keys("[defaults]", defaults, _DEFAULT_KEYS)
    raw_chains = data.get("chains")
    if not isinstance(raw_chains, dict) or not raw_chains:
        raise ChainError("chain file: no [chains] defined")
    chains: dict[str, Chain] = {}
    for name, raw in raw_chains.items():
        _check_keys(f"chain {name!r}", raw, {"description", "stages", "early_exit"})
        stages = tuple(_stage(name, s, defaults) for s in raw.get("stages", ()))
        if not stages:
            raise ChainError(f"chain {name!r}: no stages")
        names = [s.name for s in stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ChainError(f"chain {name!r}: stage name(s) used twice: {', '.join(dupes)}")
        if stages[-1].role != "synthesis" or any(s.role == "synthesis" for s in stages[:-1]):
            raise ChainError(f"chain {name!r}: must end with its one synthesis stage")
        if stages[-1].optional or stages[-1].applies_to:
            raise ChainError(f"chain {name!r}: the synthesis stage cannot be optional or limited")
        early_exit = raw.get("early_exit")
        if early_exit is not None and not (isinstance(early_exit, int | float) and 0.0 <= early_exit <= 1.0):
            raise ChainError(f"chain {name!r}: early_exit must be within [0, 1]")
        chains[name] = Chain(name, raw.get("description", ""), stages, early_exit)
    router = dict(data.get("router", {}))
    _check_keys("[router]", router, set(QUERY_TYPES))
    if "general" not in router:
        raise ChainError("[router]: needs a 'general' entry")
    for query_type, chain in router.items():
        if chain not in chains:
            raise ChainError(f"[router]: {query_type} -> unknown chain {chain!r}")
    gating = {k: tuple(v) for k, v in data.get("gating", {}).items()}
    _check_keys("[gating]", gating, set(QUERY_TYPES))
    for query_type, kinds in gating.items():
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ChainError(f"[gating]: {query_type} -> unknown kind(s) {', '.join(unknown)}")
    _check_acyclic(chains)
    return ChainSet(chains, router, gating)


def _check_acyclic(chains: dict[str, Chain]) -> None:
    """Stages become graph nodes shared by chains; their order must agree (no cycle)."""
    edges: dict[str, set[str]] = {}
    for chain in chains.values():
        for a, b in itertools.pairwise(chain.stages):
            edges.setdefault(a.name, set()).add(b.name)
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = " -> ".join([*path[path.index(nxt) :], nxt])
                raise ChainError(f"chains order stages in a cycle: {cycle}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


@cache
def load_chains(path: str | Path = DEFAULT_CHAINS_FILE) -> ChainSet:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChainError(f"chain file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChainError(f"chain file {path} is not valid TOML: {exc}") from None
    return parse_chains(data)


def configured_chains() -> ChainSet:
    """The chains in use: the file MIRADOR_CHAINS_FILE names, else the project's chains.toml."""
    return load_chains(os.environ.get("MIRADOR_CHAINS_FILE") or DEFAULT_CHAINS_FILE)
