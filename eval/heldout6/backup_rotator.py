"""Takes a compressed pg_dump of each configured database, uploads it, and prunes old copies."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import requests

log = logging.getLogger("backups")

SPOOL = Path(os.environ.get("BACKUP_SPOOL", "/var/spool/pgbackup"))
KEEP_LOCAL = 7


def load_config(path: Path) -> dict:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def dump_database(dsn: str, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = SPOOL / name / f"{name}-{stamp}.sql.zst"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    with partial.open("wb") as out:
        dump = subprocess.Popen(
            ["pg_dump", "--format=plain", "--no-owner", dsn], stdout=subprocess.PIPE
        )
        zstd = subprocess.Popen(["zstd", "-q", "-T0", "-c"], stdin=dump.stdout, stdout=out)
        dump.stdout.close()
        try:
            rc = zstd.wait(timeout=3 * 3600)
        except subprocess.TimeoutExpired:
            zstd.kill()
            dump.kill()
            zstd.wait()
            partial.unlink(missing_ok=True)
            raise
    if rc != 0:
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"compression of {name} failed with {rc}")
    partial.rename(target)
    return target


def presign(api: str, token: str, key: str) -> str:
    resp = requests.post(
        f"{api}/v1/presign",
        json={"key": key, "method": "PUT"},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    resp.raise_for_status()
    return resp.json()["url"]


def upload(api: str, token: str, path: Path, prefix: str) -> None:
    url = presign(api, token, f"{prefix}/{path.parent.name}/{path.name}")
    with path.open("rb") as fh:
        body = fh.read()
    resp = requests.put(
        url,
        data=body,
        headers={"content-type": "application/zstd"},
        timeout=(10, 600),
    )
    if resp.status_code >= 300:
        raise RuntimeError(f"upload of {path.name} failed: {resp.status_code} {resp.text[:200]}")


def prune(directory: Path, keep: int) -> list[Path]:
    backups = sorted(directory.glob("*.sql.zst"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = backups[keep:]
    for old in removed:
        old.unlink()
    return removed


def leftover_partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.partial") if p.is_file()]


def main(config_path: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config(Path(config_path))
    api, token = cfg["storage"]["api"], os.environ["BACKUP_TOKEN"]
    failures = 0
    for stale in leftover_partials(SPOOL):
        log.warning("removing stale partial %s", stale)
        stale.unlink()
    for name, db in cfg["databases"].items():
        try:
            path = dump_database(db["dsn"], name)
            upload(api, token, path, cfg["storage"].get("prefix", "pg"))
            log.info("backed up %s (%d bytes)", name, path.stat().st_size)
        except (OSError, RuntimeError, subprocess.SubprocessError, requests.RequestException) as exc:
            log.error("backup of %s failed: %s", name, exc)
            failures += 1
            continue
        for old in prune(path.parent, db.get("keep_local", KEEP_LOCAL)):
            log.info("pruned %s", old.name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "/etc/pgbackup.toml"))
