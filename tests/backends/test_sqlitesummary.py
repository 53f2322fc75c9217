"""The SQLite store's in-memory device totals (``backends.sqlitesummary``): sorted pages
agree with the aggregate over the buckets, whichever store wrote, deleted or imported."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from contextlib import closing
from pathlib import Path

from devicebucket import Limits, SQLiteStore
from devicebucket.backends.queries import device_page_sql
from devicebucket.backends.sqlitesummary import DeviceSummary
from devicebucket.backends.tables import SQLITE
from devicebucket.core.limits import MAX_DEVICE_PAGE

SORTS = [
    (sort, descending) for sort in ("device", "keys", "size", "updated_at") for descending in (0, 1)
]


def aggregate(path: Path, search: str, sort: str, descending: bool) -> tuple[list[str], int]:
    """The page as the aggregate over every device gives it."""
    sql = device_page_sql(search, None, sort, descending, 0, 1000, SQLITE)
    with closing(sqlite3.connect(path)) as conn:
        ids = [row[0] for row in conn.execute(sql.page, sql.page_args)]
        return ids, conn.execute(sql.count, sql.count_args).fetchone()[0]


async def summarized(
    store: SQLiteStore, search: str, sort: str, descending: bool
) -> tuple[list[str], int]:
    page = await store.device_page(
        search=search, sort=sort, descending=bool(descending), limit=MAX_DEVICE_PAGE
    )
    return [d.device for d in page.devices], page.total


async def test_pages_agree_with_the_aggregate_whichever_store_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    rng = random.Random(7)
    try:
        for round_ in range(6):
            for _ in range(40):
                store = rng.choice((reader, writer))
                device = f"pixel-{rng.randrange(30):02d}"
                job = rng.choice((None, None, "signup"))
                if rng.random() < 0.1:
                    await store.delete_device(device)
                else:
                    keys = {f"k{rng.randrange(12)}": "v" * rng.randrange(80)}
                    await store.merge(device, keys, job=job)
            for sort, descending in SORTS:
                for search in ("", "PIXEL-1"):
                    expected = aggregate(path, search, sort, bool(descending))
                    got = await summarized(reader, search, sort, bool(descending))
                    # A device deleted by the other store leaves the page at once (the page
                    # lists live buckets); its count waits for a rebuild: compare ids only
                    # until then, and everything once this store has rebuilt.
                    assert got[0] == expected[0], (round_, sort, descending, search)
        reader._summary.invalidate()  # as after REBUILD_SECONDS
        for sort, descending in SORTS:
            assert await summarized(reader, "", sort, bool(descending)) == aggregate(
                path, "", sort, bool(descending)
            )
    finally:
        await reader.close()
        await writer.close()


async def test_ids_written_again_after_a_delete_elsewhere_are_seen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    reader, writer = SQLiteStore(path), SQLiteStore(path)
    try:
        await reader.merge("a", {"k": 1})
        await writer.merge("b", {"k": 1, "l": 2})  # the newest history row: b's
        assert (await summarized(reader, "", "keys", True)) == (["b", "a"], 2)
        await writer.delete_device("b")  # the largest id goes: the next write reuses it
        await writer.merge("c", {"k": 1, "l": 2, "m": 3})
        assert (await summarized(reader, "", "keys", True)) == (["c", "a"], 2)
        await writer.delete_device("c")
        await writer.merge("a", {"l": 2, "m": 3, "n": 4})  # fewer rows than seen, then more
        await writer.merge("d", {"k": 1})
        assert (await summarized(reader, "", "keys", True)) == (["a", "d"], 2)
    finally:
        await reader.close()
        await writer.close()


async def test_a_summary_rebuilt_every_time_counts_deletes_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    try:
        for device in ("a", "b", "c"):
            await store.merge(device, {device: 1})
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            fresh, lasting = DeviceSummary(rebuild_seconds=0), DeviceSummary()
            assert fresh.page(conn, "", "size", False, 0, 10) == (["a", "b", "c"], 3)
            assert lasting.page(conn, "", "size", False, 0, 10) == (["a", "b", "c"], 3)
            other = SQLiteStore(path)
            await other.delete_device("b")
            await other.close()
            assert fresh.page(conn, "", "size", False, 0, 10) == (["a", "c"], 2)
            lasting.invalidate()
            assert lasting.page(conn, "", "size", False, 0, 10) == (["a", "c"], 2)
    finally:
        await store.close()


async def test_a_sorted_page_is_an_index_scan(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        for n in range(50):
            await store.merge(f"pixel-{n}", {f"k{i}": 1 for i in range(n % 7)})
        for sort, descending in SORTS:
            await store.device_page(sort=sort, descending=bool(descending))
        table = store._summary._table
        assert table is not None
        for sort, descending in SORTS:
            direction = "DESC" if descending else "ASC"
            plan = " ".join(
                row[3]
                for row in table.execute(
                    f"EXPLAIN QUERY PLAN SELECT device FROM totals"
                    f" ORDER BY {sort} {direction}, device LIMIT 50"
                )
            )
            if sort != "device":  # by id: the table's own key
                assert f"INDEX by_{sort}_{direction.lower()}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort of every device
    finally:
        await store.close()


async def test_with_the_history_off_pages_come_from_the_aggregate(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=Limits(history_versions=0))
    try:
        for n in range(5):
            await store.merge(f"d{n}", {f"k{i}": 1 for i in range((n * 3) % 5)})
        for sort, descending in SORTS:
            expected = aggregate(path, "", sort, bool(descending))
            assert await summarized(store, "", sort, bool(descending)) == expected
        assert store._summary._table is None  # never built
    finally:
        await store.close()


async def test_a_page_leaves_the_event_loop_free_while_its_queries_run(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        await store.merge("a", {"k": 1})
        ran: list[str] = []

        async def other(sort: str) -> None:
            ran.append(sort)

        for sort in ("device", "keys"):
            task = asyncio.create_task(other(sort))
            page = await store.device_page(sort=sort)
            # The task ran while the page was found: the page awaited a worker thread. A
            # page found on the loop's own thread returns before the task has started.
            assert ran.count(sort) == 1
            assert [d.device for d in page.devices] == ["a"]
            await task
    finally:
        await store.close()


async def test_pages_found_at_once_on_several_threads_agree_with_the_aggregate(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path)
    try:
        for n in range(40):
            await store.merge(f"pixel-{n:02d}", {f"k{i}": i for i in range(n % 9 + 1)})

        async def writes() -> None:
            for n in range(120):
                await store.merge(f"pixel-{n % 40:02d}", {f"w{n % 5}": "x" * n})

        sorts = [sort for sort, _ in SORTS] * 4
        pages = asyncio.gather(*(store.device_page(sort=sort, limit=100) for sort in sorts))
        found, _ = await asyncio.gather(pages, writes())
        assert [page.total for page in found] == [40] * len(sorts)  # found while writes went on
        for sort, descending in SORTS:  # and after them, each write counted
            expected = aggregate(path, "", sort, bool(descending))
            assert await summarized(store, "", sort, bool(descending)) == expected
    finally:
        await store.close()
