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
_SPECIAL = re.compile(
    r"<\|[a-z_]{2,20}\|>|<(?:EOS|BOS|PAD|UNK)_TOKEN>|</?s>|\[/?INST\]|<(?:start|end)_of_turn>"
)
_SPACE = re.compile(r"\s+")
_MIN_REPEAT_CHARS = 40  # paragraphs shorter than this (headings, "---") may repeat


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

    echo_lines = {_norm(line) for e in echoes for line in e.splitlines() if len(_norm(line)) > 12}
    kept_lines = []
    for line in text.splitlines():
        if _norm(line) in echo_lines:
            removed["prompt_echo"] = removed.get("prompt_echo", 0) + len(line)
        else:
            kept_lines.append(line)
    text = "\n".join(kept_lines)

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
