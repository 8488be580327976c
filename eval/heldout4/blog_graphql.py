"""Resolvers for the blog's GraphQL API: posts, their authors, and tag pages.

The schema is served by Ariadne. One `PostRepository` is created at start-up around the
psycopg2 connection pool and handed to every request through the GraphQL context.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from ariadne import ObjectType, QueryType, load_schema_from_path, make_executable_schema
from ariadne.asgi import GraphQL
from psycopg2.extras import RealDictCursor
from psycopg2.pool import ThreadedConnectionPool

log = logging.getLogger("blog.graphql")

MAX_PAGE = 100
EXCERPT_WORDS = 40

POSTS_SQL = """
    SELECT p.id, p.slug, p.title, p.body, p.author_id, p.published_at,
           (SELECT count(*) FROM comments c WHERE c.post_id = p.id) AS comment_count
    FROM posts p
    WHERE p.published_at IS NOT NULL AND (%(after)s IS NULL OR p.published_at < %(after)s)
    ORDER BY p.published_at DESC
    LIMIT %(limit)s
"""

TAG_SQL = """
    SELECT p.id, p.slug, p.title, p.body, p.author_id, p.published_at, 0 AS comment_count
    FROM posts p JOIN post_tags t ON t.post_id = p.id
    WHERE t.tag = %(tag)s AND p.published_at IS NOT NULL
    ORDER BY p.published_at DESC
    LIMIT %(limit)s OFFSET %(offset)s
"""


@lru_cache(maxsize=2048)
def excerpt(body: str) -> str:
    """The first EXCERPT_WORDS words of a post body, with an ellipsis when it was cut."""
    words = body.split()
    text = " ".join(words[:EXCERPT_WORDS])
    return text + "…" if len(words) > EXCERPT_WORDS else text


class PostRepository:
    """Reads posts and authors; one instance lives for the whole process."""

    def __init__(self, pool: ThreadedConnectionPool) -> None:
        self.pool = pool
        self._tag_pages: dict[tuple[str, int, int], list[dict[str, Any]]] = {}

    def _fetch(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        conn = self.pool.getconn()
        cur = conn.cursor(cursor_factory=RealDictCursor)
        cur.execute(sql, params)
        rows = cur.fetchall()
        cur.close()
        conn.rollback()
        self.pool.putconn(conn)
        return rows

    def recent_posts(self, first: int, after: str | None) -> list[dict[str, Any]]:
        return self._fetch(POSTS_SQL, {"after": after, "limit": min(max(first, 1), MAX_PAGE)})

    def tag_page(self, tag: str, first: int, offset: int) -> list[dict[str, Any]]:
        key = (tag.lower(), min(max(first, 1), MAX_PAGE), max(offset, 0))
        if key not in self._tag_pages:
            self._tag_pages[key] = self._fetch(TAG_SQL, {"tag": key[0], "limit": key[1], "offset": key[2]})
        return self._tag_pages[key]

    def author(self, author_id: int) -> dict[str, Any] | None:
        rows = self._fetch(
            "SELECT id, display_name, avatar_url, bio FROM authors WHERE id = %(id)s",
            {"id": author_id},
        )
        return rows[0] if rows else None


query = QueryType()
post_type = ObjectType("Post")
author_type = ObjectType("Author")


@query.field("posts")
def resolve_posts(_obj: Any, info: Any, first: int = 20, after: str | None = None) -> list[dict[str, Any]]:
    return info.context["repo"].recent_posts(first, after)


@query.field("tag")
def resolve_tag(_obj: Any, info: Any, name: str, first: int = 20, offset: int = 0) -> list[dict[str, Any]]:
    return info.context["repo"].tag_page(name, first, offset)


@post_type.field("excerpt")
def resolve_excerpt(post: dict[str, Any], _info: Any) -> str:
    return excerpt(post["body"])


@post_type.field("commentCount")
def resolve_comment_count(post: dict[str, Any], _info: Any) -> int:
    return int(post.get("comment_count") or 0)


@post_type.field("author")
def resolve_author(post: dict[str, Any], info: Any) -> dict[str, Any] | None:
    return info.context["repo"].author(post["author_id"])


@author_type.field("displayName")
def resolve_display_name(author: dict[str, Any], _info: Any) -> str:
    return author["display_name"] or "Anonymous"


def create_app(dsn: str) -> GraphQL:
    pool = ThreadedConnectionPool(minconn=2, maxconn=20, dsn=dsn, connect_timeout=5)
    repo = PostRepository(pool)
    schema = make_executable_schema(load_schema_from_path("schema.graphql"), query, post_type, author_type)
    return GraphQL(schema, context_value=lambda request, _data=None: {"request": request, "repo": repo})
