"""Firmware OTA rollout to field gateways.

A rollout pushes one firmware image to a list of gateways over the vendor's
small TCP update protocol: a HELLO line, a "<size> <sha256>" header line, the
image bytes, then the gateway answers with "OK" or "ERR <reason>".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("ota")

UPDATE_PORT = 7761
CHUNK = 64 * 1024
MAX_ATTEMPTS = 4
CONNECT_TIMEOUT = 10.0
ACK_TIMEOUT = 30.0


class GatewayRejected(Exception):
    """The gateway refused the image (bad signature, wrong hardware, ...)."""


@dataclass(frozen=True)
class Firmware:
    version: str
    image: bytes
    sha256: str

    @classmethod
    def load(cls, path: Path, version: str) -> "Firmware":
        image = path.read_bytes()
        return cls(version=version, image=image, sha256=hashlib.sha256(image).hexdigest())


@dataclass
class Outcome:
    gateway: str
    ok: bool
    attempts: int
    detail: str = ""


class Rollout:
    """Pushes one firmware image to many gateways, `parallel` at a time."""

    def __init__(self, firmware: Firmware, parallel: int = 20) -> None:
        self.firmware = firmware
        self._slots = asyncio.Semaphore(parallel)
        self._state_lock = asyncio.Lock()
        self.in_progress: set[str] = set()
        self.outcomes: dict[str, Outcome] = {}

    async def _send(self, host: str) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, UPDATE_PORT), CONNECT_TIMEOUT
        )
        image = self.firmware.image
        writer.write(b"HELLO\n" + f"{len(image)} {self.firmware.sha256}\n".encode())
        for start in range(0, len(image), CHUNK):
            writer.write(image[start:start + CHUNK])
            await writer.drain()
        reply = await asyncio.wait_for(reader.readline(), ACK_TIMEOUT)
        if not reply.startswith(b"OK"):
            raise GatewayRejected(reply.decode(errors="replace").strip() or "no reply")
        writer.close()
        await writer.wait_closed()

    async def _attempts(self, host: str) -> Outcome:
        detail = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                await self._send(host)
                return Outcome(host, True, attempt)
            except GatewayRejected as exc:
                return Outcome(host, False, attempt, str(exc))
            except (OSError, asyncio.TimeoutError) as exc:
                detail = repr(exc)
                log.warning("%s: attempt %d failed: %s", host, attempt, detail)
                if attempt < MAX_ATTEMPTS:
                    self._pause(attempt)
        return Outcome(host, False, MAX_ATTEMPTS, detail)

    @staticmethod
    def _pause(attempt: int) -> None:
        delay = min(30.0, 2.0 ** attempt) + random.uniform(0.0, 1.0)
        time.sleep(delay)

    async def _update(self, host: str) -> Outcome:
        async with self._slots:
            async with self._state_lock:
                self.in_progress.add(host)
                outcome = await self._attempts(host)
                self.in_progress.discard(host)
                self.outcomes[host] = outcome
        return outcome

    def progress(self) -> dict[str, object]:
        return {
            "version": self.firmware.version,
            "in_progress": sorted(self.in_progress),
            "done": sum(o.ok for o in self.outcomes.values()),
            "failed": sum(not o.ok for o in self.outcomes.values()),
        }

    async def run(self, hosts: list[str]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._update(h) for h in hosts)))


def main(argv: list[str]) -> int:
    image, version, inventory = Path(argv[1]), argv[2], Path(argv[3])
    firmware = Firmware.load(image, version)
    hosts = [h.strip() for h in inventory.read_text().splitlines() if h.strip()]
    outcomes = asyncio.run(Rollout(firmware).run(hosts))
    print(json.dumps([asdict(o) for o in outcomes], indent=2))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv))
