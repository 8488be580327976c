"""Scripted chat models: they pin the graph's edges in unit tests, nothing more."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk

from graph.chains import StageSpec


class _Recording(GenericFakeChatModel):
    script: Any = None
    stage: str = ""

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        self.script.calls.append((self.stage, list(messages)))
        self.script.log.append(("call", self.stage))
        failure = self.script.failures.get(self.stage)
        if failure is not None:
            raise failure
        yield from super()._stream(messages, stop, run_manager, **kw)


class Script:
    """A chat_model_factory whose models answer from a script, recording what they were sent.

    replies: stage name -> reply text (the same for every call of that stage).
    failures: stage name -> exception the stage's model raises.
    """

    def __init__(self, replies: dict[str, str] | None = None, failures: dict[str, Exception] | None = None):
        self.replies = replies or {}
        self.failures = failures or {}
        self.calls: list[tuple[str, list[BaseMessage]]] = []
        self.built: list[StageSpec] = []
        self.log: list[tuple[str, str]] = []  # ("build" | "call", stage), in order

    def __call__(self, spec: StageSpec) -> GenericFakeChatModel:
        self.built.append(spec)
        self.log.append(("build", spec.name))
        reply = self.replies.get(spec.name, f"{spec.name} says: finding about the question.")
        return _Recording(messages=iter([AIMessage(reply)]), script=self, stage=spec.name)

    def stages_called(self) -> list[str]:
        return [stage for stage, _ in self.calls]

    def messages_for(self, stage: str) -> list[BaseMessage]:
        return next(messages for name, messages in self.calls if name == stage)
