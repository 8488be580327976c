"""Git mirror updater for the build cache host.

Keeps bare mirrors of the organisation's repositories up to date so CI
clones from the local cache instead of the forge: every ten minutes it lists
the repositories from the forge API, clones the ones that have no mirror yet,
fetches the others, flags mirrors whose repository was deleted, and writes a
summary for the cache's status page.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

log = logging.getLogger("git-mirror")

FORGE_API = os.environ.get("FORGE_API", "https://git.example.com/api/v4")
FORGE_TOKEN = os.environ.get("FORGE_TOKEN", "")
MIRROR_ROOT = Path(os.environ.get("MIRROR_ROOT", "/srv/git-cache"))
LOG_DIR = MIRROR_ROOT / "_logs"
SUMMARY = MIRROR_ROOT / "_status.json"
GIT_TIMEOUT = 900
PARALLEL = 6
ROUND_SECONDS = 600


@dataclass
class Mirror:
    name: str
    path: Path


def list_remote_repos() -> list[dict]:
    """Every repository in the group, as the forge API describes them."""
    repos, page = [], 1
    with requests.Session() as s:
        s.headers["PRIVATE-TOKEN"] = FORGE_TOKEN
        while True:
            resp = s.get(
                f"{FORGE_API}/groups/platform/projects",
                params={"include_subgroups": "true", "per_page": 100, "page": page, "archived": "false"},
                timeout=30,
            )
            resp.raise_for_status()
            batch = resp.json()
            if not batch:
                return repos
            repos.extend({"name": r["path_with_namespace"].replace("/", "__"), "url": r["http_url_to_repo"]} for r in batch)
            page += 1


def list_local_mirrors() -> list[Mirror]:
    return [Mirror(p.name.removesuffix(".git"), p) for p in sorted(MIRROR_ROOT.glob("*.git"))]


def plan(remote: list[dict], local: list[Mirror]) -> tuple[list[dict], list[tuple[dict, Mirror]], list[Mirror]]:
    """Split the work into clones, fetches and mirrors of deleted repositories."""
    to_clone, to_fetch = [], []
    for repo in remote:
        mirror = next((m for m in local if m.name == repo["name"]), None)
        if mirror is None:
            to_clone.append(repo)
        else:
            to_fetch.append((repo, mirror))
    orphaned = [m for m in local if not any(r["name"] == m.name for r in remote)]
    return to_clone, to_fetch, orphaned


def _git(args: list[str], log_name: str, cwd: Path | None = None) -> None:
    """Run one git command, appending its output to the repository's log file."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    out = open(LOG_DIR / f"{log_name}.log", "a", encoding="utf-8")
    out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} git {' '.join(args)}\n")
    out.flush()
    subprocess.run(["git", *args], cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=GIT_TIMEOUT)
    out.close()


def _update_one(repo: dict, mirror: Mirror | None, results: dict[str, str], slots: threading.BoundedSemaphore) -> None:
    with slots:
        started = time.monotonic()
        try:
            if mirror is None:
                _git(["clone", "--mirror", repo["url"], str(MIRROR_ROOT / f"{repo['name']}.git")], repo["name"])
            else:
                _git(["remote", "update", "--prune"], repo["name"], cwd=mirror.path)
            results[repo["name"]] = f"ok in {time.monotonic() - started:.0f}s"
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            results[repo["name"]] = f"failed: {exc}"
            log.warning("%s: %s", repo["name"], exc)


def update_all(to_clone: list[dict], to_fetch: list[tuple[dict, Mirror]]) -> dict[str, str]:
    results: dict[str, str] = {}
    slots = threading.BoundedSemaphore(PARALLEL)
    jobs = [(repo, None) for repo in to_clone] + to_fetch
    workers = [threading.Thread(target=_update_one, args=(repo, mirror, results, slots), daemon=True) for repo, mirror in jobs]
    for w in workers:
        w.start()
    return results


def write_summary(results: dict[str, str], orphaned: list[Mirror]) -> None:
    failed = sorted(name for name, state in results.items() if state.startswith("failed"))
    status = {
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mirrors": len(results),
        "failed": failed,
        "orphaned": [m.name for m in orphaned],
        "results": results,
    }
    tmp = SUMMARY.with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2, sort_keys=True))
    tmp.replace(SUMMARY)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    while True:
        started = time.monotonic()
        try:
            to_clone, to_fetch, orphaned = plan(list_remote_repos(), list_local_mirrors())
            results = update_all(to_clone, to_fetch)
            write_summary(results, orphaned)
            log.info("round: %d clones, %d fetches, %d orphaned", len(to_clone), len(to_fetch), len(orphaned))
        except requests.RequestException as exc:
            log.error("could not list repositories: %s", exc)
        time.sleep(max(60.0, ROUND_SECONDS - (time.monotonic() - started)))


if __name__ == "__main__":
    main()
