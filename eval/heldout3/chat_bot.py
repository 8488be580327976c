"""Support assistant for the team chat.

Receives message events from the chat platform's webhook, keeps the running
conversation per channel, asks the completion service for a reply and posts
it back to the channel.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass

import httpx
import requests
from fastapi import FastAPI, Request, Response

log = logging.getLogger("supportbot")

CHAT_API = os.environ.get("CHAT_API", "https://chat.internal/api")
COMPLETIONS_URL = os.environ.get("COMPLETIONS_URL", "http://llm-gateway:8000/v1/complete")
MODERATION_URL = os.environ.get("MODERATION_URL", "http://moderation:9000/check")
BOT_TOKEN = os.environ.get("BOT_TOKEN", "")
CONTEXT_TURNS = 20
REPLY_TIMEOUT = 45.0


@dataclass
class Turn:
    role: str
    text: str
    at: float


class SupportBot:
    def __init__(self) -> None:
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=REPLY_TIMEOUT),
            headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        )
        self.histories: dict[str, list[Turn]] = defaultdict(list)
        self._state_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    def is_allowed(self, text: str) -> bool:
        resp = requests.post(MODERATION_URL, json={"text": text}, timeout=3)
        if resp.status_code != 200:
            log.warning("moderation returned %s, allowing message", resp.status_code)
            return True
        return not resp.json().get("flagged", False)

    def _prompt(self, channel: str) -> list[dict]:
        turns = self.histories[channel][-CONTEXT_TURNS:]
        return [{"role": t.role, "content": t.text} for t in turns]

    async def _complete(self, messages: list[dict]) -> str:
        resp = await self.http.post(COMPLETIONS_URL, json={"messages": messages, "max_tokens": 400})
        resp.raise_for_status()
        return resp.json()["text"].strip()

    async def _post(self, channel: str, text: str) -> None:
        resp = await self.http.post(f"{CHAT_API}/channels/{channel}/messages", json={"text": text})
        if resp.status_code >= 400:
            log.error("posting to %s failed: %s %s", channel, resp.status_code, resp.text[:200])

    async def handle_message(self, channel: str, user: str, text: str) -> None:
        if not self.is_allowed(text):
            await self._post(channel, "Sorry, I can't help with that one.")
            return

        async with self._state_lock:
            self.histories[channel].append(Turn("user", f"{user}: {text}", time.time()))
            messages = self._prompt(channel)
            try:
                reply = await asyncio.wait_for(self._complete(messages), REPLY_TIMEOUT)
            except (asyncio.TimeoutError, httpx.HTTPError) as exc:
                log.warning("completion failed for %s: %s", channel, exc)
                reply = "I'm having trouble answering right now, please try again in a minute."
            else:
                self.histories[channel].append(Turn("assistant", reply, time.time()))

        await self._post(channel, reply)

    def dispatch(self, channel: str, user: str, text: str) -> None:
        task = asyncio.create_task(self.handle_message(channel, user, text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.http.aclose()


app = FastAPI()
bot = SupportBot()


@app.post("/events")
async def events(request: Request) -> Response:
    event = await request.json()
    if event.get("type") == "url_verification":
        return Response(content=event["challenge"], media_type="text/plain")
    msg = event.get("event", {})
    if msg.get("type") == "message" and not msg.get("bot_id") and msg.get("text"):
        bot.dispatch(msg["channel"], msg.get("user", "someone"), msg["text"])
    return Response(status_code=200)


@app.on_event("shutdown")
async def shutdown() -> None:
    await bot.close()
