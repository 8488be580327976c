"""Weekly digest e-mail: collects the week's top posts and mails them to the subscriber list."""

from __future__ import annotations

import html
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

log = logging.getLogger(__name__)


@dataclass
class Post:
    title: str
    url: str
    author: str
    score: int
    published: datetime


@dataclass
class Subscriber:
    email: str
    name: str
    unsubscribe_token: str


def render_items(posts: list[Post], limit: int = 10) -> str:
    top = sorted(posts, key=lambda p: (-p.score, p.published))[:limit]
    rows = []
    for post in top:
        rows.append(
            f'<li><a href="{html.escape(post.url)}">{html.escape(post.title)}</a>'
            f" by {html.escape(post.author)} ({post.score} points)</li>"
        )
    return "<ul>\n" + "\n".join(rows) + "\n</ul>"


def build_message(sender: str, subscriber: Subscriber, items_html: str, week: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = subscriber.email
    msg["Subject"] = f"Your digest for week {week}"
    unsubscribe = f"https://news.example.com/unsubscribe?t={subscriber.unsubscribe_token}"
    msg.set_content(f"Hi {subscriber.name}, your weekly digest is best viewed as HTML.\n{unsubscribe}")
    msg.add_alternative(
        f"<p>Hi {html.escape(subscriber.name)},</p>{items_html}"
        f'<p><a href="{unsubscribe}">Unsubscribe</a></p>',
        subtype="html",
    )
    return msg


class DigestMailer:
    def __init__(self, host: str, port: int, user: str, password: str, sender: str) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.sender = sender

    def send_all(self, subscribers: list[Subscriber], posts: list[Post]) -> dict[str, int]:
        week = datetime.now().strftime("%G-W%V")
        sent = failed = 0
        smtp = smtplib.SMTP(self.host, self.port)
        smtp.starttls()
        smtp.login(self.user, self.password)
        for subscriber in subscribers:
            items_html = render_items(posts)
            msg = build_message(self.sender, subscriber, items_html, week)
            try:
                smtp.send_message(msg)
                sent += 1
            except smtplib.SMTPRecipientsRefused:
                log.warning("refused: %s", subscriber.email)
                failed += 1
        smtp.quit()
        return {"sent": sent, "failed": failed}


def preview(posts: list[Post]) -> str:
    return render_items(posts, limit=3)
