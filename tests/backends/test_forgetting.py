"""How the SQLite store removes old contents from the history (``sqlitebatch``): read as
removed at once (the bucket row's ``kept_from``), removed from the rows a page at a time once
``forget_lag`` newer rows are written, or by the bucket's next full copy for a row that came
that far while still kept."""

from __future__ import annotations

import sqlite3
import tracemalloc
from contextlib import aclosing, closing
from pathlib import Path

import pytest

from devicebucket import Limits, NotFoundError, SQLiteStore
from devicebucket.core.model import HistoryRecord
from devicebucket.core.watching import BucketChange, Resync

KEEP = Limits(history_versions=2)


def with_contents(path: Path, device: str) -> list[int]:
    """The versions of ``device``'s history rows that still hold contents, on disk."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT version FROM history WHERE device = ?"
            " AND (data IS NOT NULL OR delta IS NOT NULL) ORDER BY version",
            (device,),
        )
        return [row[0] for row in rows]


async def write(store: SQLiteStore, device: str, versions: range) -> None:
    for n in versions:
        await store.merge(device, {"n": n, f"k{n}": n})


async def kept_while_behind(path: Path, device: str) -> SQLiteStore:
    """A store (20 rows of lag) where ``device`` has versions 1-3, still kept, and 40 rows
    of other buckets have pushed them behind (what a bucket quiet for long looks like)."""
    store = SQLiteStore(path, limits=KEEP, forget_lag=20)
    await write(store, device, range(1, 4))
    await others(store, 40)
    return store


async def others(store: SQLiteStore, rows: int, key: str = "n", devices: int = 0) -> None:
    """Write ``rows`` history rows to other buckets (among ``devices`` of them, if given)."""
    for n in range(rows):
        await store.merge(f"other-{n % devices if devices else n}", {key: n})


async def test_old_contents_are_read_as_removed_at_once_and_removed_later(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=KEEP, forget_lag=40)
    await write(store, "d", range(1, 11))  # version 10: contents kept from version 8
    assert with_contents(path, "d")[0] < 8  # older rows still hold theirs, on disk ...
    # ... read as removed everywhere: the history, a version, a watch, an export.
    changes = {c.version: c.kept for c in await store.history("d")}
    assert [v for v, kept in changes.items() if kept] == [10, 9, 8]
    assert (await store.at_version("d", 8)).data == {f"k{n}": n for n in range(1, 9)} | {"n": 8}
    with pytest.raises(NotFoundError):
        await store.at_version("d", 7)
    async with aclosing(store.watch("d", since=5)) as watch:
        first = await anext(watch)
    assert isinstance(first, Resync)
    assert first.version == 10
    async with aclosing(store.watch("d", since=7)) as watch:
        changes_after = [await anext(watch) for _ in range(3)]
    assert [isinstance(e, BucketChange) for e in changes_after] == [True, True, True]
    exported = [r async for r in store.export() if isinstance(r, HistoryRecord)]
    assert [r.change.version for r in exported if r.data is not None] == [8, 9, 10]
    # Once 40 rows have come 40 behind the newest, a batch removes them from those rows.
    await others(store, 80)
    assert with_contents(path, "d") == [8, 9, 10]
    assert (await store.at_version("d", 9)).data["n"] == 9
    await store.close()


async def test_another_store_on_the_file_reads_the_writers_rule(tmp_path: Path) -> None:
    # Which versions keep contents is the rule of the store that wrote them, as when it
    # removed them at once: one that keeps more does not bring them back.
    path = tmp_path / "s.db"
    writer = SQLiteStore(path, limits=KEEP)
    await write(writer, "d", range(1, 11))
    reader = SQLiteStore(path, limits=Limits(history_versions=1000))
    assert [c.version for c in await reader.history("d") if c.kept] == [10, 9, 8]
    with pytest.raises(NotFoundError):
        await reader.at_version("d", 7)
    await writer.close()
    await reader.close()


async def test_a_row_that_came_behind_while_kept_is_removed_by_its_buckets_full_copy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    store = await kept_while_behind(path, "quiet")
    assert with_contents(path, "quiet") == [1, 2, 3]
    await write(store, "quiet", range(4, 9))  # version 8: kept from 6
    # Versions 4 and 5 are young (the sweep's, later); 1-3 were removed by the full copies.
    assert with_contents(path, "quiet") == [4, 5, 6, 7, 8]
    await others(store, 40, key="m")
    assert with_contents(path, "quiet") == [6, 7, 8]
    await store.close()


async def test_a_full_copy_leaves_young_rows_to_the_sweep(tmp_path: Path) -> None:
    # The point of it all: a bucket's forgetting does not visit its older rows, one page
    # each, while they are younger than the lag (the bucket row knows where they begin).
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=KEEP, forget_lag=1000)
    await store.merge("warm", {"a": 1})
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    await write(store, "d", range(1, 13))  # full copies at 2, 4, ..., 12: forgetting from 4
    removing = [s for s in statements if s.startswith("UPDATE history SET data = NULL")]
    assert removing == []
    assert with_contents(path, "d") == list(range(1, 13))  # all young: the sweep's, later
    await store.close()


async def test_with_no_lag_old_contents_leave_the_rows_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=KEEP, forget_lag=0)
    await write(store, "d", range(1, 11))
    assert with_contents(path, "d") == [8, 9, 10]
    await store.close()


async def test_two_connections_clear_every_row_between_them(tmp_path: Path) -> None:
    # Each connection sweeps from where it last did up to where its own rows pushed the
    # rows: the windows of two stores on one file overlap, and leave no row out.
    path = tmp_path / "s.db"
    one = SQLiteStore(path, limits=KEEP, forget_lag=30)
    two = SQLiteStore(path, limits=KEEP, forget_lag=30)
    for n in range(60):
        await (one if n % 3 else two).merge("d", {"n": n, f"k{n}": n})
        await (two if n % 2 else one).merge(f"other-{n % 7}", {"n": n})
    assert [c.version for c in await two.history("d", limit=1000) if c.kept] == [60, 59, 58]
    assert (await one.at_version("d", 58)).data["n"] == 57
    await others(one, 30 + 2 * 30, key="m", devices=7)  # "d" comes 30 behind, then 30 more
    assert with_contents(path, "d") == [58, 59, 60]
    await one.close()
    await two.close()


async def test_ids_given_again_after_a_deletion_are_cleared_too(tmp_path: Path) -> None:
    # SQLite gives the ids of deleted rows at the end again, behind where a connection's
    # sweep had gone: the rows that get them lose their old contents all the same.
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=KEEP, forget_lag=10)
    for n in range(20):
        await store.merge("early", {"n": n})
    for n in range(60):
        await store.merge("gone", {"n": n})  # the newest 60 rows, swept up to ~70
    await store.delete_device("gone")
    await write(store, "d", range(1, 11))  # ids 21-30 again; kept from version 8
    for n in range(10 + 2 * 10):
        await store.merge("early", {"m": n})
    assert with_contents(path, "d") == [8, 9, 10]
    await store.close()


async def test_big_contents_wait_for_fewer_rows(tmp_path: Path) -> None:
    # A bucket of large values would otherwise keep ``forget_lag`` rows of them on disk:
    # the contents a connection writes push rows behind too.
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=KEEP, forget_lag=100_000, forget_lag_bytes=10_000)
    for n in range(1, 21):
        await store.merge("big", {"blob": f"{n:04d}" * 250})  # 1,000 characters a version
    # Only the newest rows holding up to 10,000 characters (nine of ~1,010) stay on disk.
    assert with_contents(path, "big") == list(range(12, 21))
    assert [c.version for c in await store.history("big") if c.kept] == [20, 19, 18]
    await store.close()


async def test_small_contents_are_counted_to_the_bytes_they_hold(tmp_path: Path) -> None:
    # Versions of ~10 characters, each its own batch, far under the bytes' share an entry
    # of the young batches holds (3,200 >> 6 = 50): five share one. The rows left on disk
    # still hold the newest 3,200 characters, no more.
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=KEEP, forget_lag=100_000, forget_lag_bytes=3_200)
    for n in range(1000, 1600):
        await store.merge("d", {"n": n})  # {"n":1000}: 10 characters a version
    assert with_contents(path, "d") == list(range(281, 601))
    await store.close()


async def test_a_lone_writer_does_not_grow_the_store_a_write_at_a_time(tmp_path: Path) -> None:
    # Its batches (a write each) are remembered until their rows come ``forget_lag`` rows
    # behind, 65,536 by default: one entry each was ~100 bytes a write, 6 MB at the lag.
    store = SQLiteStore(tmp_path / "s.db")
    for n in range(300):
        await store.merge("d", {"n": n})
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(2000):
            await store.merge("d", {"n": n})
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 40_000  # a tuple a write: ~190,000
    await store.close()


async def test_a_bucket_from_before_the_ids_is_cleared_by_its_next_forgetting(
    tmp_path: Path,
) -> None:
    # A bucket written before schema step 9 has no ``kept_id``: where its rows begin is not
    # known, so its next forgetting walks them, as every forgetting once did.
    path = tmp_path / "s.db"
    await (await kept_while_behind(path, "d")).close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE buckets SET kept_id = NULL, full_id = NULL, full_version = 0")
    store = SQLiteStore(path, limits=KEEP, forget_lag=20)
    await write(store, "d", range(4, 7))  # version 4 forgets 1, version 6 forgets 2 and 3
    assert with_contents(path, "d") == [4, 5, 6]
    await store.close()
