"""PostgreSQL: many servers on one database, a database restart, migrations, and copy."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from devicebucket import (
    Agent,
    HTTPStore,
    InvalidValueError,
    Limits,
    NotFoundError,
    SQLiteStore,
    StoreUnavailableError,
)
from devicebucket.backends.copying import CopyError, copy_store
from devicebucket.backends.postgres import MIGRATIONS, PostgresStore

from ..conftest import PG_URL, drop_schema, pg_schema_url, require_postgres, requires
from ..entry.test_serve import clients
from ..servers import ADMIN, ServeProcess
from . import schema7

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a schema of their own, dropped afterwards."""
    require_postgres()
    url, schema = pg_schema_url()
    yield url
    asyncio.run(drop_schema(schema))


def in_threads(jobs: list[tuple[ServeProcess, list[list[str]]]]) -> None:
    """Run batches of client processes against their servers, all at the same time."""
    errors: list[BaseException] = []

    def run(server: ServeProcess, batch: list[list[str]]) -> None:
        try:
            clients(batch, server, ADMIN)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_servers_on_one_database_lose_no_write(pg_url: str) -> None:
    with (
        ServeProcess(pg_url, "--no-access-log") as one,
        ServeProcess(pg_url, "--no-access-log") as two,
    ):
        writers = [["set-distinct", "pixel", f"c{c}", "300", "5"] for c in range(8)]
        in_threads(
            [
                (one, writers[0::2]),
                (two, writers[1::2]),
                (one, [["increment", "counter", "25"]] * 2),
                (two, [["increment", "counter", "25"]] * 2),
            ]
        )

    async def check() -> None:
        store = PostgresStore(pg_url)
        pixel, counter = await store.get("pixel"), await store.get("counter")
        await store.close()
        assert pixel.data == {f"c{c}-{i}": i for c in range(8) for i in range(300)}
        assert pixel.version == 2400
        assert counter.data == {"n": 100}
        assert counter.version == 100

    asyncio.run(check())


def postgres_cluster() -> tuple[str, str]:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]
    return version, "main"


def test_a_database_restart_loses_no_acknowledged_write(pg_url: str) -> None:
    requires(
        shutil.which("pg_ctlcluster") is not None and Path("/etc/postgresql").is_dir(),
        "pg_ctlcluster is needed to restart PostgreSQL",
    )
    version, cluster = postgres_cluster()
    with ServeProcess(pg_url, "--no-access-log") as server:

        async def run() -> None:
            store = HTTPStore(server.url, token=ADMIN, retries=0, timeout=5)
            acknowledged: list[str] = []
            failures: list[str] = []
            restarted = asyncio.Event()
            warmed_up = asyncio.Event()  # 50 writes acknowledged before the restart

            async def write_loop() -> None:
                n = 0
                after_restart = 0
                while after_restart < 50:
                    result = await Agent(store, "pixel").utils.deviceBucket.set({f"k{n}": n})
                    if result["success"]:
                        acknowledged.append(f"k{n}")
                        if len(acknowledged) == 50:
                            warmed_up.set()
                        after_restart += restarted.is_set()
                    else:
                        failures.append(result["error"])
                    n += 1

            async def restart() -> None:
                await warmed_up.wait()
                await asyncio.to_thread(
                    subprocess.run,
                    ["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"],
                    check=True,
                    capture_output=True,
                )
                restarted.set()

            await asyncio.wait_for(asyncio.gather(write_loop(), restart()), timeout=120)
            stored = await store.get("pixel")
            await store.close()
            assert set(acknowledged) <= set(stored.data)
            assert all("store unavailable" in f or "PostgreSQL store" in f for f in failures), (
                failures[:3]
            )

        asyncio.run(run())
        # The server answers again without being restarted.
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_migrations_are_applied_once_when_many_start_together(pg_url: str, cli: Cli) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "devicebucket", "--db", pg_url, "migrate-db"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, outputs
    assert all(json.loads(out) == {"schema_version": len(MIGRATIONS)} for out, _ in outputs)

    async def applied() -> list[int]:
        schema = pg_url.rsplit("schema=", 1)[1]
        conn = await asyncpg.connect(PG_URL)
        try:
            rows = await conn.fetch(f'SELECT version FROM "{schema}".devicebucket_migrations')
        finally:
            await conn.close()
        return [r["version"] for r in rows]

    assert sorted(asyncio.run(applied())) == list(range(1, len(MIGRATIONS) + 1))
    refused = cli("migrate-db")
    assert refused.returncode == 2
    assert "migrate-db is for postgresql:// stores" in refused.stderr


