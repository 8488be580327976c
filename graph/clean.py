"""Output hygiene: what a stage said, minus what no reader should see.

Applied to every stage's output before it is stored or passed on. Each step
records how many characters it removed, so the report can say what was cut.
"""

from __future__ import annotations

import re

# End-of-turn markers of the common chat templates: text after one is not the answer.
END_TOKENS = (
    "<EOS_TOKEN>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end|>",
    "<end_of_turn>",
    "</s>",
    "[/INST]",
)
# Stop sequences handed to the models, so most of the above never get generated.
STOP_SEQUENCES = list(END_TOKENS)
SPECIAL_TOKEN = _SPECIAL = re.compile(
    r"<\|[a-z_]{2,20}\|>|<(?:EOS|BOS|PAD|UNK)_TOKEN>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>"
)
_SPACE = re.compile(r"\s+")
# The header Mirador puts before each stage's instructions ("### Specialist 2: Code analyst
# [code_analyst]"); a model that writes one is echoing the template or starting a turn.
TURN_HEADER = re.compile(r"^[ \t]*#{0,6}[ \t]*\**Specialist \d+:[^\n]*$", re.MULTILINE)
_MIN_REPEAT_CHARS = 40  # paragraphs shorter than this (headings, "---") may repeat
_MIN_REPEAT_LINE_CHARS = 60  # a prose line this long, seen twice, is a loop
_LOOP_SHARE = 0.6  # from the first repeat on, this share of long lines repeats: a loop


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def clean_output(text: str, *, echoes: tuple[str, ...] = ()) -> tuple[str, dict[str, int]]:
    """Return the cleaned text and the characters removed per kind.

    `echoes` are texts the model was given (its instructions, the query line,
    the hand-off sentence): lines of the output that merely repeat one are cut.
    """
    removed: dict[str, int] = {}

    def note(kind: str, before: str, after: str) -> str:
        if len(before) != len(after):
            removed[kind] = removed.get(kind, 0) + len(before) - len(after)
        return after

    cut = min((i for i in (text.find(t) for t in END_TOKENS) if i >= 0), default=-1)
    if cut >= 0:
        text = note("after_end_token", text, text[:cut])
    text = note("special_tokens", text, _SPECIAL.sub("", text))

    text = note("prompt_echo", text, TURN_HEADER.sub("", text))
    echo_lines = {_norm(line) for e in echoes for line in e.splitlines() if len(_norm(line)) > 12}
    kept_lines = []
    for line in text.splitlines():
        if _norm(line) in echo_lines:
            removed["prompt_echo"] = removed.get("prompt_echo", 0) + len(line)
        else:
            kept_lines.append(line)
    text = "\n".join(kept_lines)

    text = _cut_loop(text, removed)
    text = _drop_repeated_lines(text, removed)
    seen: set[str] = set()
    paragraphs = []
    for para in re.split(r"\n\s*\n", text):
        key = _norm(para)
        if len(key) >= _MIN_REPEAT_CHARS and key in seen:
            removed["repetition"] = removed.get("repetition", 0) + len(para)
            continue
        seen.add(key)
        paragraphs.append(para)
    text = "\n\n".join(paragraphs)

    return text.strip(), removed


def _drop_repeated_lines(text: str, removed: dict[str, int]) -> str:
    """Drop long prose lines seen before (a loop re-emitting its answer); code is left alone."""
    seen: set[str] = set()
    kept = []
    in_code = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        key = _norm(line)
        if not in_code and len(key) >= _MIN_REPEAT_LINE_CHARS and key in seen:
            removed["repetition"] = removed.get("repetition", 0) + len(line) + 1
            continue
        seen.add(key)
        kept.append(line)
    return "\n".join(kept)


def _cut_loop(text: str, removed: dict[str, int]) -> str:
    """Cut a loop: from the first repeated long line on, most long lines are repeats.

    Everything after the last original content (prose sentences or code) before
    the loop goes, including the headings and template lines the loop drags along.
    """
    lines = text.splitlines()
    seen: set[str] = set()
    in_code = False
    last_content = -1  # last line of original content before the loop
    loop_start = None
    repeats = total = 0
    for i, line in enumerate(lines):
        fence = line.lstrip().startswith("```")
        in_code = in_code != fence
        key = _norm(line)
        if in_code or fence:
            if loop_start is None:
                last_content = i
            continue
        if len(key) < _MIN_REPEAT_LINE_CHARS:
            if loop_start is None and key.endswith((".", "!", "?")) and key not in seen:
                last_content = i  # a short sentence is content; a heading or "Query:" is not
            seen.add(key)
            continue
        repeated = key in seen
        seen.add(key)
        if loop_start is None and repeated:
            loop_start = i
        if loop_start is None:
            last_content = i
        else:
            total += 1
            repeats += repeated
    if loop_start is None or repeats < _LOOP_SHARE * total:
        return text
    kept = "\n".join(lines[: last_content + 1])
    removed["repetition"] = removed.get("repetition", 0) + len(text) - len(kept)
    return kept


def defuse(text: str) -> str:
    """Quoted material with its chat-template tokens made inert: `<|im_start|>` becomes
    `<⁠|im_start|⁠>` (a word joiner inside), which reads the same but no tokenizer
    maps to the special token, so a document cannot open a turn of its own."""
    return SPECIAL_TOKEN.sub(
        lambda m: m.group(0)[0] + "\u2060" + m.group(0)[1:-1] + "\u2060" + m.group(0)[-1], text
    )
