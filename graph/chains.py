"""Chains are data: `chains.toml` is loaded here and validated before anything runs.

The file's schema is declared, not checked by hand: `StageSpec` holds a stage's fields with
their bounds and choices, `ChainTable` and `ChainFile` the file's tables; pydantic checks
them, and the first mistake becomes one ChainError line naming the chain, stage and field.
"""

from __future__ import annotations

import dataclasses
import graphlib
import itertools
import re
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast, get_args, get_type_hints

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from graph.config import DEFAULT_CHAINS_FILE, Settings, check_base_url
from graph.prompts import load_prompt
from retrieval import Kind

if TYPE_CHECKING:
    from graph.state import PlanEntry

QueryType = Literal["code", "document", "research", "report", "comparison", "decision", "personal", "general"]
QUERY_TYPES: tuple[str, ...] = get_args(QueryType)
Role = Literal["stage", "fixes", "synthesis"]  # fixes: code for the top findings
ROLES: tuple[str, ...] = get_args(Role)
# The embedded models a stage may name (graph.models has their files).
EmbeddedChoice = Literal["coder-0.5b", "coder-1.5b"]
EMBEDDED_CHOICES: tuple[str, ...] = get_args(EmbeddedChoice)
# The kinds of problem an analyst stage looks for (the checks use the same words).
FindingKind = Literal["concurrency", "cost", "resources"]
FINDING_KINDS: tuple[str, ...] = get_args(FindingKind)
# What [defaults] may give every stage that does not say otherwise.
DefaultKey = Literal[
    "temperature", "max_tokens", "num_ctx", "timeout_s", "min_confidence", "max_repeats", "embedded"
]
RESOLVED_PER_RUN = ("backend", "keep_alive")  # StageSpec fields a run sets, never the chain file


class ChainError(ValueError):
    """A chain file that cannot be used; the message is one line for the user."""


def _base_url(url: str) -> str:
    return check_base_url(url, "base_url") if url else url


def _variable_name(name: str) -> str:
    # Never echoed: a key pasted here by mistake must not reach the error line.
    if name and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError("api_key_env must name an environment variable (the key itself never goes here)")
    return name


@dataclass(frozen=True)
class StageSpec:
    """One model stage of a chain. Its fields, bounds and choices are the chain file's stage
    schema (checked by pydantic when the file is loaded; a plain dataclass everywhere else)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    title: str = ""
    role: Role = "stage"
    prompt: str = ""  # prompts/<prompt>.md; empty: the stage's name
    backend: str = ""  # resolved per run: "embedded", "ollama" or "openai"
    # The stage's Ollama or OpenAI-compatible server; empty: the run's default.
    base_url: Annotated[str, AfterValidator(_base_url)] = ""
    # The environment variable holding its server's key; empty: the run's.
    api_key_env: Annotated[str, AfterValidator(_variable_name)] = ""
    # The embedded model when the stage runs in-process; empty: the default.
    embedded: Literal["", EmbeddedChoice] = ""
    # An analyst's mandate on a code document; empty: not an analyst.
    kind: Literal["", FindingKind] = ""
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.2
    max_tokens: Annotated[int, Field(gt=0)] = 320
    # Ollama's context window in tokens; 0: fitted to the prompt when the run is planned.
    num_ctx: Annotated[int, Field(ge=0)] = 0
    keep_alive: str = ""  # resolved per run from the Context (Ollama stages): how long the model stays loaded
    timeout_s: Annotated[float, Field(gt=0.0)] = 300.0
    min_confidence: Annotated[float, Field(ge=0.0, le=1.0)] = 0.45
    max_repeats: Annotated[int, Field(ge=0)] = 1
    optional: bool = False
    applies_to: tuple[QueryType, ...] = ()  # query types; empty: all

    def to_dict(self) -> PlanEntry:
        return cast("PlanEntry", asdict(self))

    @classmethod
    def from_dict(cls, data: PlanEntry | dict[str, Any]) -> StageSpec:
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


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChainTable(_Table):
    """[chains.<name>]: what the chain is for, its stages in order, when optional ones are skipped."""

    description: str = ""
    stages: Annotated[list[dict[str, Any]], Field(min_length=1)]  # each a StageSpec once [defaults] fill it
    # Optional stages are skipped once the chain's confidence so far reaches this.
    early_exit: Annotated[float | None, Field(ge=0.0, le=1.0)] = None


class ChainFile(_Table):
    """chains.toml: defaults for every stage, the router, retrieval gating, and the chains."""

    defaults: dict[DefaultKey, Any] = {}
    router: dict[QueryType, str] = {}  # query type -> chain name; 'general' is required
    gating: dict[QueryType, tuple[Kind, ...]] = {}  # query type -> the kinds of indexed content it sees
    chains: Annotated[dict[str, ChainTable], Field(min_length=1)]


_STAGE = TypeAdapter(StageSpec)
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")
_BOUND = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
_ITEMS = {"applies_to": "query type", "gating": "kind"}  # what a list's unknown items are


def _bounds(owner: type, name: str) -> str:
    """A field's declared bounds in words: 'within [0, 1]', 'positive' or '0 or more'."""
    limits: dict[str, float] = {}
    for info in get_type_hints(owner, include_extras=True)[name].__metadata__:
        for bound in info.metadata:
            limits.update(dataclasses.asdict(bound))
    if "ge" in limits and "le" in limits:
        return f"within [{limits['ge']:g}, {limits['le']:g}]"
    return "positive" if "gt" in limits else f"{limits['ge']:g} or more"