async def test_an_unreachable_database_is_a_clear_failure() -> None:
    store = PostgresStore("postgresql://postgres:pw-secret@127.0.0.1:1/test", timeout=2)
    result = await Agent(store, "d").utils.deviceBucket.set({"a": 1})
    assert result["success"] is False
    assert result["error"].startswith(
        "PostgreSQL store postgresql://postgres:***@127.0.0.1:1/test:"
    )
    assert "pw-secret" not in result["error"]
    await store.close()


async def test_copy_from_sqlite_verifies_and_refuses_a_full_target(
    pg_url: str, tmp_path: Path
) -> None:
    source = SQLiteStore(tmp_path / "fleet.db")
    await source.register_job("signup", automation="s.py", schema={"type": "object"})
    _, secret = await source.create_token("pixel-1")
    for i in range(30):
        await source.merge(f"pixel-{i}", {"token": f"t{i}", "n": [i, 1.5, None]})
        await source.merge(f"pixel-{i}", {"step": i}, job="signup")
    await source.merge("pixel-3", {"n": "changed"})
    target = PostgresStore(pg_url)
    copied = await copy_store(source, target)
    assert copied.summary() == {
        "jobs": 1,
        "tokens": 1,
        "buckets": 60,
        "history": 61,
        "devices": 30,
    }
    assert (await target.get("pixel-3")).version == 2
    assert await target.history("pixel-3") == await source.history("pixel-3")
    assert (await target.at_version("pixel-3", 1)).data == {"token": "t3", "n": [3, 1.5, None]}
    assert await target.authenticate(secret) is not None
    with pytest.raises(CopyError, match="is not empty; copy into an empty store, or pass --force"):
        await copy_store(source, target)
    again = await copy_store(source, target, force=True)
    assert again.devices == copied.devices
    await source.close()
    await target.close()


def test_copy_command_reports_the_verified_counts(pg_url: str, cli: Cli, db_url: str) -> None:
    assert cli("set", "pixel", "a:=1").returncode == 0
    assert cli("token", "create", "pixel").returncode == 0
    result = cli("copy", "--from", db_url, "--to", pg_url, db=None)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "jobs": 0,
        "tokens": 1,
        "buckets": 1,
        "history": 1,
        "devices": 1,
        "verified": True,
    }
    refused = cli("copy", "--from", db_url, "--to", pg_url, db=None)
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert json.loads(cli("get", "pixel", db=pg_url).stdout) == {"a": 1}


def test_pool_size_and_schema_come_from_the_url() -> None:
    store = PostgresStore("postgresql://u:pw@h:5432/db?schema=s1&pool_max=25&sslmode=disable")
    assert (store.schema, store.min_pool, store.max_pool) == ("s1", 1, 25)
    assert store.dsn == "postgresql://u:pw@h:5432/db?sslmode=disable"
    with pytest.raises(InvalidValueError, match="pool_max in a PostgreSQL URL must be an integer"):
        PostgresStore("postgresql://h/db?pool_max=lots")
    with pytest.raises(InvalidValueError, match="pool_min may not be larger than pool_max"):
        PostgresStore("postgresql://h/db?pool_min=20&pool_max=5")


async def test_reads_create_no_tables_and_the_first_write_does() -> None:
    require_postgres()
    url, schema = pg_schema_url()
    store = PostgresStore(url)
    try:
        assert (await store.get("d")).data == {}
        assert await store.devices() == []
        assert await store.jobs() == []
        assert await store.history("d") == []
        assert await store.tokens() == []
        assert [r async for r in store.export()] == []
        assert (await store.device_page()).total == 0
        assert await store.info() == {"url": store.url, "exists": False}
        assert await _tables(schema) == 0
        await store.merge("d", {"a": 1})
        assert await _tables(schema) > 0
        assert (await store.info())["devices"] == 1
    finally:
        await store.close()
        await drop_schema(schema)


async def _tables(schema: str) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1"
        return int(await conn.fetchval(query, schema))
    finally:
        await conn.close()


def test_the_cli_says_once_where_it_created_a_postgresql_store(pg_url: str, cli: Cli) -> None:
    read = cli("get", "pixel", db=pg_url)
    assert (read.returncode, read.stderr) == (0, "")
    first = cli("set", "pixel", "a=1", db=pg_url)
    assert first.stderr == f"devicebucket: created a new store at {pg_url}\n"
    assert cli("set", "pixel", "b=2", db=pg_url).stderr == ""


