"""What only the SQLite store does: WAL, group commit, lock timeouts, schema versions."""

from __future__ import annotations

import asyncio
import os
import selectors
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from devicebucket import Agent, Limits, NotFoundError, SQLiteStore, StoreUnavailableError
from devicebucket.backends.sqlite import WAL_AUTOCHECKPOINT
from devicebucket.backends.statements import SQL
from devicebucket.backends.tables import MIGRATION_STEPS, SQLITE
from devicebucket.core.errors import QuotaExceededError
from devicebucket.core.model import Snapshot

from . import schema7


async def test_file_is_in_wal_mode_with_tables(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "nested" / "dir" / "s.db", create_dirs=True)
    await store.merge("d", {"a": 1})
    await store.close()
    with closing(sqlite3.connect(tmp_path / "nested" / "dir" / "s.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATION_STEPS),)
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
        assert ("buckets_by_job",) in indexes
        # The history is appended to, and chained: no index of its own for a write to move.
        on_history = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'history'"
        assert conn.execute(on_history).fetchall() == []
        head = conn.execute("SELECT head FROM buckets").fetchone()[0]
        assert conn.execute(
            "SELECT version, prev FROM history WHERE id = ?", (head,)
        ).fetchone() == (1, None)
        assert conn.execute("SELECT device, job, version FROM buckets").fetchall() == [("d", "", 1)]


async def test_concurrent_writes_share_one_commit(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.merge("warm", {"a": 1})  # opens this thread's connection
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    await asyncio.gather(*(store.merge(f"d{i}", {"k": i}) for i in range(50)))
    assert statements.count("COMMIT") == 1
    assert statements.count("BEGIN IMMEDIATE") == 1
    statements.clear()
    for i in range(3):
        await store.merge("solo", {"k": i})
    assert statements.count("COMMIT") == 3
    await store.close()


async def test_a_batch_of_more_writes_than_one_insert_takes_keeps_every_history_row(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.merge("warm", {"a": 1})
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    await asyncio.gather(*(store.merge(f"d{i}", {"k": i}) for i in range(150)))
    await asyncio.gather(*(store.merge(f"d{i}", {"k": i + 1000}) for i in range(150)))
    assert statements.count("COMMIT") == 2
    inserts = [s for s in statements if s.startswith("INSERT INTO history")]
    assert [s.count("), (") + 1 for s in inserts] == [64, 64, 22] * 2  # rows a statement
    for i in (0, 63, 64, 128, 149):
        changes = await store.history(f"d{i}")
        assert [(c.version, c.changed) for c in changes] == [(2, ("k",)), (1, ())]
        assert (await store.at_version(f"d{i}", 1)).data == {"k": i}
    await store.close()


async def test_writers_started_as_tasks_share_one_commit(tmp_path: Path) -> None:
    # A writer commits at once only when nothing else is ready to run: tasks that are ready
    # join its batch, however they were started.
    store = SQLiteStore(tmp_path / "s.db")
    await store.merge("d", {"n": 0})
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    tasks = [asyncio.create_task(store.merge("d", {f"k{i}": i})) for i in range(8)]
    await asyncio.gather(*tasks)
    assert statements.count("COMMIT") == 1
    assert (await store.get("d")).version == 9
    await store.close()


async def test_batches_are_capped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", max_batch=16)
    await store.merge("warm", {"a": 1})
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    await asyncio.gather(*(store.merge("d", {f"k{i}": i}) for i in range(40)))
    assert statements.count("COMMIT") == 3
    assert len((await store.get("d")).data) == 40
    await store.close()


async def test_a_write_lock_held_too_long_fails_clearly_and_reads_go_on(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, busy_timeout=0.05)
    await store.merge("d", {"a": 1})
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        result = await Agent(store, "d").utils.deviceBucket.set({"b": 2})
        assert result == {"success": False, "error": f"SQLite store {path}: database is locked"}
        assert (await store.get("d")).data == {"a": 1}
        other.execute("ROLLBACK")
    assert (await store.merge("d", {"b": 2})).data == {"a": 1, "b": 2}
    await store.close()


async def test_an_older_file_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(";".join(SQL(SQLITE).steps[0]))
        conn.execute("""INSERT INTO buckets VALUES ('d', '', '{"a":1}', 4, 1, 7, 1.0)""")
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
    store = SQLiteStore(path)
    assert (await store.get("d")).version == 4
    token, secret = await store.create_token("d")
    assert await store.authenticate(secret) == token
    assert (await store.device_page(job=None)).total == 1
    await store.close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATION_STEPS),)


async def test_the_history_moves_to_chained_rows_whole(tmp_path: Path) -> None:
    """A file of schema 7 (history rows keyed by bucket and version) keeps every entry, its
    kept contents and its order when its history moves to rows chained from the bucket."""
    path = tmp_path / "v7.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(";".join(s for step in SQL(SQLITE).steps[:7] for s in step))
        buckets = "INSERT INTO buckets VALUES (?, '', ?, ?, 1, 7, 5.0, NULL, NULL)"
        conn.executemany(buckets, schema7.BUCKETS)
        history = f"INSERT INTO history VALUES (?, '', ?, ?, 'me', '{schema7.CHANGES}', ?)"
        conn.executemany(history, schema7.HISTORY)
        conn.execute("PRAGMA user_version = 7")
        conn.commit()
    store = SQLiteStore(path)
    await schema7.check_moved(store)
    await store.close()


async def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 99")
    store = SQLiteStore(path)
    with pytest.raises(StoreUnavailableError, match="written by a newer devicebucket"):
        await store.get("d")
    await store.close()


async def test_export_runs_beside_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    for i in range(5):
        await store.merge(f"d{i}", {"i": i})
    exported = []
    async for record in store.export(history=False):
        exported.append(record)
        await store.merge("during", {"n": len(exported)})  # the export is a snapshot
    assert len(exported) == 5
    assert (await store.get("during")).version == 5
    await store.close()


async def test_write_cache_sees_commits_of_other_connections(tmp_path: Path) -> None:
    one, two = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    await one.merge("d", {"a": 1})  # cached by one's connection
    await two.merge("d", {"b": 2})  # committed by another connection
    after = await one.merge("d", {"c": 3})
    assert after.data == {"a": 1, "b": 2, "c": 3}
    assert after.version == 3
    await two.delete_device("d")
    assert (await one.merge("d", {"x": 1})).data == {"x": 1}
    with closing(sqlite3.connect(tmp_path / "s.db", isolation_level=None)) as raw:
        raw.execute("""UPDATE buckets SET data = '{"raw":1}', version = 9 WHERE device = 'd'""")
    assert (await one.merge("d", {"y": 2})).data == {"raw": 1, "y": 2}
    assert (await one.get("d")).version == 10
    await one.close()
    await two.close()


async def test_the_quota_sees_other_buckets_written_in_a_batch_and_elsewhere(
    tmp_path: Path,
) -> None:
    """A connection remembers what a device's other buckets hold; each write to one of them
    (in its own batch, or by another connection) counts all the same."""
    limits = Limits(device_quota_bytes=3_000)
    one, two = (
        SQLiteStore(tmp_path / "s.db", limits=limits),
        SQLiteStore(tmp_path / "s.db", limits=limits),
    )
    for job in ("a", "b"):
        await one.register_job(job)
    await one.merge("d", {"x": "1" * 500}, job="a")
    results = await asyncio.gather(  # one batch, in this order
        one.merge("d", {"x": "1" * 1_000}, job="a"),  # a's others read: 0 bytes
        one.merge("d", {"x": "2" * 1_500}, job="b"),  # b grows: a's others are 1,508 bytes
        one.merge("d", {"x": "1" * 1_600}, job="a"),  # 1,608 + 1,508 > 3,000
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["Snapshot", "Snapshot", "QuotaExceededError"]
    assert (await one.merge("d", {"x": "1" * 1_400}, job="a")).version == 3  # 2,916 bytes
    results = await asyncio.gather(
        one.merge("d", {"x": "1" * 1_450}, job="a"),  # a's others read: 1,508 bytes
        one.merge("d", {"x": "2" * 100}, job="b"),  # b shrinks (no quota to check)
        one.merge("d", {"x": "1" * 2_000}, job="a"),  # 2,008 + 108 bytes
    )
    assert [r.version for r in results if isinstance(r, Snapshot)] == [4, 2, 5]
    await one.merge("d", {"x": "1" * 1_000}, job="a")
    await two.merge("d", {"x": "2" * 1_900}, job="b")  # another connection: 2,916 bytes
    with pytest.raises(QuotaExceededError):
        await one.merge("d", {"x": "1" * 1_100}, job="a")
    assert (await one.get("d", job="a")).data == {"x": "1" * 1_000}
    await one.close()
    await two.close()


async def test_write_cache_never_shares_objects_with_callers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    first = await store.merge("d", {"list": [1], "obj": {"k": "v"}})
    first.data["list"].append(2)
    first.data["obj"]["k"] = "changed"
    first.data["new"] = True
    second = await store.merge("d", {"x": 1})
    assert second.data == {"list": [1], "obj": {"k": "v"}, "x": 1}
    assert second.text == '{"list":[1],"obj":{"k":"v"},"x":1}'
    await store.close()


async def test_a_failed_batch_leaves_no_stale_cache(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, busy_timeout=0.05)
    await store.merge("d", {"a": 1})
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            await store.merge("d", {"b": 2})
        other.execute("ROLLBACK")
    assert (await store.merge("d", {"c": 3})).data == {"a": 1, "c": 3}
    await store.close()


async def test_job_schema_changes_reach_a_cached_writer(tmp_path: Path) -> None:
    from devicebucket import SchemaViolationError

    writer, admin = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    await writer.merge("d", {"n": "text"}, job="j")  # no schema yet: cached as none
    await admin.register_job(
        "j", schema={"properties": {"n": {"type": "string"}, "m": {"type": "integer"}}}
    )
    with pytest.raises(SchemaViolationError, match=r"\$\.m"):
        await writer.merge("d", {"m": "not an int"}, job="j")
    await writer.close()
    await admin.close()


async def test_history_can_be_turned_off(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", limits=Limits(history_versions=0))
    await store.merge("d", {"a": 1})
    await store.merge("d", {"a": 2})
    assert await store.history("d") == []
    with pytest.raises(NotFoundError):
        await store.restore("d", 1)
    assert (await store.get("d")).data == {"a": 2}
    await store.close()


async def test_the_jobs_page_is_one_query_however_many_jobs(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "jobs.db")
    for n in range(30):
        await store.register_job(f"job-{n:02d}")
        await store.merge(f"device-{n}", {"k": 1}, job=f"job-{n:02d}")
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    summaries = await store.job_summaries()
    store._conn().set_trace_callback(None)
    assert [count for _, count in summaries] == [1] * 30
    assert len(statements) == 1
    await store.close()


async def test_a_writer_failing_for_any_reason_fails_alone_in_its_batch(tmp_path: Path) -> None:
    """Not only the store's own errors: whatever one write raises, the rest of its batch
    (other devices, same transaction) commits."""
    from devicebucket.core.operations import Merge

    store = SQLiteStore(tmp_path / "batch.db")
    unencodable = Merge({"x": object()})  # past the checks, as a bug would be: TypeError
    results = await asyncio.gather(
        *(store.merge("dev-b", {f"k{n}": n}) for n in range(16)),
        store._write("dev-a", None, unencodable, None, "test"),
        return_exceptions=True,
    )
    assert all(not isinstance(r, BaseException) for r in results[:16])
    assert isinstance(results[16], TypeError)
    assert (await store.get("dev-b")).data == {f"k{n}": n for n in range(16)}
    assert (await store.get("dev-a")).version == 0
    await store.close()


async def test_a_new_store_and_its_wal_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "private.db")
    await store.merge("d", {"password": "p"})
    for name in ("private.db", "private.db-wal", "private.db-shm"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600, name
    await store.close()


def test_a_forked_child_writes_on_a_connection_of_its_own(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    asyncio.run(store.merge("d", {"parent": 1}))  # the parent's connection, its cache warm
    parents = store._state.conn
    pid = os.fork()
    if pid == 0:  # the child: same store object, same thread
        code = 1
        try:
            asyncio.run(store.merge("d", {"child": 1}))
            code = 0 if store._state.conn not in (None, parents) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._state.conn is parents
    # The parent's write after the child's sees it (its cache is not trusted across it).
    asyncio.run(store.merge("d", {"parent": 2}))
    assert asyncio.run(store.get("d")).data == {"parent": 2, "child": 1}
    asyncio.run(store.close())


async def test_a_loop_of_writes_lets_timers_and_io_run(tmp_path: Path) -> None:
    # A lone writer commits without a lap of the event loop, but never for long: a loop
    # of writes that nothing else interleaves must not stall the loop's timers and I/O.
    store = SQLiteStore(tmp_path / "s.db")
    await store.merge("d", {"n": 0})
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.call_later(0.005, fired.set_result, None)
    served = loop.create_future()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(4))
        await writer.drain()
        served.set_result(None)
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
    writer.write(b"ping")
    writes = 0
    deadline = loop.time() + 10
    while not (fired.done() and served.done()) and loop.time() < deadline:
        await store.merge("d", {"n": writes})
        writes += 1
    assert fired.done(), "a timer waited behind every write"
    assert served.done(), "a connection was never served while the writes went on"
    assert await reader.read() == b"ping"
    writer.close()
    await writer.wait_closed()
    server.close()
    await server.wait_closed()
    await store.close()


def test_a_loop_with_nothing_else_to_serve_gets_no_laps_from_lone_writes(
    tmp_path: Path,
) -> None:
    # A lap lets the loop poll for I/O and run its timers: a loop with neither (a script's
    # loop of writes) gets none, and with a timer pending the laps come back.
    polls = 0

    class Counting(selectors.DefaultSelector):
        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            nonlocal polls
            polls += 1
            return super().select(timeout)

    loop = asyncio.SelectorEventLoop(Counting())
    store = SQLiteStore(tmp_path / "s.db")

    async def writes_and_polls(seconds: float) -> tuple[int, int]:
        """Lone writes for ``seconds``: how many, and how many times the loop polled."""
        nonlocal polls
        await store.merge("d", {"n": 0})
        polls, writes, end = 0, 0, time.monotonic() + seconds
        while time.monotonic() < end:
            writes += 1
            await store.merge("d", {"n": writes})
        return writes, polls

    try:
        assert loop.run_until_complete(writes_and_polls(0.05))[1] == 0
        loop.call_later(60, lambda: None)
        writes, laps = loop.run_until_complete(writes_and_polls(0.05))
        # A lap a millisecond, or a write when each takes longer (a slow disk).
        assert laps >= min(writes, 50) // 2
    finally:
        loop.run_until_complete(store.close())
        loop.close()


async def test_a_batchs_history_rows_keep_every_bucket_restorable(tmp_path: Path) -> None:
    # One batch writes the same buckets again and again: its history rows are inserted
    # together, and each forgetting of old contents (every 2 versions here) sees them all.
    store = SQLiteStore(tmp_path / "s.db", limits=Limits(history_versions=2))
    await store.merge("warm", {"a": 1})
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    writes = [store.merge(f"d{n % 3}", {"n": n, f"k{n}": n}) for n in range(30)]
    await asyncio.gather(*writes)
    assert statements.count("COMMIT") == 1
    for device in range(3):
        name = f"d{device}"
        contents: dict[str, int] = {}
        versions = []
        for n in range(device, 30, 3):
            contents = {**contents, "n": n, f"k{n}": n}
            versions.append(dict(contents))
        history = await store.history(name)
        assert [c.version for c in history] == list(range(10, 0, -1))
        for version in (9, 10):  # the last two are kept, key order included
            past = await store.at_version(name, version)
            assert list(past.data.items()) == list(versions[version - 1].items())
        with pytest.raises(NotFoundError):
            await store.at_version(name, 2)
    with closing(sqlite3.connect(tmp_path / "s.db")) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM history ORDER BY id")]
        assert ids == list(range(1, 32))  # as SQLite numbers rows: in the order written
    await store.close()


async def test_a_batch_inserts_its_history_rows_a_statement_for_64(tmp_path: Path) -> None:
    # 150 writes in one batch: their 150 history rows go in three statements (64, 64, 22),
    # and every one is there, in order, each bucket's chained to its row before.
    store = SQLiteStore(tmp_path / "s.db")
    await store.merge("warm", {"a": 1})
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    await asyncio.gather(*(store.merge(f"d{n % 50}", {"n": n}) for n in range(150)))
    assert statements.count("COMMIT") == 1
    inserts = [s for s in statements if s.startswith("INSERT INTO history")]
    assert [s.count("), (") + 1 for s in inserts] == [64, 64, 22]
    for device in range(50):
        history = await store.history(f"d{device}")
        assert [c.version for c in history] == [3, 2, 1]
        assert (await store.at_version(f"d{device}", 2)).data == {"n": device + 50}
    with closing(sqlite3.connect(tmp_path / "s.db")) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM history ORDER BY id")]
        assert ids == list(range(1, 152))
    await store.close()


async def test_history_rows_of_two_connections_never_share_an_id(tmp_path: Path) -> None:
    # Each connection numbers its batch's history rows from the last it wrote: another
    # connection's commit makes it look again.
    one, two = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    for n in range(4):
        await one.merge("d", {"n": n})
        await asyncio.gather(two.merge("d", {"m": n}), two.merge("e", {"m": n}))
        await one.merge("e", {"n": n})
    for device in ("d", "e"):
        assert [c.version for c in await one.history(device)] == list(range(8, 0, -1))
        assert (await two.at_version(device, 8)).data == {"n": 3, "m": 3}
    await one.close()
    await two.close()


async def test_none_binds_as_null_through_the_adapter_it_registers(tmp_path: Path) -> None:
    """The store registers an adapter for None (``sqlitefile``: a faster bind): it keeps
    None as None, so what a write leaves empty is NULL in the file, as without it."""
    adapter = sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)]
    assert adapter(None) is None
    store = SQLiteStore(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    await store.merge("d", {"a": 2})
    await store.close()
    with closing(sqlite3.connect(tmp_path / "s.db")) as conn:
        bucket = "SELECT expires IS NULL, next_expiry IS NULL FROM buckets"
        assert conn.execute(bucket).fetchall() == [(1, 1)]
        history = "SELECT version, data IS NULL, delta IS NULL, prev IS NULL FROM history"
        rows = conn.execute(f"{history} ORDER BY id").fetchall()
        assert rows == [(1, 1, 0, 1), (2, 1, 0, 0)]  # deltas: no full copy, and no row before


def test_a_programs_own_adapter_for_none_is_kept() -> None:
    """A program that registered an adapter for None before it imported devicebucket keeps
    it: the store adds its own only where there is none."""
    code = (
        "import sqlite3\n"
        "def mine(value): return 'none'\n"
        "sqlite3.register_adapter(type(None), mine)\n"
        "import devicebucket\n"
        "from devicebucket.backends import sqlitefile\n"
        "assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)] is mine\n"
        "with sqlite3.connect(':memory:') as conn:\n"
        "    assert conn.execute('SELECT ?', (None,)).fetchone() == ('none',)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("given", [None, 1000])
async def test_the_wal_is_checkpointed_every_so_many_pages(
    tmp_path: Path, given: int | None
) -> None:
    """Every 4,000 pages unless told (``WAL_AUTOCHECKPOINT``): the WAL file holds them until
    a commit copies them into the database file, then is written again from its start."""
    pages = WAL_AUTOCHECKPOINT if given is None else given
    store = (
        SQLiteStore(tmp_path / "s.db")
        if given is None
        else SQLiteStore(tmp_path / "s.db", wal_autocheckpoint=given)
    )
    assert store._conn().execute("PRAGMA wal_autocheckpoint").fetchone() == (pages,)
    wal = tmp_path / "s.db-wal"
    big = {"blob": "x" * 3000}  # a page of its own in the WAL, and one of history
    n = 0

    def frames() -> int:  # a 32-byte header, then a page and its 24-byte header each
        return (wal.stat().st_size - 32) // (4096 + 24)

    while frames() < pages - 10:
        await store.merge(f"d{n}", big)
        n += 1
    db_size = (tmp_path / "s.db").stat().st_size
    while frames() < pages:  # not yet: the pages stay in the WAL
        assert (tmp_path / "s.db").stat().st_size == db_size
        await store.merge(f"d{n}", big)
        n += 1
    # The commit that took it past them copied them into the file.
    assert (tmp_path / "s.db").stat().st_size > db_size
    await store.merge("after", big)  # and the WAL begins again
    in_wal = store._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    assert 0 < in_wal < 10
    await store.close()
