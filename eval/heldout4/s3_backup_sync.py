"""Mirror a local directory tree into an S3 bucket.

Each file is compared with the object already in the bucket by its MD5 and only new or
changed files are uploaded. Uploads are single-part `put_object` calls with `ContentMD5`, so
the object's ETag is the hex MD5 of its body and S3 rejects a body damaged in transit.
A JSON manifest of the uploaded keys is kept next to the tree for the audit report.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

log = logging.getLogger("s3sync")

MANIFEST_NAME = ".s3sync-manifest.json"
EXCLUDE_SUFFIXES = (".tmp", ".swp", ".part")


@dataclass
class SyncResult:
    uploaded: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)


class BackupSync:
    """Uploads new and changed files from `root` to `s3://bucket/prefix/`."""

    def __init__(self, root: Path, bucket: str, prefix: str = "", workers: int = 8) -> None:
        self.root = root
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.workers = workers
        self.s3 = boto3.client(
            "s3",
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 5, "mode": "adaptive"}),
        )
        self.stats = {"uploaded": 0, "skipped": 0, "failed": 0, "bytes": 0}
        self._manifest_lock = threading.Lock()
        self._manifest: dict[str, str] = self._read_manifest()

    def _key(self, path: Path) -> str:
        rel = path.relative_to(self.root).as_posix()
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _local_files(self):
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name == MANIFEST_NAME or name.endswith(EXCLUDE_SUFFIXES):
                    continue
                yield Path(dirpath) / name

    @staticmethod
    def _local_md5(path: Path) -> bytes:
        return hashlib.md5(path.read_bytes()).digest()

    def _remote_etag(self, key: str) -> str | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head["ETag"].strip('"')

    def _upload(self, path: Path, key: str, digest: bytes) -> None:
        with path.open("rb") as body:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentMD5=base64.b64encode(digest).decode("ascii"),
            )

    def _sync_one(self, path: Path) -> tuple[str, bool]:
        key = self._key(path)
        digest = self._local_md5(path)
        if self._remote_etag(key) == digest.hex():
            self.stats["skipped"] += 1
            return key, False
        self._upload(path, key, digest)
        self.stats["uploaded"] += 1
        self.stats["bytes"] += path.stat().st_size
        with self._manifest_lock:
            self._manifest[key] = digest.hex()
        return key, True

    def run(self) -> SyncResult:
        result = SyncResult()
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures = {pool.submit(self._sync_one, p): p for p in self._local_files()}
            for fut in as_completed(futures):
                path = futures[fut]
                try:
                    key, uploaded = fut.result()
                except (ClientError, OSError) as exc:
                    self.stats["failed"] += 1
                    result.failed[str(path)] = str(exc)
                    log.warning("could not sync %s: %s", path, exc)
                    continue
                if uploaded:
                    result.uploaded.append(key)
                else:
                    result.skipped += 1
        self._write_manifest()
        return result

    def _read_manifest(self) -> dict[str, str]:
        try:
            return json.loads((self.root / MANIFEST_NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def _write_manifest(self) -> None:
        target = self.root / MANIFEST_NAME
        tmp = target.with_suffix(".json.tmp")
        with self._manifest_lock:
            data = dict(sorted(self._manifest.items()))
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("bucket")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    sync = BackupSync(args.root.resolve(), args.bucket, args.prefix, args.workers)
    result = sync.run()
    log.info(
        "uploaded %d files (%d bytes), %d unchanged, %d failed",
        sync.stats["uploaded"],
        sync.stats["bytes"],
        sync.stats["skipped"],
        sync.stats["failed"],
    )
    for path, error in sorted(result.failed.items()):
        log.error("failed: %s: %s", path, error)
    return 1 if result.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
