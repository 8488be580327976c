"""Nightly database backup: dumps each configured database, archives the dumps and
uploads the archive to object storage."""

from __future__ import annotations

import hashlib
import logging
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import boto3

log = logging.getLogger(__name__)


@dataclass
class Target:
    name: str
    dsn: str


def dump(target: Target, out_dir: Path) -> Path:
    out = out_dir / f"{target.name}.sql.gz"
    with out.open("wb") as f:
        pg = subprocess.Popen(["pg_dump", "--no-owner", target.dsn], stdout=subprocess.PIPE)
        gz = subprocess.run(["gzip", "-c"], stdin=pg.stdout, stdout=f, check=False)
        pg.stdout.close()
        code = pg.wait()
    if code != 0 or gz.returncode != 0:
        raise RuntimeError(f"dump of {target.name} failed (pg_dump {code}, gzip {gz.returncode})")
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def archive(dumps: list[Path], dest: Path, min_bytes: int = 1024) -> Path | None:
    tar = tarfile.open(dest, "w")
    for path in dumps:
        size = path.stat().st_size
        if size < min_bytes:
            log.error("%s is only %d bytes; not archiving a suspicious dump", path.name, size)
            return None
        tar.add(path, arcname=path.name)
    tar.close()
    return dest


def upload(path: Path, bucket: str, key: str) -> str:
    digest = sha256(path)
    s3 = boto3.client("s3")
    s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": digest}})
    return digest


def run(targets: list[Target], bucket: str) -> dict[str, str]:
    results: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="backup-") as tmp:
        work = Path(tmp)
        dumps = []
        for target in targets:
            try:
                dumps.append(dump(target, work))
                results[target.name] = "dumped"
            except RuntimeError as exc:
                log.error("%s", exc)
                results[target.name] = "failed"
        if not dumps:
            return results
        name = f"backup-{date.today().isoformat()}.tar"
        tarball = archive(dumps, work / name)
        if tarball is None:
            return {**results, "archive": "refused"}
        results["archive"] = upload(tarball, bucket, f"nightly/{name}")
    return results
