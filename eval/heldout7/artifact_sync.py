"""artifact-sync: push the build outputs of a repository to the artifact store.

Usage: artifact-sync [--state .artifact-sync.json] HOST PREFIX

Only files tracked by git are considered; a file is uploaded when its digest
differs from the one recorded in the state file by the previous run.
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

CHUNK = 1 << 20


class UploadError(Exception):
    pass


def tracked_files(root: Path) -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", "dist", "build"],
        cwd=root,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return [root / p for p in out.decode().split("\0") if p]


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def read_state(state_file: Path) -> dict[str, str]:
    try:
        with state_file.open(encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}


def write_state(state_file: Path, state: dict[str, str]) -> None:
    tmp = state_file.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(state, fh, indent=1, sort_keys=True)
    os.replace(tmp, state_file)


def _token() -> str:
    token = os.environ.get("ARTIFACT_TOKEN")
    if not token:
        raise SystemExit("ARTIFACT_TOKEN is not set")
    return token


def connect(host: str) -> http.client.HTTPSConnection:
    ctx = ssl.create_default_context()
    return http.client.HTTPSConnection(host, context=ctx)


def upload(conn: http.client.HTTPSConnection, key: str, path: Path, sha: str) -> None:
    fh = open(path, "rb")
    conn.request(
        "PUT",
        f"/v1/objects/{key}",
        body=fh,
        headers={
            "Authorization": f"Bearer {_token()}",
            "Content-Length": str(path.stat().st_size),
            "X-Content-SHA256": sha,
        },
    )
    resp = conn.getresponse()
    body = resp.read()
    if resp.status >= 300:
        raise UploadError(f"{key}: HTTP {resp.status} {body[:200]!r}")
    fh.close()


def sync(root: Path, host: str, prefix: str, state_file: Path) -> tuple[int, int]:
    files = tracked_files(root)
    conn = connect(host)
    uploaded = failed = 0
    try:
        for path in files:
            rel = path.relative_to(root).as_posix()
            sha = digest(path)
            state = read_state(state_file)
            if state.get(rel) == sha:
                continue
            try:
                upload(conn, f"{prefix}/{rel}", path, sha)
            except UploadError as exc:
                print(f"skip: {exc}", file=sys.stderr)
                failed += 1
                continue
            state[rel] = sha
            write_state(state_file, state)
            uploaded += 1
            if uploaded % 100 == 0:
                print(f"{uploaded} uploaded", file=sys.stderr)
    finally:
        conn.close()
    return uploaded, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="artifact-sync")
    parser.add_argument("host")
    parser.add_argument("prefix")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--state", type=Path, default=Path(".artifact-sync.json"))
    args = parser.parse_args(argv)
    uploaded, failed = sync(args.root, args.host, args.prefix.strip("/"), args.state)
    print(f"done: {uploaded} uploaded, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
