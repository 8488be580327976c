"""Starting a real server for a test: a free loopback port, and waiting until it answers."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str, status: int = 200) -> Callable[[], bool]:
    """A readiness probe: `url` answers GET with `status`."""

    def probe() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == status
        except httpx.HTTPError:
            return False

    return probe


def wait_until_up(ready: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str, timeout: float,
                  every: float = 0.2) -> None:  # fmt: skip
    """Poll `ready` until it is true; when the server exits or `timeout` passes, kill it and fail
    the test with the end of its log."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(every)
