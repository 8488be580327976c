"""Session store for the web app: logins via the identity provider, cookie sessions in memory."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

import requests

SESSION_TTL_S = 8 * 3600
IDP_TOKEN_URL = "https://idp.example.com/oauth/token"
IDP_USERINFO_URL = "https://idp.example.com/oauth/userinfo"


@dataclass
class Session:
    user_id: str
    email: str
    roles: tuple[str, ...]
    created: float
    last_seen: float
    csrf: str


class SessionStore:
    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._http = requests.Session()

    def _exchange_code(self, code: str, redirect_uri: str) -> dict:
        token = self._http.post(
            IDP_TOKEN_URL,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            auth=(self.client_id, self.client_secret),
            timeout=10,
        )
        token.raise_for_status()
        info = self._http.get(
            IDP_USERINFO_URL,
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=10,
        )
        info.raise_for_status()
        return info.json()

    def login(self, code: str, redirect_uri: str) -> str:
        with self._lock:
            user = self._exchange_code(code, redirect_uri)
            sid = secrets.token_urlsafe(32)
            now = time.time()
            self._sessions[sid] = Session(
                user["sub"], user["email"], tuple(user.get("roles", ())), now, now, secrets.token_hex(16)
            )
        return sid

    def get(self, sid: str) -> Session | None:
        with self._lock:
            session = self._sessions.get(sid)
            if session is None or time.time() - session.last_seen > SESSION_TTL_S:
                return None
            session.last_seen = time.time()
            return session

    def check_csrf(self, sid: str, token: str) -> bool:
        session = self.get(sid)
        return session is not None and hmac.compare_digest(session.csrf, token)

    def logout(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def active_count(self) -> int:
        now = time.time()
        with self._lock:
            return sum(1 for s in self._sessions.values() if now - s.last_seen <= SESSION_TTL_S)

    def require_role(self, sid: str, role: str) -> Session:
        session = self.get(sid)
        if session is None:
            raise PermissionError("not logged in")
        if role not in session.roles:
            raise PermissionError(f"{session.email} lacks role {role}")
        return session
