"""Which backend a stage runs on: Ollama, an OpenAI-compatible server, or the embedded model.

`resolve_backend` decides it for each stage when a run is planned (`auto` asks the Ollama
server whether it has the stage's model, else the stage runs embedded); the probes and the
"has this model" rule are shared with `mirador doctor`, so both read a server the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from graph.chains import StageSpec
from graph.config import API_KEY_ENV
from graph.runtime.embedded import EMBEDDED_MODEL, embedded_model

Probe = Callable[[str], set[str] | None]  # a server's URL -> the models it has, None when silent


def openai_url(url: str) -> str:
    """An OpenAI-compatible base URL: `/v1` added when the URL has no path (as Ollama's)."""
    return url.rstrip("/") + "/v1" if urlsplit(url).path in ("", "/") else url


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


def has_model(available: set[str], model: str) -> bool:
    """Whether a server with `available` models has `model`: a name without a tag also
    matches its `:latest`."""
    return model in available or (":" not in model and f"{model}:latest" in available)


def resolve_backend(
    spec: StageSpec,
    requested: str,
    base_url: str,
    probe: Probe = ollama_models,
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
    elif not has_model(available, spec.model):
        why = f"Ollama at {url} has no model {spec.model}"
    else:
        return replace(spec, backend="ollama", base_url=url), f"{spec.name}: ollama at {url}"
    return embedded_spec(spec), f"{spec.name}: embedded ({why})"


def embedded_spec(spec: StageSpec) -> StageSpec:
    """The stage on the embedded backend: its own embedded model, else the default."""
    return replace(
        spec, backend="embedded", model=embedded_model(spec.embedded or EMBEDDED_MODEL).name, base_url=""
    )
