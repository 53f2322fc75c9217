"""Shared fixtures: every store implementation the conformance suite runs against."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from devicebucket import HTTPStore, SQLiteStore, Store
from devicebucket.server import create_app

from .servers import ADMIN, ThreadedServer

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"

STORE_KINDS = ["sqlite", "http"]


@asynccontextmanager
async def open_test_store(kind: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, empty store of ``kind`` whose files live under ``tmp_path``.

    ``http`` is an HTTPStore talking to a real server (uvicorn on a free loopback port)
    whose own store is a fresh SQLite file.
    """
    if kind == "sqlite":
        store: Store = SQLiteStore(tmp_path / "store.db")
        try:
            yield store
        finally:
            await store.close()
    elif kind == "http":
        app = create_app(SQLiteStore(tmp_path / "server.db"), admin_token=ADMIN)
        with ThreadedServer(app) as server:
            store = HTTPStore(server.url, token=ADMIN, retries=1, backoff=0.01)
            try:
                yield store
            finally:
                await store.close()
    else:  # pragma: no cover
        raise AssertionError(f"unknown store kind {kind}")


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A fresh, empty store of each kind."""
    async with open_test_store(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A SQLite URL of a fresh file (absolute path)."""
    return f"sqlite:///{tmp_path / 'fleet.db'}"


@pytest.fixture
def cli(db_url: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``devicebucket --db URL ...`` in a subprocess, as a user would."""

    def run(
        *args: str, input: str | None = None, db: str | None = db_url
    ) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "devicebucket"]
        if db is not None:
            command += ["--db", db]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
        return subprocess.run(
            [*command, *args], input=input, capture_output=True, text=True, env=env, timeout=120
        )

    return run
