"""Dashboard sessions on every store that keeps them (and in memory, for the others)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from devicebucket.core.sessions import MemorySessions, Session, SessionStore, session_key

from ..conftest import open_test_store


@asynccontextmanager
async def sessions_of(kind: str, tmp_path: Path) -> AsyncIterator[SessionStore]:
    if kind == "memory":
        yield MemorySessions()
        return
    async with open_test_store(kind, tmp_path) as store:
        assert isinstance(store, SessionStore)
        yield store


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "memory"])
async def test_sessions_are_kept_touched_ended_and_swept(kind: str, tmp_path: Path) -> None:
    async with sessions_of(kind, tmp_path) as sessions:
        one, two = session_key("secret-one"), session_key("secret-two")
        assert one != two
        assert "secret" not in one
        await sessions.put_session(one, Session("env", "fp", "csrf-1", 100.0, 100.0))
        await sessions.put_session(two, Session("abc123", "", "csrf-2", 50.0, 50.0))
        assert await sessions.get_session(one) == Session("env", "fp", "csrf-1", 100.0, 100.0)
        await sessions.touch_session(one, 150.0)
        assert (await sessions.get_session(one)) == Session("env", "fp", "csrf-1", 100.0, 150.0)
        await sessions.end_stale_sessions(seen_before=60.0, created_before=0.0)
        assert await sessions.get_session(two) is None  # idle since 50
        assert await sessions.get_session(one) is not None
        await sessions.end_session(one)
        assert await sessions.get_session(one) is None
