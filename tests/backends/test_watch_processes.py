"""Watches across processes and servers: a write made anywhere reaches every watcher, each
version once, in order: another process on one SQLite file, another worker of ``serve
--workers 2``, another server on one PostgreSQL database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path

import httpx
import pytest

from devicebucket import HTTPStore, SQLiteStore, Store
from devicebucket.core.watching import BucketChange, Event

from ..conftest import ROOT
from ..servers import ADMIN, ServeProcess
from .test_postgres import pg_url

__all__ = ["pg_url"]  # the fixture, shared

pytestmark = pytest.mark.slow

WORKERS = str(ROOT / "tests" / "workers.py")
# Every version's contents stay in the history for these tests, so each watcher must get
# every version as a change (a resync would mean one was missed).
KEEP = {"DEVICEBUCKET_HISTORY_VERSIONS": "1000"}


async def versions_until(watch: AsyncGenerator[Event, None], last: int) -> list[BucketChange]:
    found: list[BucketChange] = []
    async with asyncio.timeout(60):
        async for event in watch:
            assert isinstance(event, BucketChange), f"a resync at version {event.version}"
            found.append(event)
            if event.version >= last:
                break
    return found


def writer(url: str, count: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Another process writing ``count`` keys ``c-0`` … one at a time."""
    return subprocess.Popen(
        [sys.executable, WORKERS, "set-distinct", url, "pixel-1", "c", str(count), "1"],
        env={**os.environ, **KEEP, **(env or {})},
    )


def check(found: list[BucketChange], count: int) -> None:
    assert [e.version for e in found] == list(range(1, count + 1))
    assert [e.changed for e in found] == [{f"c-{i}": i} for i in range(count)]


async def test_another_process_on_one_sqlite_file(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fleet.db")
    try:
        await store.merge("setup", {"created": True})  # the file exists for the writer
        async with aclosing(store.watch("pixel-1", since=0)) as watch:
            process = writer(f"sqlite:///{tmp_path / 'fleet.db'}", 150)
            found = await versions_until(watch, 150)
            assert await asyncio.to_thread(process.wait, 60) == 0
        check(found, 150)
    finally:
        await store.close()


async def watch_through(url: str, since: int, last: int) -> list[BucketChange]:
    store = HTTPStore(url, token=ADMIN)
    try:
        async with aclosing(store.watch("pixel-1", since=since)) as watch:
            return await versions_until(watch, last)
    finally:
        await store.close()


def write_each_on_a_new_connection(url: str, start: int, count: int) -> None:
    """Writes a server's workers share: each on a connection of its own."""
    for i in range(start, start + count):
        response = httpx.patch(
            f"{url}/v1/devices/pixel-1/bucket",
            json={f"c-{i}": i},
            headers={"Authorization": f"Bearer {ADMIN}", "Connection": "close"},
        )
        assert response.status_code == 200, response.text


async def test_other_workers_of_one_server(tmp_path: Path) -> None:
    with ServeProcess(f"sqlite:///{tmp_path / 'fleet.db'}", "--workers", "2", env=KEEP) as server:
        watching = asyncio.create_task(watch_through(server.url, 0, 120))
        await asyncio.to_thread(write_each_on_a_new_connection, server.url, 0, 120)
        check(await watching, 120)


async def test_other_servers_on_one_postgresql_database_and_resume(pg_url: str) -> None:
    with (
        ServeProcess(pg_url, "--no-access-log", env=KEEP) as one,
        ServeProcess(pg_url, "--no-access-log", env=KEEP) as two,
    ):
        watching = asyncio.create_task(watch_through(one.url, 0, 80))
        await asyncio.to_thread(write_each_on_a_new_connection, two.url, 0, 80)
        check(await watching, 80)
        # The watcher went away after version 80; it resumes on the other server.
        await asyncio.to_thread(write_each_on_a_new_connection, one.url, 80, 20)
        resumed = await watch_through(two.url, 80, 100)
        assert [e.version for e in resumed] == list(range(81, 101))


async def test_a_watcher_in_another_process_of_postgresql(pg_url: str) -> None:
    from devicebucket.backends.postgres import PostgresStore

    store: Store = PostgresStore(pg_url)
    try:
        await store.migrate()  # type: ignore[attr-defined]
        async with aclosing(store.watch("pixel-1", since=0)) as watch:
            process = writer(pg_url, 100)
            found = await versions_until(watch, 100)
            assert await asyncio.to_thread(process.wait, 60) == 0
        check(found, 100)
    finally:
        await store.close()
