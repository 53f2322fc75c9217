"""The dashboard's sessions, kept by the server (``core.sessions``): which session a
request's cookie opens, opening one at sign-in, ending one at sign-out.

The cookie (HttpOnly, SameSite=Strict, Secure under TLS) carries only a random secret,
signed; the store keeps its hash, the admin token the session was opened with, and its
times. A session ends on sign-out, when its token is revoked or another admin token is
configured, after ``idle_seconds`` unused and ``lifetime_seconds`` after sign-in.
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Final

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from ..core.sessions import MemorySessions, Session, SessionStore, session_key
from ..core.store import Store
from ..core.tokens import Token
from .auth import TokenAuth

__all__ = ["SESSION_COOKIE", "SessionKeeper"]

SESSION_COOKIE: Final = "devicebucket_session"
#: A session's last use is recorded at most this often (a page view is not a write).
_TOUCH_EVERY: Final = 60.0


class SessionKeeper:
    """Sessions of one app, in its store's table (in memory for a store without one)."""

    def __init__(
        self,
        store: Store,
        auth: TokenAuth,
        session_secret: bytes,
        *,
        idle_seconds: float,
        lifetime_seconds: float,
        behind_tls: bool,
    ) -> None:
        self.sessions: SessionStore = store if isinstance(store, SessionStore) else MemorySessions()
        self.auth = auth
        self.signer = URLSafeTimedSerializer(session_secret, salt="devicebucket-ui-session")
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.behind_tls = behind_tls

    def _key(self, request: Request) -> str | None:
        """The key of the session the request's cookie names (its signature checked)."""
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            secret = self.signer.loads(cookie, max_age=int(self.lifetime_seconds))
        except BadSignature:
            return None
        return session_key(secret) if isinstance(secret, str) else None

    async def current(self, request: Request) -> dict[str, str] | None:
        """The signed-in session (``token`` id, ``csrf``, ``key``): one the server still
        keeps, within its lifetimes, whose admin token is still valid and still the same."""
        key = self._key(request)
        found = None if key is None else await self.sessions.get_session(key)
        if key is None or found is None:
            return None
        now = time.time()
        token = await self.auth.token_by_id(found.token)
        if (
            now - found.seen_at > self.idle_seconds
            or now - found.created_at > self.lifetime_seconds
            or token is None
            or not token.is_admin
            or not hmac.compare_digest(found.binding, self.auth.binding(token))
        ):
            await self.sessions.end_session(key)
            return None
        if now - found.seen_at > _TOUCH_EVERY:
            await self.sessions.touch_session(key, now)
        return {"token": token.id, "csrf": found.csrf, "key": key}

    async def open(self, request: Request, token: Token, response: Response) -> None:
        """Open a session for ``token`` and set its cookie on ``response`` (stale sessions
        are swept first)."""
        now = time.time()
        await self.sessions.end_stale_sessions(now - self.idle_seconds, now - self.lifetime_seconds)
        secret = secrets.token_urlsafe(32)
        opened = Session(token.id, self.auth.binding(token), secrets.token_urlsafe(24), now, now)
        await self.sessions.put_session(session_key(secret), opened)
        response.set_cookie(
            SESSION_COOKIE,
            self.signer.dumps(secret),
            max_age=int(self.lifetime_seconds),
            path="/ui",
            httponly=True,
            samesite="strict",
            secure=self.behind_tls or request.url.scheme == "https",
        )

    async def end(self, session: dict[str, str], response: Response) -> None:
        """End the session on the server (its cookie opens nothing any more) and drop the
        cookie."""
        await self.sessions.end_session(session["key"])
        response.delete_cookie(SESSION_COOKIE, path="/ui")
