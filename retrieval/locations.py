"""Where Mirador keeps its data and its index, and whether a location holds an index.

MIRADOR_DATA_DIR and MIRADOR_INDEX_DIR are read here, when asked for, never at import;
graph.config's Settings, which holds every MIRADOR_* variable, takes these two from here.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

INDEX_FILE = "chroma.sqlite3"  # what makes a folder a Mirador index: Chroma's database


def xdg(variable: str, fallback: str) -> Path:
    """Mirador's folder under the XDG base directory `variable`, else under ~/`fallback`."""
    return Path(os.environ.get(variable) or Path.home() / fallback) / "mirador"


class Locations(BaseSettings):
    """The environment's say on where the data and the index are."""

    model_config = SettingsConfigDict(env_prefix="MIRADOR_", env_ignore_empty=True, extra="ignore")

    data_dir: Path = Field(default_factory=lambda: xdg("XDG_DATA_HOME", ".local/share"))  # index, threads
    # The index when no run names one: a folder or a Chroma server's URL. It is also a field of
    # graph.config.Context, where None means the environment does not set it.
    index_dir: str | None = None


def index_location(configured: str = "") -> str:
    """The index: `configured`, else MIRADOR_INDEX_DIR, else the data dir's; a folder or a URL."""
    if configured:
        return configured
    where = Locations()
    return where.index_dir or str(where.data_dir / "index")


def is_server(location: str | Path) -> bool:
    """Whether the index is a Chroma server (http://host:port) rather than a folder."""
    return str(location).startswith(("http://", "https://"))


def is_index(location: str | Path) -> bool:
    """Whether `location` holds an index: a Chroma server (its collections are checked when it
    is opened) or a folder with Chroma's database in it."""
    return is_server(location) or Path(location, INDEX_FILE).is_file()
