"""Scripted chat models and a bag-of-words embedder: they pin the graph's edges in unit
tests. The integration tests use the real embedded model and the real MiniLM embedder."""

from __future__ import annotations

import copy
import random
import re
import time
import tomllib
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from graph.chains import DEFAULT_CHAINS_FILE, ChainSet, StageSpec, parse_chains
from graph.runtime import compute

# Words of the test question and document, and filler: a default reply mixes both, so it
# is on the question (relevance) and differs from every other stage's reply (novelty).
TOPIC = ["streaming", "performance", "code", "process", "context", "query", "stage", "grows", "bound"]
FILLER = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "amber",
    "basalt",
    "cobalt",
    "dune",
    "ember",
    "fjord",
    "garnet",
    "harbor",
    "iris",
    "jade",
    "kelp",
    "lagoon",
    "marble",
    "nectar",
    "onyx",
    "pebble",
    "quartz",
    "reef",
    "slate",
    "tundra",
    "umber",
    "vale",
    "willow",
]


def default_reply(stage: str) -> str:
    rng = random.Random(stage)
    words = TOPIC + rng.sample(FILLER, 6)
    rng.shuffle(words)
    return f"{stage} finds: " + " ".join(words) + "."


def bow_embed(texts: Sequence[str]) -> np.ndarray:
    """A deterministic bag-of-words embedder (hashed to 512 dimensions, unit length)."""
    out = np.zeros((len(texts), 512), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in re.findall(r"[a-z0-9]+", text.lower()):
            out[row, zlib.crc32(word.encode()) % 512] += 1.0
        norm = np.linalg.norm(out[row])
        out[row] = out[row] / norm if norm else out[row]
    return out


class _Scripted(BaseChatModel):
    script: Any = None
    stage: str = ""

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        reply = self.script.take(self.stage, messages)
        token = compute.run_token()
        for piece in re.findall(r"\S+\s*|\s+", reply):
            time.sleep(self.script.delays.get(self.stage, 0.0))
            if compute.cancelled(token):  # as the embedded model does on Ctrl-C, SIGTERM or its run's cancel
                raise compute.Cancelled
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        meta = {"finish_reason": "stop", "token_probability": self.script.token_probability}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=meta))

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kw))


class Script:
    """A chat_model_factory whose models answer from a script and record what they were sent.

    replies: stage -> reply, or a list of replies for successive attempts (the last repeats);
        a callable reply gets the calls so far and returns the text. Default: default_reply(stage).
    failures: stage -> exception its model raises.
    delays: stage -> seconds between streamed tokens.
    """

    def __init__(
        self,
        replies: dict[str, Any] | None = None,
        failures: dict[str, Exception] | None = None,
        delays: dict[str, float] | None = None,
        token_probability: float | None = None,
    ):
        self.replies = replies or {}
        self.failures = failures or {}
        self.delays = delays or {}
        self.token_probability = token_probability
        self.calls: list[tuple[str, list[BaseMessage]]] = []
        self.built: list[StageSpec] = []
        self.log: list[tuple[str, str]] = []  # ("build" | "call", stage), in order

    def __call__(self, spec: StageSpec) -> BaseChatModel:
        self.built.append(spec)
        self.log.append(("build", spec.name))
        return _Scripted(script=self, stage=spec.name)

    def take(self, stage: str, messages: list[BaseMessage]) -> str:
        attempt = self.stages_called().count(stage)
        self.calls.append((stage, list(messages)))
        self.log.append(("call", stage))
        if stage in self.failures:
            raise self.failures[stage]
        reply = self.replies.get(stage, default_reply(stage))
        if isinstance(reply, list):
            reply = reply[min(attempt, len(reply) - 1)]
        return reply(self) if callable(reply) else reply

    def stages_called(self) -> list[str]:
        return [stage for stage, _ in self.calls]

    def messages_for(self, stage: str, attempt: int = 1) -> list[BaseMessage]:
        return [messages for name, messages in self.calls if name == stage][attempt - 1]

    def reply_of(self, stage: str) -> str:
        """What `stage` answered on its first call (for replies that copy it)."""
        return default_reply(stage) if stage not in self.replies else self.replies[stage]


_RAW_CHAINS = tomllib.loads(DEFAULT_CHAINS_FILE.read_text(encoding="utf-8"))


def chains(early_exit: float | None = None, **stage_changes: dict[str, Any]) -> ChainSet:
    """The shipped chains with no early exits, except the code chain's when given, and
    the code chain's stages changed as asked (e.g. code_analyst={"timeout_s": 0.05})."""
    raw = copy.deepcopy(_RAW_CHAINS)
    for chain in raw["chains"].values():
        chain.pop("early_exit", None)
    if early_exit is not None:
        raw["chains"]["code"]["early_exit"] = early_exit
    for stage in raw["chains"]["code"]["stages"]:
        stage.update(stage_changes.get(stage["name"], {}))
    return parse_chains(raw)