async def test_racing_writers_on_two_pools_lose_nothing_and_record_every_version() -> None:
    """Writes are optimistic (read, then write only if the version is unchanged): 80 writers
    on two stores (two servers' pools) race for one bucket, its first write included. Each
    loser plans again, a bucket that stays contended falls back to its row lock, and every
    20th version forgets old contents, in its own statement or under that lock: no key is
    lost, every version is recorded once, in order."""
    require_postgres()
    url, schema = pg_schema_url()
    one, two = PostgresStore(url, max_pool=20), PostgresStore(url, max_pool=20)
    try:
        await one.migrate()
        writes = [(one if n % 2 else two).merge("hot", {f"k{n}": n}) for n in range(80)]
        await asyncio.gather(*writes)
        snapshot = await one.get("hot")
        assert snapshot.data == {f"k{n}": n for n in range(80)}
        assert snapshot.version == 80
        history = await two.history("hot", limit=100)
        assert [c.version for c in history] == list(range(80, 0, -1))
        assert sorted(key for c in history for key in c.added) == sorted(f"k{n}" for n in range(80))
        # Version 80 forgot what is older than 60, its base.
        assert [c.version for c in history if c.kept] == list(range(80, 59, -1))
    finally:
        await one.close()
        await two.close()
        await drop_schema(schema)


async def test_a_write_that_forgets_removes_old_contents_in_its_own_statement() -> None:
    """Every ``history_versions`` versions a write forgets the contents below the full copy
    before it: on the optimistic path, in the statement that writes the bucket, so the rows
    hold none once the write is acknowledged, and the bucket row records ``kept_from``."""
    require_postgres()
    url, schema = pg_schema_url()
    store = PostgresStore(url, limits=Limits(history_versions=2))
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
    try:

        async def on_disk() -> tuple[list[int], int]:
            rows = await conn.fetch(
                "SELECT version FROM history WHERE device = 'd'"
                " AND (data IS NOT NULL OR delta IS NOT NULL) ORDER BY version"
            )
            kept_from = await conn.fetchval("SELECT kept_from FROM buckets WHERE device = 'd'")
            return [r["version"] for r in rows], kept_from

        seen = {}
        for version in range(1, 8):  # the n-th write makes version n
            await store.merge("d", {"n": version, f"k{version}": version})
            seen[version] = await on_disk()
        assert seen[3] == ([1, 2, 3], 0)
        # Version 4 forgets below 2, version 6 below 4: each in its own statement.
        assert seen[4] == ([2, 3, 4], 2)
        assert seen[5] == ([2, 3, 4, 5], 2)
        assert seen[6] == ([4, 5, 6], 4)
        assert seen[7] == ([4, 5, 6, 7], 4)
        assert [c.version for c in await store.history("d") if c.kept] == [7, 6, 5, 4]
        assert (await store.at_version("d", 4)).data == {"n": 4} | {f"k{n}": n for n in range(1, 5)}
        with pytest.raises(NotFoundError):
            await store.at_version("d", 3)
        # The entries themselves stay.
        assert [c.version for c in await store.history("d")] == list(range(7, 0, -1))
    finally:
        await conn.close()
        await store.close()
        await drop_schema(schema)


async def test_a_database_migrated_by_a_newer_version_is_refused() -> None:
    require_postgres()
    url, schema = pg_schema_url()
    store = PostgresStore(url)
    try:
        await store.merge("d", {"a": 1})
        conn = await asyncpg.connect(PG_URL, server_settings={"search_path": schema})
        try:
            await conn.execute("INSERT INTO devicebucket_migrations (version) VALUES (99)")
        finally:
            await conn.close()
        newer = PostgresStore(url)
        with pytest.raises(StoreUnavailableError, match="migrated by a newer devicebucket"):
            await newer.merge("d", {"b": 2})
        await newer.close()
    finally:
        await store.close()
        await drop_schema(schema)


async def test_the_history_moves_to_chained_rows_whole() -> None:
    """A database at migration 6 (history rows keyed by bucket and version) keeps every
    entry, its kept contents and its order when its history moves to chained rows."""
    require_postgres()
    url, schema = pg_schema_url()
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path = "{schema}"')
        await conn.execute(
            "CREATE TABLE devicebucket_migrations"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for number, statements in enumerate(MIGRATIONS[:6], start=1):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO devicebucket_migrations (version) VALUES ($1)", number)
        await conn.executemany(
            "INSERT INTO buckets VALUES ($1, '', $2, $3, 1, 7, 5.0, NULL, NULL)", schema7.BUCKETS
        )
        await conn.executemany(
            f"INSERT INTO history VALUES ($1, '', $2, $3, 'me', '{schema7.CHANGES}', $4)",
            schema7.HISTORY,
        )
    finally:
        await conn.close()
    store = PostgresStore(url)
    try:
        await schema7.check_moved(store)
    finally:
        await store.close()
        await drop_schema(schema)
