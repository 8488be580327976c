"""Send the weekly digest: every subscriber gets the week's new items in the topics they follow.

Run from cron on Monday morning:  weekly_digest.py --db content.sqlite3
SMTP settings come from the environment (SMTP_HOST, SMTP_PORT, SMTP_USER, SMTP_PASSWORD).
"""

from __future__ import annotations

import argparse
import logging
import os
import smtplib
import sqlite3
import ssl
import string
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from pathlib import Path

log = logging.getLogger("digest")

TEMPLATE_DIR = Path(__file__).with_name("templates")
UNSUBSCRIBE_URL = "https://news.example.com/unsubscribe/{token}"
MESSAGES_PER_CONNECTION = 50


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str
    topics: frozenset[str]
    token: str


@dataclass(frozen=True)
class Item:
    topic: str
    title: str
    url: str


def load_subscribers(db: sqlite3.Connection) -> list[Subscriber]:
    rows = db.execute(
        "SELECT s.id, s.email, s.name, s.token, group_concat(f.topic) FROM subscribers s "
        "JOIN follows f ON f.subscriber_id = s.id WHERE s.confirmed = 1 GROUP BY s.id"
    )
    return [Subscriber(r[0], r[1], r[2] or "there", frozenset(r[4].split(",")), r[3]) for r in rows]


def load_items(db: sqlite3.Connection, since: datetime) -> list[Item]:
    rows = db.execute(
        "SELECT topic, title, url FROM items WHERE published_at >= ? ORDER BY published_at DESC",
        (since.isoformat(),),
    )
    return [Item(*r) for r in rows]


def render(template_name: str, subscriber: Subscriber, items: list[Item]) -> str:
    template = string.Template((TEMPLATE_DIR / template_name).read_text(encoding="utf-8"))
    listing = "\n".join(f"- [{item.topic}] {item.title}\n  {item.url}" for item in items)
    return template.safe_substitute(
        name=subscriber.name,
        count=len(items),
        items=listing,
        unsubscribe=UNSUBSCRIBE_URL.format(token=subscriber.token),
    )


def build_message(sender: str, subscriber: Subscriber, items: list[Item]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = formataddr(("Example News", sender))
    msg["To"] = formataddr((subscriber.name, subscriber.email))
    msg["Subject"] = f"Your week: {len(items)} new items"
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1])
    msg["List-Unsubscribe"] = f"<{UNSUBSCRIBE_URL.format(token=subscriber.token)}>"
    msg.set_content(render("digest.txt", subscriber, items))
    return msg


class DigestSender:
    """Sends digests over SMTP with STARTTLS, reconnecting every MESSAGES_PER_CONNECTION mails."""

    def __init__(self, host: str, port: int, user: str, password: str, sender: str) -> None:
        self.host, self.port, self.user, self.password, self.sender = host, port, user, password, sender

    def _connect(self) -> smtplib.SMTP:
        server = smtplib.SMTP(self.host, self.port)
        server.starttls(context=ssl.create_default_context())
        server.login(self.user, self.password)
        return server

    def send_all(self, subscribers: list[Subscriber], items: list[Item]) -> tuple[int, int]:
        sent = failed = 0
        for start in range(0, len(subscribers), MESSAGES_PER_CONNECTION):
            server = self._connect()
            try:
                for sub in subscribers[start : start + MESSAGES_PER_CONNECTION]:
                    mine = [item for item in items if item.topic in sub.topics]
                    if not mine:
                        continue
                    try:
                        server.send_message(build_message(self.sender, sub, mine))
                        sent += 1
                    except smtplib.SMTPRecipientsRefused:
                        log.warning("recipient refused: %s", sub.email)
                        failed += 1
            finally:
                server.quit()
        return sent, failed


def main() -> int:
    parser = argparse.ArgumentParser(description="Send the weekly digest.")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)

    db = sqlite3.connect(args.db)
    try:
        subscribers = load_subscribers(db)
        items = load_items(db, datetime.now(timezone.utc) - timedelta(days=args.days))
    finally:
        db.close()
    if not items:
        log.info("nothing new this week")
        return 0
    sender = DigestSender(
        os.environ["SMTP_HOST"],
        int(os.environ.get("SMTP_PORT", "587")),
        os.environ["SMTP_USER"],
        os.environ["SMTP_PASSWORD"],
        os.environ.get("DIGEST_FROM", "digest@news.example.com"),
    )
    sent, failed = sender.send_all(subscribers, items)
    log.info("sent %d digests, %d refused", sent, failed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
