"""Enriches rotated nginx access logs with geo data and ships them to the log store.

Runs as a long-lived daemon: every half minute it picks up newly rotated
``access.log-*.gz`` files from the spool directory.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import logging
import re
import time
from pathlib import Path

import geoip2.database
import geoip2.errors
import requests

log = logging.getLogger("enricher")

LINE_RE = re.compile(
    r'(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"'
)
SHIP_BATCH = 1000
SHIP_TIMEOUT = (3.05, 30)
NOISY_PATHS = {"/healthz", "/readyz", "/metrics", "/favicon.ico"}

_reader = geoip2.database.Reader("/usr/share/GeoIP/GeoLite2-City.mmdb")
_geo: dict[str, dict] = {}


def load_config(path: str = "/etc/enricher/config.json") -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def geo_for(ip: str) -> dict:
    hit = _geo.get(ip)
    if hit is not None:
        return hit
    try:
        rec = _reader.city(ip)
        info = {"country": rec.country.iso_code, "city": rec.city.name}
    except (geoip2.errors.AddressNotFoundError, ValueError):
        info = {"country": None, "city": None}
    _geo[ip] = info
    return info


def is_internal(ip: str, config: dict) -> bool:
    addr = ipaddress.ip_address(ip)
    ranges = [ipaddress.ip_network(cidr, strict=False) for cidr in config["internal_ranges"]]
    return any(addr in net for net in ranges)


def enrich(line: str, config: dict) -> dict | None:
    m = LINE_RE.match(line)
    if not m:
        return None
    rec = m.groupdict()
    if rec["path"].split("?", 1)[0] in NOISY_PATHS:
        return None
    rec["status"] = int(rec["status"])
    rec["bytes"] = 0 if rec["bytes"] == "-" else int(rec["bytes"])
    try:
        rec["internal"] = is_internal(rec["ip"], config)
    except ValueError:
        return None
    if not rec["internal"]:
        rec.update(geo_for(rec["ip"]))
    return rec


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    return data.decode("utf-8", errors="replace").splitlines()


def ship(session: requests.Session, endpoint: str, batch: list[dict]) -> None:
    body = "\n".join(json.dumps(r, separators=(",", ":")) for r in batch)
    resp = session.post(
        endpoint,
        data=body.encode("utf-8"),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=SHIP_TIMEOUT,
    )
    resp.raise_for_status()


def process_file(path: Path, session: requests.Session, config: dict) -> tuple[int, int]:
    batch: list[dict] = []
    shipped = skipped = 0
    for line in read_lines(path):
        rec = enrich(line, config)
        if rec is None:
            skipped += 1
            continue
        rec["source"] = path.name
        batch.append(rec)
        if len(batch) >= SHIP_BATCH:
            ship(session, config["endpoint"], batch)
            shipped += len(batch)
            batch = []
    if batch:
        ship(session, config["endpoint"], batch)
        shipped += len(batch)
    return shipped, skipped


def run(spool: Path) -> None:
    config = load_config()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {config['token']}"
        while True:
            for path in sorted(spool.glob("access.log-*.gz")):
                try:
                    shipped, skipped = process_file(path, session, config)
                except (requests.RequestException, OSError) as exc:
                    log.warning("%s: will retry later: %s", path.name, exc)
                    continue
                log.info("%s: shipped %d records, skipped %d", path.name, shipped, skipped)
                path.rename(path.with_name(path.name + ".shipped"))
            time.sleep(30)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    run(Path("/var/spool/enricher"))
