"""The dashboard's device list, by id or by key count, size or last update, as an index scan.

The sorts by a total need each device's totals over all its buckets: an aggregate over every
device (about 100 ms at 100,000 devices). Keeping totals in the file would add a row and its
index entries to every write. Instead each process keeps them in memory, in a table of its
own (an in-memory SQLite database) with an index per sort, built once from the buckets.
Before each page it is brought up to date from the history rows written since it last
looked: a new row's id is above every id then in the table, so the rows past the newest it
saw name every device written since, by any process. A write pays nothing for it. Where that
row is gone or another (rows deleted, and their ids given again), it is rebuilt.

What the history cannot show (a device deleted by another process, its rows gone from the
middle, or buckets imported without history) is caught by a full rebuild once
``REBUILD_SECONDS`` have passed since the last: until then that device leaves the page (a
page lists live buckets) but not the count. This process's own deletes and imports rebuild
at its next page. With the history off the store does not use it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from ..core.model import DEVICE_SORTS
from .queries import SORT_EXPRESSIONS
from .sqlitefile import transaction

__all__ = ["REBUILD_SECONDS", "DeviceSummary"]

#: The longest the table goes without a rebuild from the buckets.
REBUILD_SECONDS: Final = 60.0

# A device's totals as the aggregate pages sort by them (``queries``), and its id lower-cased.
_TOTALS: Final = (
    f"SELECT device, {SORT_EXPRESSIONS['keys']}, {SORT_EXPRESSIONS['size']},"
    f" {SORT_EXPRESSIONS['updated_at']}, lower(device) FROM buckets"
)
_MARK: Final = "SELECT id, device, job, version, at FROM history"
_NEWEST: Final = f"{_MARK} ORDER BY id DESC LIMIT 1"
_ROW: Final = f"{_MARK} WHERE id = ?"
_CHANGED: Final = "SELECT DISTINCT device FROM history WHERE id > ?"
_CHUNK: Final = 500  # devices per IN (...) list


class DeviceSummary:
    """Each device's key count, size and last update, kept in memory for device pages."""

    def __init__(self, rebuild_seconds: float = REBUILD_SECONDS) -> None:
        self.rebuild_seconds = rebuild_seconds
        self._lock = threading.Lock()
        self._table: sqlite3.Connection | None = None
        self._mark: tuple[int, str, str, int, float] | None = None  # the newest row seen
        self._built_at = 0.0
        self._generation = 0  # one more at each ``invalidate``
        self._built_in = -1  # the generation the table was built in

    def close(self) -> None:
        with self._lock:
            if self._table is not None:
                self._table.close()
            self._table, self._mark = None, None

    def invalidate(self) -> None:
        """Rebuild at the next page: this process deleted or imported buckets, and has
        committed. (A build under way on another thread, from before, does not count.)"""
        self._generation += 1

    def page(
        self,
        conn: sqlite3.Connection,
        search: str,
        sort: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[list[str], int]:
        """The ids of one page sorted by ``sort`` (``device``, ``keys``, ``size`` or
        ``updated_at``; ties by id), and how many devices match ``search`` (a substring,
        case-insensitive)."""
        if sort not in DEVICE_SORTS:  # it names a column below
            raise ValueError(f"no such sort: {sort!r}")
        direction = "DESC" if descending else "ASC"
        where = " WHERE instr(folded, ?1) > 0" if search else ""
        needle = (search.lower(),) if search else ()
        with self._lock:
            table = self._refreshed(conn)
            if sort == "device":  # the table's own key
                scan, order = "totals", f"device {direction}"
            else:
                index = f"by_{sort}_{direction.lower()}"
                table.execute(
                    f"CREATE INDEX IF NOT EXISTS {index} ON totals ({sort} {direction}, device)"
                )
                scan, order = f"totals INDEXED BY {index}", f"{sort} {direction}, device"
            found = table.execute(
                f"SELECT device FROM {scan}{where} ORDER BY {order} LIMIT ?2 OFFSET ?3",
                (search.lower(), limit, offset),  # ?1 unused without a search
            )
            ids = [row[0] for row in found]
            total = table.execute(f"SELECT COUNT(*) FROM totals{where}", needle).fetchone()[0]
            return ids, int(total)

    def _refreshed(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """The table, up to date with what ``conn`` sees (read in one transaction)."""
        generation = self._generation  # before the read: a later invalidation comes next time
        with _reading(conn):
            newest = conn.execute(_NEWEST).fetchone()
            mark, table = self._mark, self._table
            if (
                table is None
                or self._built_in != generation
                or time.monotonic() - self._built_at >= self.rebuild_seconds
                # The row last seen is gone or another: rows were deleted, and their ids
                # may have been given again (SQLite gives the largest id plus one).
                or (mark is not None and conn.execute(_ROW, (mark[0],)).fetchone() != mark)
            ):
                if table is not None:
                    table.close()
                table = self._table = _build(conn.execute(f"{_TOTALS} GROUP BY device"))
                self._built_at, self._built_in = time.monotonic(), generation
            elif newest != mark:
                after = 0 if mark is None else mark[0]
                _update(table, conn, [row[0] for row in conn.execute(_CHANGED, (after,))])
            self._mark = newest
        return table


@contextmanager
def _reading(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: the last id and the totals from the same snapshot."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


def _build(rows: Iterable[tuple[str, int, int, float, str]]) -> sqlite3.Connection:
    table = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    table.execute(
        "CREATE TABLE totals (device TEXT PRIMARY KEY, keys INTEGER NOT NULL,"
        " size INTEGER NOT NULL, updated_at REAL NOT NULL, folded TEXT NOT NULL) WITHOUT ROWID"
    )
    with transaction(table):
        table.executemany("INSERT INTO totals VALUES (?, ?, ?, ?, ?)", rows)
    return table


def _update(table: sqlite3.Connection, conn: sqlite3.Connection, devices: list[str]) -> None:
    """Read these devices' totals again; a device with no bucket left leaves the table."""
    with transaction(table):
        for start in range(0, len(devices), _CHUNK):
            chunk = devices[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            table.executemany("DELETE FROM totals WHERE device = ?", ((d,) for d in chunk))
            rows = conn.execute(f"{_TOTALS} WHERE device IN ({marks}) GROUP BY device", chunk)
            table.executemany("INSERT INTO totals VALUES (?, ?, ?, ?, ?)", rows)
