"""Chat models for stages: Ollama, an OpenAI-compatible server, or llama.cpp in-process
(the embedded default, in graph.runtime.embedded); which of them a stage runs on is decided
in graph.runtime.backends.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import cache
from typing import Any

import httpx
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatGenerationChunk
from pydantic import SecretStr

from graph.chains import ChainError, StageSpec
from graph.clean import STOP_SEQUENCES
from graph.config import API_KEY_ENV

# The embedded models and their adapter live in graph.runtime.embedded; the `as` names stay importable here.
from graph.runtime.embedded import CODER as CODER
from graph.runtime.embedded import EMBEDDED_MODEL as EMBEDDED_MODEL
from graph.runtime.embedded import EMBEDDED_MODELS as EMBEDDED_MODELS
from graph.runtime.embedded import SMALL as SMALL
from graph.runtime.embedded import EmbeddedChat, get_llama
from graph.runtime.embedded import EmbeddedModel as EmbeddedModel
from graph.runtime.embedded import assemble as assemble
from graph.runtime.embedded import cache_dir as cache_dir
from graph.runtime.embedded import embedded_model_path as embedded_model_path

ChatModelFactory = Callable[[StageSpec], BaseChatModel]


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
