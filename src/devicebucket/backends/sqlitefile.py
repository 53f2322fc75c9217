"""A SQLite store's file: opened private to its owner, in WAL mode, every commit durable;
its tables migrated (``PRAGMA user_version`` counts the steps applied); write transactions."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Final

from ..core.errors import StoreUnavailableError

__all__ = ["connect", "migrate", "transaction"]

# CPython's sqlite3 binds a str, an int or a float at once, but looks for an adapter for
# anything else, None included: a registry lookup, then ``__adapt__`` and ``__conform__``,
# attributes that are not there (~0.3 µs a value). A write binds two or three Nones (a
# bucket's expiries, a history row's full copy or delta). An adapter for None (it stays
# None, bound as NULL) ends the lookup at the registry, unless the program has its own.
_NONE_ADAPTER: Final = (type(None), sqlite3.PrepareProtocol)
if _NONE_ADAPTER not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), lambda value: value)


def connect(path: Path, busy_timeout: float, wal_autocheckpoint: int) -> sqlite3.Connection:
    """A connection to ``path`` (created, mode 0600, if missing): WAL, ``synchronous=FULL``,
    the busy timeout and the WAL's autocheckpoint (in pages)."""
    # Only the owner may read a new store; SQLite gives its WAL and shared-memory files the
    # database file's permissions.
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    # Room for every statement the store uses besides the history's batch inserts, one for
    # each count of rows (``sqlitebatch``): the default cache holds 128.
    conn = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        timeout=busy_timeout,
        cached_statements=256,
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _enable_wal(conn, path, busy_timeout)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA wal_autocheckpoint = {int(wal_autocheckpoint)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, path: Path, busy_timeout: float) -> None:
    """Switch a new file to WAL. When several processes open a new file at once, SQLite
    answers this one pragma "database is locked" at once, without its busy handler, or
    leaves the old mode: so retry it, with backoff, until the busy timeout."""
    deadline = time.monotonic() + busy_timeout
    delay = 0.001
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise StoreUnavailableError(f"SQLite store {path}: could not switch to WAL")
        time.sleep(delay)  # only while a brand-new file is being set up
        delay = min(delay * 2, 0.05)


def migrate(
    conn: sqlite3.Connection,
    path: Path,
    steps: Sequence[Sequence[str]],
    new_key_check: Callable[[], str | None],
    set_key_check: str,
) -> None:
    """Apply the migration steps the file lacks, and record a new key check if
    ``new_key_check`` gives one (encryption turned on)."""
    # Up to date with nothing to record: no write transaction, so a store that can only be
    # read (a read-only file) still opens for reading.
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current == len(steps) and new_key_check() is None:
        return
    with transaction(conn):
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current > len(steps):
            raise StoreUnavailableError(
                f"SQLite store {path} was written by a newer devicebucket"
                f" (schema {current}, this one knows {len(steps)})"
            )
        for step in steps[current:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {len(steps)}")
        check = new_key_check()
        if check is not None:  # encryption turned on: new values are sealed from now on
            conn.execute(set_key_check, (check,))


class transaction:  # noqa: N801 (used as a function is: ``with transaction(conn):``)
    """``BEGIN IMMEDIATE`` … ``COMMIT``; roll back on any exception. A class: every write
    batch enters one, and a generator's context manager costs twice as much."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        conn = self.conn
        try:
            if kind is None:
                conn.execute("COMMIT")
                return
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        if conn.in_transaction:
            conn.rollback()
