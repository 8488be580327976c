"""Weekly activity digest: one email per subscriber, sent through the company relay."""

from __future__ import annotations

import csv
import json
import logging
import os
import smtplib
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from string import Template

log = logging.getLogger("digest")

TRUTHY = ("1", "true", "yes")


@dataclass(frozen=True)
class Subscriber:
    email: str
    name: str
    locale: str
    team: str


class DigestMailer:
    def __init__(
        self,
        relay_host: str,
        relay_port: int = 587,
        username: str | None = None,
        password: str | None = None,
        template_dir: Path = Path("/etc/digest/templates"),
        sender: str = "Team Digest <digest@example.com>",
        workers: int = 8,
    ) -> None:
        self.relay_host = relay_host
        self.relay_port = relay_port
        self.username = username
        self.password = password
        self.template_dir = template_dir
        self.sender = sender
        self.workers = workers
        self._smtp: smtplib.SMTP | None = None
        self._connect_lock = threading.Lock()

    def _connection(self) -> smtplib.SMTP:
        with self._connect_lock:
            if self._smtp is None:
                smtp = smtplib.SMTP(self.relay_host, self.relay_port)
                smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                self._smtp = smtp
            return self._smtp

    def _render(self, sub: Subscriber, stats: dict) -> EmailMessage:
        path = self.template_dir / f"digest.{sub.locale}.txt"
        if not path.exists():
            path = self.template_dir / "digest.en.txt"
        subject, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        values = {"name": sub.name, "team": sub.team, **stats}
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = sub.email
        msg["Subject"] = Template(subject.strip()).safe_substitute(values)
        msg.set_content(Template(body).safe_substitute(values))
        return msg

    def _send_one(self, sub: Subscriber, stats: dict) -> str:
        msg = self._render(sub, stats)
        self._connection().send_message(msg)
        return sub.email

    def send_all(self, subscribers, stats_by_team: dict[str, dict]) -> tuple[int, list[str]]:
        sent, failed = 0, []
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="digest") as pool:
            futures = {
                pool.submit(self._send_one, sub, stats_by_team.get(sub.team, {})): sub
                for sub in subscribers
            }
            for fut in as_completed(futures):
                sub = futures[fut]
                try:
                    fut.result()
                    sent += 1
                except (smtplib.SMTPException, OSError) as exc:
                    log.warning("digest to %s failed: %s", sub.email, exc)
                    failed.append(sub.email)
        return sent, failed

    def close(self) -> None:
        with self._connect_lock:
            if self._smtp is not None:
                try:
                    self._smtp.quit()
                except smtplib.SMTPException:
                    pass
                finally:
                    self._smtp = None


def load_subscribers(path: str):
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row.get("opted_out", "").strip().lower() in TRUTHY:
                continue
            yield Subscriber(row["email"], row["name"], row.get("locale") or "en", row["team"])


def load_stats(path: str) -> dict[str, dict]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def main() -> int:
    mailer = DigestMailer(
        os.environ.get("SMTP_RELAY", "smtp-relay.internal"),
        username=os.environ.get("SMTP_USER"),
        password=os.environ.get("SMTP_PASSWORD"),
    )
    try:
        sent, failed = mailer.send_all(
            load_subscribers("/var/lib/digest/subscribers.csv"),
            load_stats("/var/lib/digest/team_stats.json"),
        )
    finally:
        mailer.close()
    log.info("sent %d digests, %d failed", sent, len(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
