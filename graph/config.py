"""Runtime configuration: one typed object, read by nodes through `runtime.context`.

Every field has a description (Studio renders it). A field the caller does not
pass falls back to the environment variable MIRADOR_<FIELD>, converted to the
field's type; one it passes wins, even when it passes the default. `Settings`
holds every MIRADOR_* variable and is read when asked for, never at import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import Field, Json, ValidationError
from pydantic_settings import NoDecode

from retrieval.locations import Locations, xdg

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHAINS_FILE = PROJECT_ROOT / "chains.toml"
DEFAULT_PROMPTS_DIR = PROJECT_ROOT / "prompts"


class Settings(Locations):
    """Every MIRADOR_* environment variable, converted to its type.

    Read when asked for (`Settings.read()`), never at import, so a variable set after import
    counts. The Context's fields are here as `None` (not set) or the environment's value; API
    keys are not here at all: MIRADOR_OPENAI_API_KEY and a stage's api_key_env are read from
    the environment when a call needs them, so no settings object ever holds a secret."""

    # MIRADOR_-prefixed, an empty variable unset (Locations' model_config). Where Mirador keeps
    # things: data_dir (the index, threads) and index_dir come from Locations.
    cache_dir: Path = Field(default_factory=lambda: xdg("XDG_CACHE_HOME", ".cache"))  # embedded models
    # The threads: a SQLite file, or a postgresql:// URL (which may hold a password: not in the repr).
    threads_db: str = Field(default="", repr=False)
    chains_file: Path = DEFAULT_CHAINS_FILE  # its stage names become the graph's nodes
    prompts_dir: Path = DEFAULT_PROMPTS_DIR
    n_ctx: int = 8192  # the embedded model's context window, in tokens
    # The Context's fields, None where the environment does not set them (index_dir: Locations).
    chain: str | None = None
    backend: str | None = None
    models: Annotated[Json[dict[str, Any]], NoDecode] | None = None
    embedded_model: str | None = None
    min_confidence: float | None = None
    fallback_to_embedded: bool | None = None
    ollama_base_url: str | None = None
    ollama_keep_alive: str | None = None
    ollama_prewarm: bool | None = None
    num_ctx: int | None = None
    max_num_ctx: int | None = None
    openai_base_url: str | None = None
    max_tokens: int | None = None
    max_query_chars: int | None = None
    max_document_bytes: int | None = None
    max_document_chars: int | None = None
    retrieval: bool | None = None
    retrieval_k: int | None = None
    reports_dir: str | None = None

    @classmethod
    def read(cls) -> Settings:
        """The environment's settings now; a bad value is one ValueError line naming its variable."""
        try:
            return cls()
        except ValidationError as exc:
            raise ValueError(_env_error(exc)) from None


_EXPECTED = {
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "bool_parsing": "true or false",
    "json_invalid": "a JSON object",
    "dict_type": "a JSON object",
}


def _env_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    variable = f"MIRADOR_{str(error['loc'][0]).upper()}"
    expected = _EXPECTED.get(error["type"])
    if expected is None:
        return f"{variable}: {error['msg']}"
    return f"{variable} must be {expected}, got {error['input']!r}"


def data_dir() -> Path:
    """Where Mirador keeps the index and conversation threads."""
    return Settings.read().data_dir


Backend = Literal["auto", "embedded", "ollama", "openai"]
BACKENDS: tuple[str, ...] = get_args(Backend)
API_KEY_ENV = "MIRADOR_OPENAI_API_KEY"  # the OpenAI-compatible servers' key, when one is needed


