"""Writes per minute and the latest changes, for the dashboard's activity page."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devicebucket import HTTPStore, InvalidValueError, SQLiteStore, Store


async def test_writes_are_counted_per_minute_across_processes(tmp_path: Path) -> None:
    one, two = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    try:
        for n in range(3):
            await one.merge("pixel-1", {"n": n})
        await one.merge("pixel-1", {"n": 2})  # changes nothing: not a write that counts
        await two.merge("pixel-2", {"a": 1})
        await one.flush_activity()  # what a server does every ten seconds
        minutes = await two.activity(minutes=5)
        assert len(minutes) == 5
        assert minutes[-1][0] == (int(time.time() // 60)) * 60
        # two's own write is not flushed yet: it adds its count itself
        assert sum(writes for _, writes in minutes) == 4
        await two.flush_activity()
        assert sum(writes for _, writes in await one.activity(minutes=5)) == 4
    finally:
        await one.close()
        await two.close()


async def test_a_closing_store_adds_its_counts(tmp_path: Path) -> None:
    writer = SQLiteStore(tmp_path / "s.db")
    await writer.merge("pixel-1", {"a": 1})
    await writer.close()
    reader = SQLiteStore(tmp_path / "s.db")
    try:
        assert sum(w for _, w in await reader.activity()) == 1
    finally:
        await reader.close()


async def test_latest_changes_newest_first(store: Store) -> None:
    for device in ("pixel-1", "pixel-2", "pixel-3"):
        await store.merge(device, {"k": device})
    await store.merge("pixel-1", {"again": True})
    if isinstance(store, HTTPStore):
        assert await store.latest_changes() == []  # the server's dashboard reads its own store
        return
    latest = await store.latest_changes(limit=2)
    assert [(d, j, c.version) for d, j, c in latest] == [("pixel-1", None, 2), ("pixel-3", None, 1)]
    assert latest[0][2].added == ("again",)


async def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(InvalidValueError):
        await store.activity(minutes=0)
    with pytest.raises(InvalidValueError):
        await store.latest_changes(limit=10**6)
