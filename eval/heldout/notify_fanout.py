"""Notification fan-out worker.

Consumes notification requests from a Redis stream, looks up each recipient's channel
preferences and sends the message by e-mail, or hands it to the push gateway. Duplicate
requests (the producer retries on timeouts) are suppressed by request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import threading
from dataclasses import dataclass
from email.message import EmailMessage

import httpx
import redis.asyncio as redis

log = logging.getLogger("fanout")

STREAM = "notifications"
GROUP = "fanout"
CHANNELS = frozenset({"email", "push"})


@dataclass
class Notification:
    request_id: str
    template: str
    subject: str
    body: str
    recipients: list[str]


class FanoutWorker:
    def __init__(self, redis_url: str, smtp_host: str, push_url: str, consumer: str) -> None:
        self.redis = redis.from_url(redis_url, socket_timeout=5, decode_responses=True)
        self.smtp_host = smtp_host
        self.push_url = push_url
        self.consumer = consumer
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        self._handled: set[str] = set()
        self._stats_lock = threading.Lock()
        self.sent = {"email": 0, "push": 0}

    async def _preferences(self, user_id: str) -> dict[str, str]:
        raw = await self.redis.get(f"prefs:{user_id}")
        prefs = json.loads(raw) if raw else {}
        return {"channel": prefs.get("channel", "email"), "address": prefs.get("email", "")}

    def _compose(self, address: str, note: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = "no-reply@example.com"
        msg["To"] = address
        msg["Subject"] = note.subject
        msg.set_content(note.body)
        return msg

    async def _send_emails(self, batch: list[tuple[str, str]], note: Notification) -> list[str]:
        delivered: list[str] = []
        with smtplib.SMTP(self.smtp_host, 587, timeout=15) as smtp:
            smtp.starttls()
            for user_id, address in batch:
                try:
                    smtp.send_message(self._compose(address, note))
                    delivered.append(user_id)
                except smtplib.SMTPRecipientsRefused:
                    log.warning("address of %s refused", user_id)
        return delivered

    async def _send_push(self, user_id: str, note: Notification) -> None:
        resp = await self.http.post(
            self.push_url, json={"user": user_id, "title": note.subject, "body": note.body}
        )
        resp.raise_for_status()

    async def _count(self, channel: str) -> None:
        with self._stats_lock:
            self.sent[channel] += 1
            await self.redis.hincrby("fanout:sent", channel, 1)

    async def handle(self, note: Notification) -> None:
        if note.request_id in self._handled:
            log.info("duplicate request %s ignored", note.request_id)
            return
        emails: list[tuple[str, str]] = []
        for user_id in note.recipients:
            prefs = await self._preferences(user_id)
            channel = prefs["channel"] if prefs["channel"] in CHANNELS else "email"
            if channel == "push":
                try:
                    await self._send_push(user_id, note)
                except httpx.HTTPError as exc:
                    log.warning("push %s to %s failed: %s", note.request_id, user_id, exc)
                    continue
                await self._count("push")
            elif prefs["address"]:
                emails.append((user_id, prefs["address"]))
        if emails:
            try:
                for _ in await self._send_emails(emails, note):
                    await self._count("email")
            except (smtplib.SMTPException, OSError) as exc:
                log.error("smtp delivery of %s failed: %s", note.request_id, exc)
        self._handled.add(note.request_id)

    async def run(self) -> None:
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError:
            pass
        while True:
            entries = await self.redis.xreadgroup(
                GROUP, self.consumer, {STREAM: ">"}, count=50, block=5000
            )
            for _stream, messages in entries or []:
                notes = [
                    Notification(
                        request_id=fields["request_id"],
                        template=fields.get("template", ""),
                        subject=fields["subject"],
                        body=fields["body"],
                        recipients=json.loads(fields["recipients"]),
                    )
                    for _msg_id, fields in messages
                ]
                await asyncio.gather(*(self.handle(n) for n in notes))
                await self.redis.xack(STREAM, GROUP, *(msg_id for msg_id, _ in messages))

    async def close(self) -> None:
        await self.http.aclose()
        await self.redis.aclose()
