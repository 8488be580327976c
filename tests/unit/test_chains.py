"""Chain loading and validation: the shipped chains, and every way a chain file can be wrong."""

from __future__ import annotations

import copy
import dataclasses
import os
import tomllib

import pytest

from graph.chains import (
    DEFAULT_CHAINS_FILE,
    ChainError,
    StageSpec,
    configured_chains,
    load_chains,
    parse_chains,
)
from graph.state import PlanEntry


@pytest.fixture
def raw():
    return tomllib.loads(DEFAULT_CHAINS_FILE.read_text(encoding="utf-8"))


def test_shipped_chains_are_the_reference_set():
    chains = load_chains()
    names = lambda chain: [s.name for s in chains.get(chain).stages]  # noqa: E731
    assert names("code") == [
        "concurrency",
        "cost",
        "resources",
        "master_coder",
        "solution_architect",
        "synthesis",
    ]
    assert [s.kind for s in chains.get("code").stages[:3]] == ["concurrency", "cost", "resources"]
    assert names("streaming") == ["quick", "deep_analysis", "synthesis"]
    assert {"document", "research", "report", "comparison"} <= set(chains.chains)
    for chain in chains.chains.values():
        assert chain.stages[-1].role == "synthesis"


def test_defaults_fill_stages_and_stage_values_override_them():
    context = load_chains().get("document").stages[0]
    analyst = load_chains().get("document").stages[1]
    assert context.max_tokens == 160 and analyst.max_tokens == 320
    assert analyst.timeout_s == 300.0 and 0 <= analyst.min_confidence <= 1
    assert analyst.embedded == "coder-1.5b"  # [defaults]
    assert load_chains().get("streaming").stages[0].embedded == "coder-0.5b"


def test_router_covers_general_and_knows_every_target():
    chains = load_chains()
    assert chains.for_query_type("code").name == "code"
    assert chains.for_query_type("personal").name == chains.router["general"]


def test_unknown_chain_is_a_one_line_error():
    with pytest.raises(ChainError, match=r"unknown chain 'nope' \(known: .*code.*\)"):
        load_chains().get("nope")


def _stage(raw, chain, name):
    return next(s for s in raw["chains"][chain]["stages"] if s["name"] == name)


BREAKAGES = {
    "unknown stage key": (lambda r: _stage(r, "code", "cost").update(colour="red"), "unknown key"),
    "missing model": (lambda r: _stage(r, "code", "cost").pop("model"), "missing 'model'"),
    "threshold above 1": (
        lambda r: _stage(r, "code", "cost").update(min_confidence=1.5),
        r"min_confidence must be within \[0, 1\]",
    ),
    "negative tokens": (lambda r: _stage(r, "code", "cost").update(max_tokens=-1), "max_tokens"),
    "duplicate stage": (
        lambda r: r["chains"]["code"]["stages"].insert(1, dict(_stage(r, "code", "cost"))),
        "used twice",
    ),
    "no synthesis at the end": (lambda r: r["chains"]["code"]["stages"].pop(), "must end with"),
    "router to nowhere": (lambda r: r["router"].update(code="missing"), "unknown chain 'missing'"),
    "unknown query type": (
        lambda r: _stage(r, "code", "cost").update(applies_to=["astrology"]),
        "unknown query type",
    ),
    "missing prompt file": (
        lambda r: _stage(r, "code", "cost").update(prompt="no_such_prompt"),
        "prompt file not found",
    ),
    "unknown top-level key": (lambda r: r.update(extras={}), "unknown key"),
    "unknown analyst kind": (lambda r: _stage(r, "code", "cost").update(kind="style"), "kind must be one of"),
    "unknown embedded model": (
        lambda r: _stage(r, "code", "cost").update(embedded="gpt-5"), "embedded must be one of"
    ),
    "stages in a cycle": (
        lambda r: r["chains"].update(
            loop={"stages": [
                {"name": "master_coder", "model": "m"},
                {"name": "cost", "model": "m"},
                {"name": "synthesis", "model": "m", "role": "synthesis"},
            ]}
        ),
        "cycle: cost -> resources -> master_coder -> cost",
    ),
}  # fmt: skip


