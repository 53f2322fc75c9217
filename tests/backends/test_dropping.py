"""How the SQLite store drops a bucket's entries past ``history_entries`` (``sqlitebatch``):
every ``DROP_EVERY`` versions, walking its rows down from the mark at or above the newest
entry it drops (the bucket row keeps the ids of its rows at every hundredth version), not
from its newest row. A drop comes at a marked version, so there is always one: at worst the
row just written, for a bucket written before the marks."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from devicebucket import Limits, SQLiteStore
from devicebucket.backends.sqlitebatch import MAX_MARKS, add_mark, drop_marks
from devicebucket.core.planner import DROP_EVERY

LIMITS = Limits(history_versions=2, history_entries=150)


def on_disk(path: Path, device: str) -> list[int]:
    """The versions of ``device``'s history rows in the file."""
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT version FROM history WHERE device = ? ORDER BY version", (device,)
        )
        return [row[0] for row in rows]


def marked(path: Path, device: str) -> list[int]:
    """The versions of ``device``'s marks, and check that each names its row of that version."""
    with closing(sqlite3.connect(path)) as conn:
        text = conn.execute("SELECT marks FROM buckets WHERE device = ?", (device,)).fetchone()[0]
        versions = []
        for pair in (text or "").split():
            version, row_id = map(int, pair.split(":"))
            row = conn.execute("SELECT device, version FROM history WHERE id = ?", (row_id,))
            assert row.fetchone() == (device, version)
            versions.append(version)
        return versions


async def write(store: SQLiteStore, devices: list[str], versions: range) -> list[str]:
    """Write each device's bucket at these versions, in turns (their rows interleave); the
    history statements the last round ran."""
    statements: list[str] = []
    for n in versions:
        if n == versions[-1]:
            store._conn().set_trace_callback(statements.append)
        for device in devices:
            assert (await store.merge(device, {"n": n})).version == n
    store._conn().set_trace_callback(None)
    return [s for s in statements if s.startswith("DELETE FROM history")]


async def test_entries_are_dropped_from_the_mark_above_them(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, limits=LIMITS)
    await write(store, ["a", "b"], range(1, 300))
    dropped = await write(store, ["a", "b"], range(300, 301))  # drops entries up to 150
    # Each bucket's drop began at its row of version 200, not at its newest row.
    assert len(dropped) == 2
    assert all("b.head" not in s and " AND h.version = 200" in s for s in dropped)
    for device in ("a", "b"):
        assert on_disk(path, device) == list(range(151, 301))
        assert marked(path, device) == [200, 300]  # those of dropped rows are gone
        history = await store.history(device, limit=1000)
        assert [c.version for c in history] == list(range(300, 150, -1))
    assert (await store.at_version("a", 299)).data == {"n": 299}
    await store.close()


async def written(path: Path, versions: range, limits: Limits = LIMITS) -> list[str]:
    """A store on ``path`` writes bucket ``a`` at these versions, then closes: ``write``."""
    store = SQLiteStore(path, limits=limits)
    try:
        return await write(store, ["a"], versions)
    finally:
        await store.close()


async def test_a_bucket_without_marks_drops_from_its_newest_row_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await written(path, range(1, 190))
    with closing(sqlite3.connect(path)) as conn, conn:  # as written before there were marks
        conn.execute("UPDATE buckets SET marks = NULL")
    dropped = await written(path, range(190, 201))  # drops entries up to 50
    assert len(dropped) == 1
    assert " AND h.version = 200" in dropped[0]  # from the row just written, its own mark
    assert on_disk(path, "a") == list(range(51, 201))
    dropped = await written(path, range(201, 301))  # up to 150, from the mark at 200
    assert len(dropped) == 1
    assert " AND h.version = 200" in dropped[0]
    assert on_disk(path, "a") == list(range(151, 301))
    assert marked(path, "a") == [200, 300]


async def test_entries_limits_that_change_between_stores(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    await written(path, range(1, 251))
    # Fewer entries: the drop at 300 (up to 180) begins at the mark of 200, above it.
    await written(path, range(251, 301), Limits(history_versions=2, history_entries=120))
    assert on_disk(path, "a") == list(range(181, 301))
    assert marked(path, "a") == [200, 300]
    # More entries: the drop at 400 (up to 150) finds nothing left to drop; none comes back.
    await written(path, range(301, 401), Limits(history_versions=2, history_entries=250))
    assert on_disk(path, "a") == list(range(181, 401))
    assert marked(path, "a") == [200, 300, 400]


def test_marks_are_bounded_and_keep_the_oldest() -> None:
    marks = None
    for n in range(1, MAX_MARKS + 2):
        marks = add_mark(marks, n * DROP_EVERY, n)
    assert marks is not None
    pairs = marks.split()
    assert len(pairs) <= MAX_MARKS
    assert pairs[0] == "100:1"  # the next drop's
    assert drop_marks(marks, 150) == ((3, 300), " ".join(pairs[1:]))
    assert drop_marks(marks, 100) == ((1, 100), " ".join(pairs[1:]))
    assert drop_marks(None, 100) == (None, None)
    assert drop_marks("100:1", 100) == ((1, 100), None)