def _parent(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Where an error's field sits: its table (for a key, the table it is a key of)."""
    return loc[:-2] if loc[-1:] == ("[key]",) else loc[:-1]


def _one_line(
    exc: ValidationError, locate: Callable[[tuple[Any, ...]], tuple[str, list[Any]]], owner: type
) -> str:
    """pydantic's first error as one line: where (chain, stage, table), the field, what is wrong."""
    errors = exc.errors()
    first = errors[0]
    where, path = locate(tuple(first["loc"]))
    kind, name = first["type"], str(path[0]) if path else ""
    same = [e for e in errors if e["type"] == kind and _parent(e["loc"]) == _parent(first["loc"])]
    if kind in _UNKNOWN:
        reason = f"unknown key(s) {', '.join(sorted(str(e['loc'][-1]) for e in same))}"
    elif path and path[-1] == "[key]":  # a key outside a table's Literal
        reason = f"unknown key(s) {', '.join(sorted(str(e['input']) for e in same))}"
    elif kind == "literal_error" and path and isinstance(path[-1], int):  # an item of a list
        noun = _ITEMS.get(name) or _ITEMS.get(str(first["loc"][0]), "value")
        reason = f"{name}: unknown {noun}(s) {', '.join(str(e['input']) for e in same)}"
    elif kind == "literal_error":
        choices = str(first.get("ctx", {}).get("expected")).removeprefix("'', ")  # '': the default
        reason = f"{name} must be one of {choices}"
    elif kind in ("missing", "string_too_short", "too_short"):
        reason = f"missing {name!r}"
    elif kind in _BOUND:
        reason = f"{name} must be {_bounds(owner, name)}"
    elif kind == "value_error":  # our own validators' messages name their field
        reason = str(first.get("ctx", {}).get("error"))
    else:
        reason = f"{name}: {first['msg']}"
    return f"{where}: {reason}"


def _in_file(loc: tuple[Any, ...]) -> tuple[str, list[Any]]:
    if len(loc) > 2 and loc[0] == "chains":
        return f"chain {loc[1]!r}", list(loc[2:])
    if len(loc) > 1 and loc[0] in ("defaults", "router", "gating"):
        return f"[{loc[0]}]", list(loc[1:])
    return "chain file", list(loc)


def _stage(chain: str, raw: dict[str, Any], prompts: Path) -> StageSpec:
    where = f"chain {chain!r} stage {raw.get('name', '?')!r}"
    resolved = sorted(set(raw) & set(RESOLVED_PER_RUN))
    if resolved:
        raise ChainError(f"{where}: unknown key(s) {', '.join(resolved)}")
    try:
        spec = _STAGE.validate_python(raw)
        load_prompt(spec.prompt or spec.name, prompts)
    except ValidationError as exc:
        raise ChainError(_one_line(exc, lambda loc: (where, list(loc)), StageSpec)) from None
    except (FileNotFoundError, ValueError) as exc:
        raise ChainError(f"{where}: {exc}") from None
    return spec


def _chain(name: str, table: ChainTable, defaults: dict[str, Any], prompts: Path) -> Chain:
    stages = tuple(_stage(name, {**defaults, **raw}, prompts) for raw in table.stages)
    names = [s.name for s in stages]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ChainError(f"chain {name!r}: stage name(s) used twice: {', '.join(dupes)}")
    if stages[-1].role != "synthesis" or any(s.role == "synthesis" for s in stages[:-1]):
        raise ChainError(f"chain {name!r}: must end with its one synthesis stage")
    if stages[-1].optional or stages[-1].applies_to:
        raise ChainError(f"chain {name!r}: the synthesis stage cannot be optional or limited")
    return Chain(name, table.description, stages, table.early_exit)


def parse_chains(data: dict[str, Any]) -> ChainSet:
    """Validate a parsed chain file and build the ChainSet."""
    try:
        file = ChainFile.model_validate(data)
    except ValidationError as exc:
        raise ChainError(_one_line(exc, _in_file, ChainTable)) from None
    prompts = Settings.read().prompts_dir
    defaults: dict[str, Any] = dict(file.defaults.items())
    chains = {name: _chain(name, table, defaults, prompts) for name, table in file.chains.items()}
    if "general" not in file.router:
        raise ChainError("[router]: needs a 'general' entry")
    for query_type, chain in file.router.items():
        if chain not in chains:
            raise ChainError(f"[router]: {query_type} -> unknown chain {chain!r}")
    _check_order(chains)
    router: dict[str, str] = dict(file.router.items())
    gating: dict[str, tuple[str, ...]] = dict(file.gating.items())
    return ChainSet(chains, router, gating)


def _check_order(chains: dict[str, Chain]) -> None:
    """Stages become graph nodes shared by chains; their order must agree (no cycle)."""
    earlier: dict[str, set[str]] = {}
    for chain in chains.values():
        for a, b in itertools.pairwise(chain.stages):
            earlier.setdefault(b.name, set()).add(a.name)
    try:
        graphlib.TopologicalSorter(earlier).prepare()
    except graphlib.CycleError as exc:
        loop = exc.args[1][:-1]  # [a, b, ..., a]: each stage runs before the next
        start = loop.index(min(loop))  # from the first name in order, so dict order cannot change it
        ring = [*loop[start:], *loop[:start]]
        raise ChainError(f"chains order stages in a cycle: {' -> '.join([*ring, ring[0]])}") from None


def load_chains(path: str | Path = DEFAULT_CHAINS_FILE) -> ChainSet:
    """The chain file at `path`, parsed once and again when it changes (as prompts are): a
    graph built after an edit runs the edited chains; one built before keeps its own."""
    path = Path(path)
    try:
        changed = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ChainError(f"chain file not found: {path}") from None
    return _load_chains(path, changed)


@lru_cache(maxsize=16)
def _load_chains(path: Path, changed: int) -> ChainSet:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ChainError(f"chain file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ChainError(f"chain file {path} is not valid TOML: {exc}") from None
    return parse_chains(data)


def configured_chains() -> ChainSet:
    """The chains in use: the file MIRADOR_CHAINS_FILE names, else the project's chains.toml."""
    return load_chains(Settings.read().chains_file)