def check_base_url(url: str, what: str) -> str:
    """`url` when it is an http(s) URL with a host, else a one-line ValueError.

    A URL that carries a user or password is refused without being echoed: keys go in
    an environment variable, never in configuration that reports and logs repeat."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"{what}: {url!r} is not a URL") from None
    if parts.username or parts.password:
        raise ValueError(f"{what}: the URL carries credentials; put the key in {API_KEY_ENV} instead")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what}: {url!r} is not an http:// or https:// URL with a host")
    return url


_DURATION = re.compile(r"-?\d+|-?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")


def check_keep_alive(value: str) -> str:
    """`value` when Ollama reads it as a keep_alive: seconds, or a duration such as 30m or 1h30m."""
    if not _DURATION.fullmatch(value):
        raise ValueError(
            f"ollama_keep_alive: {value!r} is neither seconds nor a duration such as 30m or 1h30m"
        )
    return value


@dataclass(kw_only=True)
class Context:
    """How one Mirador run is carried out."""

    chain: str = field(
        default="",
        metadata={"description": "Chain to run (see chains.toml). Empty: chosen from the query type."},
    )
    backend: Backend = field(
        default="auto",
        metadata={
            "description": "Model backend: 'embedded' (llama.cpp in-process), 'ollama', 'openai' "
            "(an OpenAI-compatible server: vLLM, SGLang, llama.cpp's server, LM Studio, Ollama's "
            "/v1), or 'auto' (Ollama when it answers and has the stage's model, else embedded)."
        },
    )
    models: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "description": 'Model per stage, overriding chains.toml, e.g. {"code_analyst": '
            '"qwen2.5-coder:14b"}; "*" names the model of every other stage. The name is the '
            "one the server knows. Env: MIRADOR_MODELS as JSON."
        },
    )
    embedded_model: str = field(
        default="",
        metadata={
            "description": "Embedded model for every stage that runs in-process: 'coder-0.5b' "
            "(fast) or 'coder-1.5b' (the analysis model). Empty: each stage's own (chains.toml)."
        },
    )
    min_confidence: float | None = field(
        default=None,
        metadata={
            "description": "Confidence under which every stage is repeated (0-1). "
            "Empty: each stage's own threshold."
        },
    )
    fallback_to_embedded: bool = field(
        default=False,
        metadata={
            "description": "When an Ollama or OpenAI-compatible stage fails (refused, dropped, "
            "unknown model), run it again on the embedded model."
        },
    )
    ollama_base_url: str = field(
        default="http://127.0.0.1:11434",
        metadata={"description": "Ollama server for stages that name no base_url of their own."},
    )
    ollama_keep_alive: str = field(
        default="30m",
        metadata={
            "description": "How long Ollama keeps a model loaded after each call (and after the "
            "warm-up): seconds, or a duration such as 30m or 1h; -1 keeps it until Ollama stops. "
            "Longer than Ollama's 5m, so a model warmed at the start is still loaded for its stage."
        },
    )
    ollama_prewarm: bool = field(
        default=True,
        metadata={
            "description": "Load every Ollama model of the run, in parallel, before the first stage "
            "(a load request with keep_alive and num_ctx). Off when the models do not fit in the "
            "server's memory together: Ollama would unload one to load the next."
        },
    )
    num_ctx: int = field(
        default=0,
        metadata={
            "description": "Ollama's context window in tokens for every stage; 0 keeps each stage's "
            "own (chains.toml num_ctx), where 0 means fitted to the prompt Mirador builds."
        },
    )
    max_num_ctx: int = field(
        default=32_768,
        metadata={
            "description": "Cap on a fitted Ollama context (the larger of 8,192 and the estimated prompt "
            "plus the stage's max_tokens). A prompt longer than its context is reported."
        },
    )
    openai_base_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata={
            "description": "OpenAI-compatible server for stages that name no base_url of their own "
            "(backend 'openai'); '/v1' is added to a URL with no path. Its API key, if it needs "
            f"one, comes from the environment ({API_KEY_ENV} or the stage's api_key_env), never from here."
        },
    )
    max_tokens: int = field(
        default=0,
        metadata={"description": "Cap on tokens per stage; 0 keeps each stage's own cap."},
    )
    max_query_chars: int = field(
        default=20_000,
        metadata={"description": "Longer questions are refused (put long text in a document)."},
    )
    max_document_bytes: int = field(
        default=5_000_000,
        metadata={"description": "Larger documents are refused."},
    )
    max_document_chars: int = field(
        default=12_000,
        metadata={"description": "The document is cut to this many characters in prompts."},
    )
    retrieval: bool = field(
        default=True,
        metadata={"description": "Draw passages from the index (gated by query type). Off: none."},
    )
    index_dir: str = field(
        default="",
        metadata={
            "description": "The index (`mirador index` builds it): a folder, or a Chroma server "
            "shared by several machines as http://host:port. Empty: MIRADOR_INDEX_DIR or "
            "~/.local/share/mirador/index."
        },
    )
    retrieval_k: int = field(
        default=4,
        metadata={"description": "At most this many passages enter the prompt."},
    )
    reports_dir: str = field(
        default="reports",
        metadata={"description": "Where reports are written (relative paths: to the working dir)."},
    )

    # The fields the caller passed (set in __new__, which sees the same arguments as __init__);
    # every other field falls back to the environment.
    _explicit: ClassVar[frozenset[str]] = frozenset()

    def __new__(cls, **passed: Any) -> Self:
        self = super().__new__(cls)
        object.__setattr__(self, "_explicit", frozenset(passed))
        return self

    def __post_init__(self) -> None:
        env = Settings.read()
        for f in fields(self):
            if f.name not in self._explicit and f.name in env.model_fields_set:
                setattr(self, f.name, getattr(env, f.name))
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r} (choose from {', '.join(BACKENDS)})")
        if self.embedded_model not in ("", "coder-0.5b", "coder-1.5b"):
            raise ValueError(
                f"unknown embedded model {self.embedded_model!r} (choose from coder-0.5b, coder-1.5b)"
            )
        if not isinstance(self.models, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in self.models.items()
        ):
            raise ValueError("models must map stage names to model names")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError("min_confidence must be within [0, 1]")
        check_base_url(self.ollama_base_url, "ollama_base_url")
        check_base_url(self.openai_base_url, "openai_base_url")
        if self.max_tokens < 0:
            raise ValueError("max_tokens must be 0 or more")
        check_keep_alive(self.ollama_keep_alive)
        if self.num_ctx < 0 or self.max_num_ctx < 1024:
            raise ValueError("num_ctx must be 0 or more, and max_num_ctx 1024 or more")
        if self.max_query_chars <= 0 or self.max_document_bytes <= 0:
            raise ValueError("max_query_chars and max_document_bytes must be positive")
        if self.max_document_chars <= 0:
            raise ValueError("max_document_chars must be positive")
