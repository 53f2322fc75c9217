"""Shared fixtures: every store implementation the conformance suite runs against."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devicebucket import HTTPStore, SQLiteStore, Store
from devicebucket.backends.postgres import PostgresStore
from devicebucket.core.crypto import KeyRing
from devicebucket.core.limits import Limits
from devicebucket.web.app import create_app

from .servers import ADMIN, SERVER_LOGS, ThreadedServer

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"

STORE_KINDS = ["sqlite", "sqlite-encrypted", "http", "postgresql"]
PG_URL = os.environ.get("DEVICEBUCKET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    """Whether PostgreSQL answers. In CI it must: there an unreachable server fails the tests."""
    import socket

    host = urlsplit(PG_URL)
    try:
        with socket.create_connection((host.hostname or "127.0.0.1", host.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def requires(present: bool, missing: str) -> None:
    """Skip the test (or the module) when what it needs is ``missing``; under CI=true, where
    everything must be installed, fail instead."""
    if present:
        return
    if IN_CI:
        pytest.fail(f"{missing} (CI=true: this is a failure)")
    pytest.skip(missing, allow_module_level=True)


def require_postgres() -> None:
    requires(postgres_reachable(), f"PostgreSQL is not reachable at {PG_URL}")


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def pg_schema_url() -> tuple[str, str]:
    """A URL of a schema no other test run uses, and that schema's name."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    return f"{PG_URL}?schema={schema}", schema


@asynccontextmanager
async def open_test_store(
    kind: str, tmp_path: Path, limits: Limits | None = None
) -> AsyncIterator[Store]:
    """A fresh, empty store of ``kind`` whose files live under ``tmp_path`` (``limits``: the
    store's, or for ``http`` the server's store's).

    ``http`` is an HTTPStore talking to a real server (uvicorn on a free loopback port)
    whose own store is a fresh SQLite file.
    """
    if kind in ("sqlite", "sqlite-encrypted"):
        # The encrypted store also clears old history contents after 4 rows, not 65,536:
        # so every test of the suite runs with the sweep at work.
        keys, lag = (KeyRing([b"k" * 32]), 4) if kind == "sqlite-encrypted" else (None, 65_536)
        store: Store = SQLiteStore(tmp_path / "store.db", keys=keys, limits=limits, forget_lag=lag)
        try:
            yield store
        finally:
            await store.close()
    elif kind == "http":
        app = create_app(SQLiteStore(tmp_path / "server.db", limits=limits), admin_token=ADMIN)
        with ThreadedServer(app) as server:
            store = HTTPStore(server.url, token=ADMIN, retries=1, backoff=0.01)
            try:
                yield store
            finally:
                await store.close()
    elif kind == "postgresql":
        require_postgres()
        url, schema = pg_schema_url()
        store = PostgresStore(url, limits=limits)
        try:
            yield store
        finally:
            await store.close()
            await drop_schema(schema)
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


# Values the tests store under secret-looking keys, or present as tokens. No server log of
# the whole run may contain one (values never reach a log line).
KNOWN_SECRETS = (
    "hunter2",
    "s3cret",
    "correct-horse",
    "sid=7f3a9c1e5b2d",
    "pw-in-history",
    "dbk_0123456789ab_",
)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Scan the log of every server the run started for the known secrets."""
    leaks = []
    for log in SERVER_LOGS:
        text = log.read_text(errors="replace") if log.exists() else ""
        leaks += [f"{secret!r} in {log}" for secret in KNOWN_SECRETS if secret in text]
    if leaks:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nsecrets found in server logs:\n  " + "\n  ".join(leaks))
