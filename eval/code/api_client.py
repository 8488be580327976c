"""Client for the partner shipping API: quotes, label downloads and tracking."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import requests

log = logging.getLogger(__name__)

RETRY_STATUSES = (429, 502, 503, 504)


class ShippingAPIError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"shipping API returned {status}: {body[:200]}")
        self.status = status


class ShippingClient:
    def __init__(self, base_url: str, token: str, retries: int = 3) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        delay = 0.5
        for attempt in range(1, self.retries + 1):
            resp = self.session.request(method, f"{self.base_url}{path}", **kwargs)
            if resp.status_code not in RETRY_STATUSES or attempt == self.retries:
                return resp
            log.warning("%s %s -> %s, retry %d in %.1fs", method, path, resp.status_code, attempt, delay)
            resp.close()
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def quote(self, origin: str, destination: str, weight_g: int) -> dict:
        resp = self._request(
            "POST", "/v2/quotes", json={"from": origin, "to": destination, "weight_g": weight_g}
        )
        if resp.status_code != 200:
            raise ShippingAPIError(resp.status_code, resp.text)
        return resp.json()

    def download_label(self, shipment_id: str, target: Path) -> Path:
        resp = self._request("GET", f"/v2/shipments/{shipment_id}/label", stream=True)
        if resp.status_code != 200:
            raise ShippingAPIError(resp.status_code, resp.text)
        if resp.headers.get("Content-Type") != "application/pdf":
            raise ShippingAPIError(resp.status_code, f"unexpected {resp.headers.get('Content-Type')}")
        with target.open("wb") as f:
            for chunk in resp.iter_content(chunk_size=64 * 1024):
                f.write(chunk)
        resp.close()
        return target

    def tracking(self, shipment_id: str) -> list[dict]:
        resp = self._request("GET", f"/v2/shipments/{shipment_id}/events")
        if resp.status_code == 404:
            return []
        if resp.status_code != 200:
            raise ShippingAPIError(resp.status_code, resp.text)
        return sorted(resp.json()["events"], key=lambda e: e["at"])

    def latest_status(self, shipment_id: str) -> str:
        events = self.tracking(shipment_id)
        return events[-1]["status"] if events else "unknown"

    def close(self) -> None:
        self.session.close()


def print_labels(client: ShippingClient, shipment_ids: list[str], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    return [client.download_label(sid, out_dir / f"{sid}.pdf") for sid in shipment_ids]
