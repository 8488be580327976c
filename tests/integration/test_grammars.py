"""The findings' grammars compile in llama.cpp: its GBNF parser is the judge of their
escaping. What the grammars say is tested without llama.cpp in tests/unit/test_findings.py."""

from __future__ import annotations

import pytest
from llama_cpp import LlamaGrammar

from graph.findings import NOTES_GRAMMAR, fixes_grammar, grammar, quotable, summary_grammar
from tests.unit.test_findings import SOURCE, _finding, summary_findings

pytestmark = pytest.mark.integration


def test_quotable_lines_escape_into_gbnf_literals(tmp_path):
    source = tmp_path / "q.py"
    source.write_text('pattern = "a\\\\d+"  # quotes and backslashes\n', encoding="utf-8")
    line = source.read_text(encoding="utf-8").strip()
    assert quotable(source.read_text(encoding="utf-8")) == [line]
    assert LlamaGrammar.from_string(grammar(0, line), verbose=False) is not None


def test_the_grammar_compiles_in_llama_cpp():
    for n in (0, 1, 4):
        assert LlamaGrammar.from_string(grammar(n, SOURCE), verbose=False) is not None


def test_the_summary_grammar_compiles():
    assert LlamaGrammar.from_string(summary_grammar(summary_findings()), verbose=False) is not None
    assert LlamaGrammar.from_string(summary_grammar([]), verbose=False) is not None


def test_the_notes_grammar_compiles():
    assert LlamaGrammar.from_string(NOTES_GRAMMAR, verbose=False) is not None


def test_the_fixes_grammar_compiles():
    findings = [_finding(46, "with lock:", "a lock"), _finding(49, "await send(c)", "one after another")]
    assert LlamaGrammar.from_string(fixes_grammar(findings), verbose=False) is not None
