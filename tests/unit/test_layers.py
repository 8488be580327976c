"""Imports point one way: graph may import retrieval, retrieval never imports graph; the model
runtime (graph/runtime) never imports the graph's nodes, builder, CLI or chat-model factory."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RETRIEVAL = ROOT / "retrieval"
RUNTIME = ROOT / "graph" / "runtime"
# What the runtime sits under: these import it, never the other way round.
ABOVE_RUNTIME = ("graph.nodes", "graph.builder", "graph.agent", "graph.cli", "graph.models")


def _imported(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_module_under_retrieval_imports_graph():
    modules = sorted(RETRIEVAL.rglob("*.py"))
    assert len(modules) > 5  # the folder was found
    wrong = {
        f"{path.relative_to(RETRIEVAL)}: {name}"
        for path in modules
        for name in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if name == "graph" or name.startswith("graph.")
    }
    assert not wrong


def test_no_module_under_graph_runtime_imports_the_layers_above_it():
    modules = sorted(RUNTIME.rglob("*.py"))
    assert len(modules) >= 4  # the folder was found: __init__, compute, embedded, backends
    wrong = {
        f"{path.relative_to(RUNTIME)}: {name}"
        for path in modules
        for name in _imported(ast.parse(path.read_text(encoding="utf-8")))
        if any(name == above or name.startswith(f"{above}.") for above in ABOVE_RUNTIME)
    }
    assert not wrong


def test_the_check_sees_an_import_of_graph():
    tree = ast.parse("import graph.config\nfrom graph import runtime\ndef f():\n    from graph.x import y\n")
    assert _imported(tree) == ["graph.config", "graph", "graph.x"]
