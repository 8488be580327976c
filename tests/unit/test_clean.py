"""Output hygiene on the old system's real failures (fixtures from its report)."""

from __future__ import annotations

from pathlib import Path

from graph.clean import END_TOKENS, clean_output

FIXTURES = Path(__file__).parent.parent / "fixtures"
TEMPLATE = (
    "Query: Analyze the streaming implementation patterns and identify potential performance bottlenecks\n"
    "Please provide a comprehensive code analysis including:\n"
    "1. Overview of the code's purpose and functionality\n"
    "2. Key components and their relationships\n"
    "3. Identified patterns or architectural decisions\n"
    "4. Potential issues or areas for improvement\n"
    "5. Specific recommendations with code examples where applicable\n"
    "Analysis:"
)


def test_seed_model2_leak_and_repeats_are_removed():
    raw = (FIXTURES / "seed_model2.txt").read_text(encoding="utf-8")
    assert raw.count("<EOS_TOKEN>") == 6 and raw.count("The provided code implements") == 4
    text, removed = clean_output(raw, echoes=(TEMPLATE,))
    assert "EOS_TOKEN" not in text
    assert text.count("The provided code implements a StreamingOrchestrator") == 1
    assert "Please provide a comprehensive code analysis" not in text
    assert text.rstrip().endswith("progressive enhancement streaming.")
    assert removed["after_end_token"] > len(text)  # most of the raw output was the loop


def test_repeated_paragraphs_without_end_tokens_keep_the_first():
    para = "The orchestrator re-sends the whole context to every stage, which grows without bound."
    text, removed = clean_output(f"{para}\n\nA new point about warm-up.\n\n{para}\n\n{para}")
    assert text == f"{para}\n\nA new point about warm-up."
    assert set(removed) == {"repetition"} and removed["repetition"] >= 2 * len(para)


def test_a_repeated_block_of_short_lines_is_dropped_as_a_paragraph():
    block = "- cache the client\n- batch requests\n- trim the history"
    text, removed = clean_output(f"{block}\n\nThen measure.\n\n{block}")
    assert text == f"{block}\n\nThen measure." and removed == {"repetition": len(block)}


def test_repeated_lines_inside_code_blocks_are_kept():
    code = (
        "```python\n" + "result = compute_the_value(argument_one, argument_two, argument_three)\n" * 2 + "```"
    )
    assert clean_output(code) == (code, {})


def test_short_repeated_lines_such_as_headings_are_kept():
    text, removed = clean_output("## Fix\n\nOne.\n\n## Fix\n\nTwo.")
    assert text.count("## Fix") == 2 and removed == {}


def test_every_template_end_token_stops_the_output():
    for token in END_TOKENS:
        text, removed = clean_output(f"Answer.{token}garbage after")
        assert text == "Answer.", token
        assert removed["after_end_token"] == len(token) + len("garbage after")


def test_stray_special_tokens_are_stripped():
    text, removed = clean_output("<|im_start|>assistant\nReal answer.")
    assert text == "assistant\nReal answer." and removed["special_tokens"] == len("<|im_start|>")


def test_prompt_echo_lines_are_cut_but_similar_content_is_kept():
    echo = "Please add your perspective and insights."
    text, removed = clean_output(f"My point about caching.\n{echo}", echoes=(echo,))
    assert text == "My point about caching." and removed == {"prompt_echo": len(echo)}


def test_clean_text_is_untouched():
    original = "- The loop concatenates strings.\n- Use a list and join."
    assert clean_output(original) == (original, {})


def test_seed_model2_loop_is_cut_even_without_its_end_tokens():
    raw = (FIXTURES / "seed_model2.txt").read_text(encoding="utf-8").replace("<EOS_TOKEN>", "")
    text, removed = clean_output(raw, echoes=(TEMPLATE,))
    assert text.count("The provided code implements a StreamingOrchestrator") == 1
    assert text.count("Key relationships:") == 1
    assert "Please provide a comprehensive code analysis" not in text
    assert removed["repetition"] > 0.5 * len(raw)


def test_stage_headers_the_model_writes_are_template_echo():
    text, removed = clean_output(
        "### Specialist 2: Code analyst [code_analyst]\nThe loop is slow.\n**Specialist 3: Master coder [master_coder]**"
    )
    assert text == "The loop is slow." and removed["prompt_echo"] > 0