@pytest.mark.parametrize("breakage", BREAKAGES, ids=list(BREAKAGES))
def test_malformed_chain_files_are_rejected_with_a_reason(raw, breakage):
    mutate, message = BREAKAGES[breakage]
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(ChainError, match=message):
        parse_chains(broken)


def test_unparseable_and_missing_files(tmp_path):
    bad = tmp_path / "chains.toml"
    bad.write_text("[chains\n", encoding="utf-8")
    with pytest.raises(ChainError, match="not valid TOML"):
        load_chains(bad)
    with pytest.raises(ChainError, match="chain file not found"):
        load_chains(tmp_path / "absent.toml")


@pytest.mark.parametrize(
    ("mutate", "line"),
    [
        (lambda r: _stage(r, "code", "cost").update(colour="red", shade=1),
         "chain 'code' stage 'cost': unknown key(s) colour, shade"),
        (lambda r: _stage(r, "code", "cost").update(backend="ollama"),  # resolved per run, never in the file
         "chain 'code' stage 'cost': unknown key(s) backend"),
        (lambda r: r["defaults"].update(colour="red"), "[defaults]: unknown key(s) colour"),
        (lambda r: r["router"].update(astrology="code"), "[router]: unknown key(s) astrology"),
        (lambda r: r["chains"]["code"].update(colour="red"), "chain 'code': unknown key(s) colour"),
        (lambda r: r["chains"]["code"].update(early_exit=1.5), "chain 'code': early_exit must be within [0, 1]"),
        (lambda r: r["gating"].update(code=["diary"]), "[gating]: code: unknown kind(s) diary"),
        (lambda r: _stage(r, "code", "cost").update(timeout_s=0), "chain 'code' stage 'cost': timeout_s must be positive"),
        (lambda r: _stage(r, "code", "cost").update(role="boss"),
         "chain 'code' stage 'cost': role must be one of 'stage', 'fixes' or 'synthesis'"),
    ],
)  # fmt: skip
def test_a_schema_error_is_one_line_naming_where_and_the_field(raw, mutate, line):
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(ChainError) as error:
        parse_chains(broken)
    assert str(error.value) == line


def test_the_chain_file_is_named_by_the_environment_when_asked(tmp_path, monkeypatch):
    mine = tmp_path / "chains.toml"
    mine.write_text(
        DEFAULT_CHAINS_FILE.read_text(encoding="utf-8").replace("[chains.code]", "[chains.mine]\n"
        'description = "mine"\nstages = [{ name = "synthesis", model = "m", role = "synthesis" }]\n\n[chains.code]'),
        encoding="utf-8",
    )  # fmt: skip
    assert "mine" not in configured_chains().chains
    monkeypatch.setenv("MIRADOR_CHAINS_FILE", str(mine))
    assert configured_chains().get("mine").description == "mine"


def test_a_plan_entry_has_every_field_of_a_stage_spec():
    assert set(PlanEntry.__annotations__) == {f.name for f in dataclasses.fields(StageSpec)}
    spec = load_chains().get("code").stages[3]
    assert StageSpec.from_dict(spec.to_dict()) == spec


def test_an_edited_chain_file_is_read_again(tmp_path):
    """As prompts are: a graph built after the edit runs the edited chains."""
    path = tmp_path / "chains.toml"
    text = DEFAULT_CHAINS_FILE.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    before = load_chains(path)
    assert load_chains(path) is before  # parsed once while unchanged
    path.write_text(
        text.replace('description = "Checks first', 'description = "edited: Checks first', 1),
        encoding="utf-8",
    )
    was = path.stat()
    os.utime(path, ns=(was.st_atime_ns, was.st_mtime_ns + 1_000_000_000))
    assert load_chains(path).get("code").description.startswith("edited: ")
    assert not before.get("code").description.startswith("edited: ")
