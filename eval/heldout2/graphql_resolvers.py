"""GraphQL resolvers for the community forum API (Ariadne + asyncpg).

The schema lives in `schema.graphql`; `info.context["pool"]` is the shared
asyncpg pool created at startup and `info.context["viewer_id"]` the signed-in user.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from ariadne import ObjectType, QueryType, make_executable_schema, load_schema_from_path

log = logging.getLogger("forum.graphql")

query = QueryType()
thread_type = ObjectType("Thread")
profile_type = ObjectType("Profile")

THREAD_COLUMNS = "id, board_id, author_id, title, reply_count, last_reply_at, is_locked"
SORT_KEYS = {"recent": "last_reply_at DESC", "popular": "reply_count DESC", "new": "created_at DESC"}


def _pool(info) -> asyncpg.Pool:
    return info.context["pool"]


async def _labels_for(conn: asyncpg.Connection, thread_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT l.name FROM labels l JOIN thread_labels tl ON tl.label_id = l.id WHERE tl.thread_id = $1",
        thread_id,
    )
    return [r["name"] for r in rows]


@query.field("board")
async def resolve_board(_, info, boardId: int, sort: str = "recent", first: int = 25) -> dict[str, Any]:
    order = SORT_KEYS.get(sort, SORT_KEYS["recent"])
    first = max(1, min(first, 100))
    async with _pool(info).acquire() as conn:
        board = await conn.fetchrow("SELECT id, slug, title FROM boards WHERE id = $1", boardId)
        if board is None:
            return None
        rows = await conn.fetch(
            f"SELECT {THREAD_COLUMNS} FROM threads WHERE board_id = $1 ORDER BY {order} LIMIT $2",
            boardId,
            first,
        )
        threads = []
        for row in rows:
            thread = dict(row)
            thread["labels"] = await _labels_for(conn, row["id"])
            threads.append(thread)
    return {**dict(board), "threads": threads}


@thread_type.field("author")
async def resolve_thread_author(thread: dict[str, Any], info) -> dict[str, Any] | None:
    return await info.context["profile_loader"].load(thread["author_id"])


@query.field("profile")
async def resolve_profile(_, info, userId: int) -> dict[str, Any] | None:
    return await _load_profile(_pool(info), userId)


async def _load_profile(pool: asyncpg.Pool, user_id: int) -> dict[str, Any] | None:
    conn = await pool.acquire(timeout=5)
    row = await conn.fetchrow(
        "SELECT id, handle, display_name, avatar_url, is_banned FROM users WHERE id = $1", user_id
    )
    if row is None or row["is_banned"]:
        return None
    karma = await conn.fetchval("SELECT coalesce(sum(score), 0) FROM votes WHERE target_user = $1", user_id)
    await pool.release(conn)
    return {**dict(row), "karma": karma}


@query.field("viewerDashboard")
async def resolve_dashboard(_, info) -> dict[str, Any]:
    pool = _pool(info)
    viewer = info.context["viewer_id"]
    unread = await pool.fetchval(
        "SELECT count(*) FROM notifications WHERE user_id = $1 AND read_at IS NULL", viewer
    )
    subscriptions = await pool.fetch(
        "SELECT t.id, t.title, t.last_reply_at FROM subscriptions s JOIN threads t ON t.id = s.thread_id"
        " WHERE s.user_id = $1 ORDER BY t.last_reply_at DESC LIMIT 20",
        viewer,
    )
    drafts = await pool.fetchval("SELECT count(*) FROM drafts WHERE user_id = $1", viewer)
    return {
        "unreadCount": unread,
        "subscriptions": [dict(r) for r in subscriptions],
        "draftCount": drafts,
    }


@query.field("search")
async def resolve_search(_, info, text: str, first: int = 20) -> dict[str, Any]:
    pool = _pool(info)
    pattern = f"%{text.strip()}%"
    threads, users = await asyncio.gather(
        pool.fetch(f"SELECT {THREAD_COLUMNS} FROM threads WHERE title ILIKE $1 LIMIT $2", pattern, first),
        pool.fetch("SELECT id, handle, display_name FROM users WHERE handle ILIKE $1 LIMIT $2", pattern, first),
    )
    return {"threads": [dict(r) for r in threads], "users": [dict(r) for r in users]}


@profile_type.field("threadCount")
async def resolve_thread_count(profile: dict[str, Any], info) -> int:
    return profile.get("thread_count") or 0


def build_schema(path: str = "schema.graphql"):
    type_defs = load_schema_from_path(path)
    return make_executable_schema(type_defs, query, thread_type, profile_type)
