"""The embedded store: one SQLite file in WAL mode.

How it is fast and safe at once:

* Reads run inline on the caller's thread, on that thread's own connection: a primary-key
  lookup costs a few microseconds, far less than a hop to a worker thread would. A bucket
  read again with nothing committed since, by anyone, is answered from memory
  (``sqlitereads``: the WAL-index header tells, without a lock).
* Writes are grouped per event loop (group commit, ``groupcommit``). The first writer leads: it
  yields to the loop, so every writer that is ready joins its batch, and yields again while
  the batch keeps growing; then it runs the batch in one ``BEGIN IMMEDIATE`` transaction
  with one fsync (``synchronous=FULL``) and answers the others. A lone writer, with nothing
  else ready to run, commits at once (yet lets the loop poll for I/O at least every
  millisecond).
  Each write in the batch reads, merges, checks and writes in order, so later writes see
  earlier ones, and a rejected write changes nothing while the rest of its batch commits.
* Processes and threads coordinate through SQLite's own write lock (``busy_timeout``).
* Each connection keeps the buckets it last wrote (text, version, decoded dict), so a
  write skips its read. The cache is trusted only inside a write transaction and only while
  ``PRAGMA data_version`` says no other connection has committed since; otherwise, and
  after any failure or write outside the batch path, it is dropped.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, Final

from ..core.crypto import KeyRing
from ..core.errors import StoreUnavailableError
from ..core.expiry import decode_expiries, visible
from ..core.limits import Limits
from ..core.model import (
    DeviceInfo,
    DevicePage,
    Job,
    Record,
    Snapshot,
    TokenRecord,
)
from ..core.operations import Operation
from ..core.planner import plan_job
from ..core.tokens import Token, hash_token, new_token, token_id, token_matches
from ..core.values import decode
from .groupcommit import Pending, ThreadState, ThreadStates, group_commit
from .queries import device_page_sql
from .sql import SQLStore
from .sqlitebatch import BatchCommit
from .sqlitefile import connect, migrate, transaction
from .sqlitereads import ReadCache
from .sqlitesummary import DeviceSummary
from .statements import SQL, Row, device_info, job_row
from .tables import SQLITE

__all__ = ["WAL_AUTOCHECKPOINT", "SQLiteStore"]

#: The WAL's pages after which a commit checkpoints them into the file (16 MB of 4 KB
#: pages; SQLite's own default is 1,000). A checkpoint copies each page the WAL holds and
#: syncs the file, inside the commit that triggers it: four times rarer, one writer and
#: batches with the history on both ran a few hundredths nearer their references
#: (docs/benchmarks-log.md, ninth sitting). The WAL file grows to this size once after the
#: store is opened, then is written again from its start after each checkpoint.
WAL_AUTOCHECKPOINT: Final = 4000

_SQL = SQL(SQLITE)

#: This process's id, set again in a forked child (so that a read need not ask the kernel).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere a process never forks
    os.register_at_fork(after_in_child=_forked)


class SQLiteStore(SQLStore, BatchCommit):
    """A store in one SQLite file. Safe to share between coroutines, threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        busy_timeout: float = 30.0,
        max_batch: int = 256,
        wal_autocheckpoint: int = WAL_AUTOCHECKPOINT,
        keys: KeyRing | None = None,
        create_dirs: bool = False,
        forget_lag: int = 65_536,
        forget_lag_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        """The file is created by the first write (a read of a missing file reads an empty
        store and creates nothing); its directory must exist unless ``create_dirs``.
        ``wal_autocheckpoint`` is in pages (``WAL_AUTOCHECKPOINT``). A larger value makes
        checkpoints rarer, which helps sustained writes, but a WAL that is still growing
        costs a metadata flush on every fsync (see docs/benchmarks-log.md).
        ``forget_lag``: the history's old contents, read as removed at once, stay on disk
        until this many newer history rows are written (``sqlitebatch``), or rows holding
        ``forget_lag_bytes`` characters of contents by one connection, then leave a page at
        a time; at 0, they leave at once, each row from its own page."""
        super().__init__(limits=limits, keys=keys)
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout = busy_timeout
        self.max_batch = max_batch
        self.wal_autocheckpoint = wal_autocheckpoint
        self.create_dirs = create_dirs
        self.forget_lag = forget_lag
        self.forget_lag_bytes = forget_lag_bytes
        self._threads = ThreadStates()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._migrated = False
        self._closed = False
        self._summary = DeviceSummary()
        self._reads = ReadCache(self.path)

    # --- connections ---------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"SQLite store {self.path}: {exc}")

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailableError(f"SQLite store {self.path} is closed")
        if self.create_dirs:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._check_directory()
        conn = connect(self.path, self.busy_timeout, self.wal_autocheckpoint)
        try:
            if not self._migrated:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._connections.append(conn)
        return conn

    def _verify_key(self, conn: sqlite3.Connection) -> str | None:
        """Check the configured key against the file's; a key check to store, if any."""
        row = conn.execute(_SQL.key_check).fetchone()
        return self._check_key(None if row is None else row[0], f"SQLite store {self.path}")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrate(conn, self.path, _SQL.steps, lambda: self._verify_key(conn), _SQL.set_key_check)
        self._migrated = True

    @property
    def _state(self) -> ThreadState:
        """This thread's."""
        return self._threads.state

    def _conn(self) -> sqlite3.Connection:
        state = self._state
        conn = state.conn
        if conn is None or state.pid != _pid:
            # A connection must never cross a fork: open a new one in the child.
            conn = state.conn = self._connect()
            state.pid = _pid
            state.drop_cache()
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise self._fail(exc) from None

    @contextmanager
    def _changing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction outside the batch path (it changes rows behind the cache)."""
        self._state.drop_cache()
        with self._errors():
            conn = self._conn()
            with transaction(conn):
                yield conn

    async def _size_and_version(self) -> tuple[int, int] | None:
        if self._absent():
            return None
        version = self._read("PRAGMA user_version")[0][0]
        files = (self.path, self.path.with_name(self.path.name + "-wal"))
        return sum(f.stat().st_size for f in files if f.exists()), int(version)

    def _check_directory(self) -> None:
        if not self.create_dirs and not self.path.parent.is_dir():
            raise StoreUnavailableError(
                f"SQLite store {self.path}: the directory {self.path.parent} does not exist"
            )

    def _absent(self) -> bool:
        """Whether the file was never created: a read then reads an empty store (in a
        directory that must exist all the same)."""
        if self._migrated or self.path.exists():
            return False
        self._check_directory()
        return True

    def _read(self, query: str, *args: Any) -> list[Any]:
        if self._absent():
            return []
        with self._errors():
            return self._conn().execute(query, args).fetchall()

    @property
    def _sql(self) -> SQL:
        return _SQL

    async def _run_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        with self._errors():
            conn = self._conn()
            with transaction(conn):
                for statement, args in statements:
                    conn.execute(statement, args)

    async def _rows(self, query: str, *args: Any) -> Sequence[Row]:
        return self._read(query, *args)

    async def close(self) -> None:
        if self._minutes and not self._closed:
            with suppress(StoreUnavailableError):
                await self.flush_activity()
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, []
        self._reads.close()
        for conn in connections:
            conn.close()
        self._state.conn = None
        self._summary.close()

    # --- reads ---------------------------------------------------------------------------

    async def _get(self, device: str, job: str | None) -> Snapshot:
        # The hottest read of all: written out (no context manager, no stat once migrated).
        if not self._migrated and self._absent():
            return Snapshot({}, 0, None, "{}")
        try:
            row = self._reads.fetch(self._conn(), _SQL.select_bucket, (device, job or ""))
        except (sqlite3.Error, OSError) as exc:
            raise self._fail(exc) from None
        if row is None:
            return Snapshot({}, 0, None, "{}")
        text = self._open(device, job, row[0], row[1])
        if row[3] is not None and row[3] <= (now := time.time()):  # a key's expiry has come
            text = visible(text, decode_expiries(row[4]), now)
        return Snapshot(decode(text), row[1], row[2], text)

    async def _get_json(self, device: str, job: str | None) -> tuple[str, int]:
        if not self._migrated and self._absent():  # written out as _get is
            return "{}", 0
        try:
            row = self._reads.fetch(self._conn(), _SQL.select_bucket, (device, job or ""))
        except (sqlite3.Error, OSError) as exc:
            raise self._fail(exc) from None
        if row is None:
            return "{}", 0
        text = self._open(device, job, row[0], row[1])
        if row[3] is not None and row[3] <= (now := time.time()):  # a key's expiry has come
            text = visible(text, decode_expiries(row[4]), now)
        return text, row[1]

    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]:
        return [device_info(row) for row in self._read(_SQL.devices_after, after or "", limit)]

    async def _device(self, device: str) -> DeviceInfo | None:
        rows = self._read(_SQL.device, device)
        return device_info(rows[0]) if rows else None

    async def _device_page(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage:
        if self._absent():
            return DevicePage([], 0)
        # Counts and aggregates over every device (tens of milliseconds at 100,000 devices;
        # a rebuild of the totals, hundreds): on a worker thread, with its own connection, so
        # the event loop serves other requests meanwhile.
        page = partial(self._device_page_now, search, job, sort, descending, offset, limit)
        return await asyncio.to_thread(page)

    def _device_page_now(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage:
        with self._errors():
            conn = self._conn()
            if job is None and self.limits.history_versions:
                # An index scan of this process's totals of every device (sqlitesummary).
                ids, total = self._summary.page(conn, search, sort, descending, offset, limit)
            else:
                sql = device_page_sql(search, job, sort, descending, offset, limit, SQLITE)
                ids = [row[0] for row in conn.execute(sql.page, sql.page_args)]
                total = conn.execute(sql.count, sql.count_args).fetchone()[0]
            query = _SQL.devices_in.format(marks=",".join("?" * len(ids)))
            found = {row[0]: device_info(row) for row in conn.execute(query, ids)}
        return DevicePage([found[device] for device in ids if device in found], total)

    # --- what watchers need to hear of other connections' writes (``sql.SQLStore._poll``) --

    async def _changed_elsewhere(self) -> bool:
        if self._absent():
            return False
        with self._errors():
            version = self._conn().execute("PRAGMA data_version").fetchone()[0]
        state = self._state
        changed = bool(version != state.watched_version)
        state.watched_version = version
        return changed

    async def _token(self, ident: str) -> Token | None:
        rows = self._read(_SQL.select_token, ident)
        return Token(*rows[0]) if rows else None

    async def _get_job(self, job: str) -> Job | None:
        rows = self._read(_SQL.select_job, job)
        return job_row(rows[0]).to_job() if rows else None

    async def _jobs(self) -> list[Job]:
        return [job_row(row).to_job() for row in self._read(_SQL.select_jobs)]

    async def _job_summaries(self) -> list[tuple[Job, int]]:
        return [(job_row(row).to_job(), row[5]) for row in self._read(_SQL.job_summaries)]

    async def _tokens(self) -> list[Token]:
        return [Token(*row) for row in self._read(_SQL.select_tokens)]

    async def _authenticate(self, presented: str) -> Token | None:
        rows = self._read(_SQL.token_hash, token_id(presented))
        if not rows or not token_matches(presented, rows[0][3]):
            return None
        return Token(*rows[0][:3])

    async def _export(self, history: bool) -> AsyncIterator[Record]:
        # A connection of its own, in one read transaction: a consistent snapshot, and the
        # thread's connection stays free for writes while the caller consumes the export.
        if self._absent():
            return
        with self._errors():
            conn = self._connect()
        try:
            with self._errors():
                conn.execute("BEGIN")
                jobs = conn.execute(_SQL.select_jobs).fetchall()
                tokens = conn.execute(_SQL.export_tokens).fetchall()
            for row in jobs:
                yield job_row(row).to_job()
            for row in tokens:
                yield TokenRecord(*row)
            for row in self._cursor(conn, _SQL.export_buckets):
                yield self._bucket_record(row)
            if history:
                record = self._history_records()
                for row in self._cursor(conn, _SQL.export_history):
                    yield record(row)
        finally:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            conn.close()

    # --- writes --------------------------------------------------------------------------

    async def _write(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot:
        key = job or ""
        if job is not None and self._checks_ahead(device, key, operation):
            return await self._write_checked(
                device, key, operation, expected_version, actor, expire_in
            )
        mine = Pending(device, key, operation, expected_version, actor, expire_in)
        return await group_commit(self._state, mine, self.max_batch, self._commit)

    async def _batch(self, mine: Pending) -> Snapshot:
        return await group_commit(self._state, mine, self.max_batch, self._commit)

    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job:
        with self._changing() as conn:
            row = conn.execute(_SQL.lock_job, (job,)).fetchone()
            existing = None if row is None else job_row(row)
            planned = plan_job(existing, job, automation, schema, replace_schema, time.time())
            if existing is None:
                conn.execute(_SQL.insert_job, planned.values())
            else:
                conn.execute(_SQL.update_job, (job, *planned.values()[1:3], planned.updated_at))
        return planned.to_job()

    async def _delete_device(self, device: str) -> int:
        with self._changing() as conn:
            conn.execute(_SQL.delete_device_history, (device,))
            deleted: int = conn.execute(_SQL.delete_device, (device,)).rowcount
        self._summary.invalidate()  # its history went too: the summary cannot see it go
        return deleted

    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        ident, secret = new_token()
        now = time.time()
        with self._changing() as conn:
            conn.execute(_SQL.insert_token, (ident, device, hash_token(secret), now))
        return Token(ident, device, now), secret

    async def _delete_token(self, ident: str) -> bool:
        with self._changing() as conn:
            return conn.execute(_SQL.delete_token, (ident,)).rowcount > 0

    async def _write_import(
        self,
        jobs: list[tuple[Any, ...]],
        buckets: list[tuple[Any, ...]],
        tokens: list[tuple[Any, ...]],
        history: list[tuple[Any, ...]],
    ) -> None:
        with self._changing() as conn:
            conn.executemany(_SQL.upsert_job, jobs)
            conn.executemany(_SQL.forget_history, [r[:2] for r in buckets])
            conn.executemany(_SQL.upsert_bucket, buckets)
            conn.executemany(_SQL.upsert_token, tokens)
            heads: dict[tuple[str, str], int | None] = {}
            for row in history:
                bucket = (row[0], row[1])
                if bucket not in heads:
                    found = conn.execute(_SQL.select_head, bucket).fetchone()
                    heads[bucket] = None if found is None else found[0]
                heads[bucket] = conn.execute(_SQL.insert_history, (*row, heads[bucket])).lastrowid
            conn.executemany(_SQL.set_head, [(*b, h) for b, h in heads.items()])
        self._summary.invalidate()  # buckets written without history rows

    def _cursor(self, conn: sqlite3.Connection, query: str) -> Iterator[Any]:
        """The rows of ``query``, 500 at a time."""
        with self._errors():
            cursor = conn.execute(query)
        while True:
            with self._errors():
                rows = cursor.fetchmany(500)
            if not rows:
                return
            yield from rows

    async def _reseal(self, limit: int) -> int:
        assert self.keys is not None
        count = 0
        with self._changing() as conn:
            for column, unsealed in _SQL.unsealed.items():
                rows = conn.execute(unsealed, (f"{self.keys.prefix}%", limit - count)).fetchall()
                conn.executemany(_SQL.reseal[column], self._resealed(rows))
                count += len(rows)
        return count

    async def _set_key_check(self, check: str) -> None:
        with self._changing() as conn:
            conn.execute(_SQL.set_key_check, (check,))
