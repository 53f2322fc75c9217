"""Dashboard sessions kept by the server, so that signing out ends one everywhere.

A session is a row keyed by the hash of the random secret its cookie carries. It names the
admin token it was opened with and, for the admin token given in the environment, a
fingerprint of that exact token, so a session ends when its token is revoked or is no longer
the one configured. SQL stores keep sessions in a table that every worker and server shares;
:class:`MemorySessions` keeps them in one process, for a store that has no table of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

__all__ = ["MemorySessions", "Session", "SessionStore", "session_key"]


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in dashboard session."""

    token: str  # the id of the admin token it was opened with
    binding: str  # a fingerprint of that exact token where its id alone does not say it
    csrf: str
    created_at: float
    seen_at: float


def session_key(secret: str) -> str:
    """The key a session is stored under: the hash of its cookie's secret (a stolen copy of
    the table opens no session)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live: every method takes the :func:`session_key`."""

    async def put_session(self, key: str, session: Session) -> None: ...

    async def get_session(self, key: str) -> Session | None: ...

    async def touch_session(self, key: str, at: float) -> None: ...

    async def end_session(self, key: str) -> None: ...

    async def end_stale_sessions(self, seen_before: float, created_before: float) -> None:
        """End every session idle since ``seen_before`` or opened before ``created_before``."""


class MemorySessions:
    """Sessions in this process only (a server over a store without a sessions table)."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    async def put_session(self, key: str, session: Session) -> None:
        self._sessions[key] = session

    async def get_session(self, key: str) -> Session | None:
        return self._sessions.get(key)

    async def touch_session(self, key: str, at: float) -> None:
        if key in self._sessions:
            self._sessions[key] = replace(self._sessions[key], seen_at=at)

    async def end_session(self, key: str) -> None:
        self._sessions.pop(key, None)

    async def end_stale_sessions(self, seen_before: float, created_before: float) -> None:
        self._sessions = {
            key: s
            for key, s in self._sessions.items()
            if s.seen_at >= seen_before and s.created_at >= created_before
        }
