"""Moves finished recording sessions from the studio NAS to cold storage in S3.

A session directory is archived once it contains a ``COMPLETE`` marker; after
upload an ``.archived`` manifest is written next to the media so the nightly
cleanup can reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import tempfile
import time
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

log = logging.getLogger("archiver")

BUCKET = os.environ.get("ARCHIVE_BUCKET", "studio-archive")
STORAGE_CLASS = "DEEP_ARCHIVE"
SCRATCH = os.environ.get("ARCHIVE_SCRATCH", "/var/tmp")
SKIP_SUFFIXES = (".part", ".lock", ".tmp")
BOTO_CONFIG = Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "adaptive"})
TRANSFER = TransferConfig(multipart_chunksize=64 * 1024 * 1024, max_concurrency=8)


def s3():
    session = boto3.session.Session()
    return session.client("s3", config=BOTO_CONFIG)


class Progress:
    """Logs upload progress roughly every ten percent."""

    def __init__(self, name: str, total: int) -> None:
        self.name = name
        self.total = max(total, 1)
        self.seen = 0
        self._next_mark = 10

    def __call__(self, bytes_amount: int) -> None:
        self.seen += bytes_amount
        pct = self.seen * 100 // self.total
        if pct >= self._next_mark:
            log.info("%s: %d%% uploaded", self.name, pct)
            self._next_mark = (pct // 10 + 1) * 10


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def already_archived(key: str) -> bool:
    try:
        s3().head_object(Bucket=BUCKET, Key=key)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def bundle(session_dir: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f"{session_dir.name}-", suffix=".tar.gz", dir=SCRATCH)
    os.close(fd)
    with tarfile.open(tmp, "w:gz", compresslevel=4) as tar:
        for f in sorted(session_dir.rglob("*")):
            if f.is_file() and not f.name.endswith(SKIP_SUFFIXES):
                tar.add(f, arcname=str(f.relative_to(session_dir)))
    return Path(tmp)


def archive_session(session_dir: Path) -> str | None:
    key = f"sessions/{session_dir.name}.tar.gz"
    if already_archived(key):
        log.info("%s is already in s3://%s/%s", session_dir.name, BUCKET, key)
        return key
    archive = bundle(session_dir)
    size = archive.stat().st_size
    digest = sha256_file(archive)
    s3().upload_file(
        str(archive),
        BUCKET,
        key,
        ExtraArgs={"StorageClass": STORAGE_CLASS, "Metadata": {"sha256": digest}},
        Callback=Progress(key, size),
        Config=TRANSFER,
    )
    archive.unlink()
    manifest = {"bucket": BUCKET, "key": key, "sha256": digest, "bytes": size, "archived_at": time.time()}
    (session_dir / ".archived").write_text(json.dumps(manifest, indent=2))
    return key


def run(root: Path) -> int:
    done = failed = 0
    for session_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if (session_dir / ".archived").exists() or not (session_dir / "COMPLETE").exists():
            continue
        try:
            archive_session(session_dir)
        except (ClientError, OSError, tarfile.TarError):
            log.exception("archiving %s failed", session_dir.name)
            failed += 1
            continue
        done += 1
    log.info("archived %d sessions, %d failed", done, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    raise SystemExit(run(Path(os.environ.get("STUDIO_ROOT", "/mnt/studio/sessions"))))
