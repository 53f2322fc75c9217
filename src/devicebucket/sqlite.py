"""The embedded store: one SQLite file in WAL mode.

How it is fast and safe at once:

* Reads run inline on the caller's thread, on that thread's own connection: a primary-key
  lookup costs a few microseconds, far less than a hop to a worker thread would.
* Writes are grouped per event loop (group commit). The first writer to arrive leads: it
  yields to the loop, so every writer that is ready joins its batch, and yields again while
  the batch keeps growing; then it runs the batch in one ``BEGIN IMMEDIATE`` transaction
  with one fsync (``synchronous=FULL``) and answers the others. A lone writer pays one loop
  iteration more than bare sqlite3.
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
import json
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .crypto import KeyRing
from .errors import DeviceBucketError, JobConflictError, StoreUnavailableError
from .queries import device_page_sql
from .rules import (
    Limits,
    Operation,
    check_size,
    decode,
    encode,
    plan_write,
    validate_against_schema,
)
from .store import (
    BucketRecord,
    Change,
    DeviceInfo,
    DevicePage,
    Job,
    Record,
    Snapshot,
    Store,
    TokenRecord,
    decode_change,
    encode_changes,
    schema_text,
)
from .tokens import Token, hash_token, new_token, token_id, token_matches

__all__ = ["SQLiteStore"]

_SCHEMA_VERSION = 4
_MIGRATIONS = (
    """
    CREATE TABLE buckets (
        device TEXT NOT NULL,
        job TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL,
        version INTEGER NOT NULL,
        keys INTEGER NOT NULL,
        size INTEGER NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (device, job)
    );
    CREATE TABLE jobs (
        job TEXT PRIMARY KEY,
        automation TEXT,
        schema TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        device TEXT,
        hash TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    # Which devices have a bucket of a job (the dashboard's job page), without a full scan.
    "CREATE INDEX buckets_by_job ON buckets (job, device)",
    # Every change: who, when, which keys; ``data`` only for the last N versions.
    """
    CREATE TABLE history (
        device TEXT NOT NULL,
        job TEXT NOT NULL,
        version INTEGER NOT NULL,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        changes TEXT NOT NULL,
        data TEXT,
        PRIMARY KEY (device, job, version)
    );
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
)

_SELECT_BUCKET = "SELECT data, version, updated_at FROM buckets WHERE device = ? AND job = ?"
_UPSERT_BUCKET = """
    INSERT INTO buckets (device, job, data, version, keys, size, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (device, job) DO UPDATE SET data = excluded.data, version = excluded.version,
        keys = excluded.keys, size = excluded.size, updated_at = excluded.updated_at
"""
_INSERT_HISTORY = "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?, ?)"
_FORGET_CONTENTS = """
    UPDATE history SET data = NULL
    WHERE device = ? AND job = ? AND version <= ? AND data IS NOT NULL"""
_SELECT_HISTORY = """
    SELECT version, at, actor, changes, data IS NOT NULL FROM history
    WHERE device = ? AND job = ?"""
_SELECT_DEVICES = """
    SELECT device, SUM(CASE WHEN job = '' THEN keys ELSE 0 END), SUM(size),
           MAX(updated_at), GROUP_CONCAT(NULLIF(job, ''), char(31))
    FROM buckets"""
_SELECT_JOB = "SELECT job, automation, schema, created_at, updated_at FROM jobs"


def _instr(column: str, needle: str) -> str:
    return f"instr({column}, {needle}) > 0"


def _device_info(row: tuple[Any, ...]) -> DeviceInfo:
    device, keys, size, updated, jobs = row
    return DeviceInfo(
        device, keys, size, updated, tuple(sorted(jobs.split("\x1f"))) if jobs else ()
    )


@dataclass(slots=True)
class _Pending:
    device: str
    job: str
    operation: Operation
    expected_version: int | None
    actor: str
    future: asyncio.Future[Snapshot] | None = None
    result: Snapshot | BaseException | None = None


_CACHE_BYTES = 16 * 1024 * 1024


@dataclass(slots=True)
class _Cached:
    """A bucket as this connection last wrote it. ``data`` is never handed out or mutated."""

    text: str
    version: int
    updated_at: float | None
    data: dict[str, Any]


class _ThreadState(threading.local):
    """Per thread: its connection, its event loop's pending write batch, its write cache."""

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.pid = 0
        self.pending: list[_Pending] = []
        self.leading = False
        self.cache: dict[tuple[str, str], _Cached] = {}
        self.cache_bytes = 0
        self.schemas: dict[str, str | None] = {}
        self.data_version: int | None = None

    def drop_cache(self) -> None:
        self.cache.clear()
        self.schemas.clear()
        self.cache_bytes = 0
        self.data_version = None

    def remember(self, key: tuple[str, str], entry: _Cached) -> None:
        old = self.cache.pop(key, None)
        if old is not None:
            self.cache_bytes -= len(old.text)
        self.cache[key] = entry
        self.cache_bytes += len(entry.text)
        while self.cache_bytes > _CACHE_BYTES and self.cache:
            evicted = self.cache.pop(next(iter(self.cache)))
            self.cache_bytes -= len(evicted.text)


def _job_from_row(row: tuple[Any, ...]) -> Job:
    job, automation, schema, created_at, updated_at = row
    return Job(
        job, automation, None if schema is None else decode_schema(schema), created_at, updated_at
    )


def decode_schema(text: str) -> dict[str, Any] | bool:
    value = json.loads(text)
    if not isinstance(value, (dict, bool)):
        raise StoreUnavailableError("a stored job schema is not a JSON object")
    return value


class SQLiteStore(Store):
    """A store in one SQLite file. Safe to share between coroutines, threads and processes."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: Limits | None = None,
        busy_timeout: float = 30.0,
        max_batch: int = 256,
        wal_autocheckpoint: int = 1000,
        keys: KeyRing | None = None,
    ) -> None:
        """``wal_autocheckpoint`` is in pages (SQLite's default, 1,000). A larger value makes
        checkpoints rarer, which helps a server under sustained writes, but a WAL that is
        still growing costs a metadata flush on every fsync (see docs/benchmarks.md)."""
        super().__init__(limits=limits, keys=keys)
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout = busy_timeout
        self.max_batch = max_batch
        self.wal_autocheckpoint = wal_autocheckpoint
        self._state = _ThreadState()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._migrated = False
        self._closed = False

    # --- connections ---------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> StoreUnavailableError:
        return StoreUnavailableError(f"SQLite store {self.path}: {exc}")

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailableError(f"SQLite store {self.path} is closed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._enable_wal(conn)
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {int(self.wal_autocheckpoint)}")
            if not self._migrated:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        with self._lock:
            self._connections.append(conn)
        return conn

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new file to WAL. When several processes open a new file at once, SQLite
        answers this one pragma "database is locked" at once, without its busy handler, or
        leaves the old mode: so retry it, with backoff, until the busy timeout."""
        deadline = time.monotonic() + self.busy_timeout
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
                raise StoreUnavailableError(f"SQLite store {self.path}: could not switch to WAL")
            time.sleep(delay)  # only while a brand-new file is being set up
            delay = min(delay * 2, 0.05)

    def _verify_key(self, conn: sqlite3.Connection) -> str | None:
        """Check the configured key against the file's; a key check to store, if any."""
        row = conn.execute("SELECT value FROM settings WHERE name = 'key_check'").fetchone()
        return self._check_key(None if row is None else row[0], f"SQLite store {self.path}")

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # Up to date with nothing to record: no write transaction, so a store that can only
        # be read (a read-only file) still opens for reading.
        current = conn.execute("PRAGMA user_version").fetchone()[0]
        if current == _SCHEMA_VERSION and self._verify_key(conn) is None:
            self._migrated = True
            return
        with _transaction(conn):
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > _SCHEMA_VERSION:
                raise StoreUnavailableError(
                    f"SQLite store {self.path} was written by a newer devicebucket"
                    f" (schema {current}, this one knows {_SCHEMA_VERSION})"
                )
            for number in range(current, _SCHEMA_VERSION):
                for statement in _MIGRATIONS[number].split(";"):
                    if statement.strip():
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            check = self._verify_key(conn)
            if check is not None:  # encryption turned on: new values are sealed from now on
                conn.execute("INSERT INTO settings VALUES ('key_check', ?)", (check,))
        self._migrated = True

    def _conn(self) -> sqlite3.Connection:
        state = self._state
        conn = state.conn
        if conn is None or state.pid != os.getpid():
            # A connection must never cross a fork: open a new one in the child.
            conn = state.conn = self._connect()
            state.pid = os.getpid()
            state.drop_cache()
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise self._fail(exc) from None

    async def close(self) -> None:
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        self._state.conn = None

    # --- reads ---------------------------------------------------------------------------

    async def _get(self, device: str, job: str | None) -> Snapshot:
        with self._errors():
            row = self._conn().execute(_SELECT_BUCKET, (device, job or "")).fetchone()
        if row is None:
            return Snapshot({}, 0, None, "{}")
        text = self._open(device, job, row[0])
        return Snapshot(decode(text), row[1], row[2], text)

    async def _get_json(self, device: str, job: str | None) -> tuple[str, int]:
        with self._errors():
            row = self._conn().execute(_SELECT_BUCKET, (device, job or "")).fetchone()
        return ("{}", 0) if row is None else (self._open(device, job, row[0]), row[1])

    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]:
        query = f"{_SELECT_DEVICES} WHERE device > ? GROUP BY device ORDER BY device LIMIT ?"
        with self._errors():
            rows = self._conn().execute(query, (after or "", limit)).fetchall()
        return [_device_info(row) for row in rows]

    async def _device(self, device: str) -> DeviceInfo | None:
        with self._errors():
            row = self._conn().execute(f"{_SELECT_DEVICES} WHERE device = ?", (device,)).fetchone()
        return None if row is None or row[0] is None else _device_info(row)

    async def _device_page(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage:
        sql = device_page_sql(search, job, sort, descending, offset, limit, lambda n: "?", _instr)
        with self._errors():
            conn = self._conn()
            ids = [row[0] for row in conn.execute(sql.page, sql.page_args)]
            total = conn.execute(sql.count, sql.count_args).fetchone()[0]
            marks = ",".join("?" * len(ids))
            query = f"{_SELECT_DEVICES} WHERE device IN ({marks}) GROUP BY device"
            found = {row[0]: _device_info(row) for row in conn.execute(query, ids)}
        return DevicePage([found[device] for device in ids if device in found], total)

    async def _history(self, device: str, job: str | None, limit: int) -> list[Change]:
        query = f"{_SELECT_HISTORY} ORDER BY version DESC LIMIT ?"
        with self._errors():
            rows = self._conn().execute(query, (device, job or "", limit)).fetchall()
        return [decode_change(*row) for row in rows]

    async def _history_text(
        self, device: str, job: str | None, version: int
    ) -> tuple[str, float] | None:
        query = (
            "SELECT data, at FROM history WHERE device = ? AND job = ? AND version = ?"
            " AND data IS NOT NULL"
        )
        with self._errors():
            row = self._conn().execute(query, (device, job or "", version)).fetchone()
        return None if row is None else (self._open(device, job, row[0]), row[1])

    async def _reseal(self, limit: int) -> int:
        assert self.keys is not None
        primary = f"{self.keys.prefix}%"
        count = 0
        self._state.drop_cache()  # this connection changes rows behind the cache
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                for table in ("buckets", "history"):
                    rows = conn.execute(
                        f"SELECT rowid, device, job, data FROM {table}"
                        " WHERE data IS NOT NULL AND data NOT LIKE ? LIMIT ?",
                        (primary, limit - count),
                    ).fetchall()
                    conn.executemany(
                        f"UPDATE {table} SET data = ? WHERE rowid = ?",
                        [
                            (self.keys.seal(d, j, self.keys.open(d, j, data)), rowid)
                            for rowid, d, j, data in rows
                        ],
                    )
                    count += len(rows)
        return count

    async def _set_key_check(self, check: str) -> None:
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                conn.execute("INSERT OR REPLACE INTO settings VALUES ('key_check', ?)", (check,))

    async def _token(self, ident: str) -> Token | None:
        query = "SELECT id, device, created_at FROM tokens WHERE id = ?"
        with self._errors():
            row = self._conn().execute(query, (ident,)).fetchone()
        return None if row is None else Token(*row)

    async def _get_job(self, job: str) -> Job | None:
        with self._errors():
            row = self._conn().execute(f"{_SELECT_JOB} WHERE job = ?", (job,)).fetchone()
        return None if row is None else _job_from_row(row)

    async def _jobs(self) -> list[Job]:
        with self._errors():
            rows = self._conn().execute(f"{_SELECT_JOB} ORDER BY job").fetchall()
        return [_job_from_row(row) for row in rows]

    async def _export(self) -> AsyncIterator[Record]:
        # A connection of its own, in one read transaction: a consistent snapshot, and the
        # thread's connection stays free for writes while the caller consumes the export.
        with self._errors():
            conn = self._connect()
        try:
            with self._errors():
                conn.execute("BEGIN")
                jobs = conn.execute(f"{_SELECT_JOB} ORDER BY job").fetchall()
                tokens = conn.execute(
                    "SELECT id, device, hash, created_at FROM tokens ORDER BY id"
                ).fetchall()
            for row in jobs:
                yield _job_from_row(row)
            for row in tokens:
                yield TokenRecord(*row)
            with self._errors():
                cursor = conn.execute(
                    "SELECT device, job, data, version, updated_at FROM buckets"
                    " ORDER BY device, job"
                )
            while True:
                with self._errors():
                    rows = cursor.fetchmany(500)
                if not rows:
                    break
                for device, job, data, version, updated_at in rows:
                    text = self._open(device, job, data)
                    yield BucketRecord(device, job or None, decode(text), version, updated_at)
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
    ) -> Snapshot:
        state = self._state
        mine = _Pending(device, job or "", operation, expected_version, actor)
        state.pending.append(mine)
        if state.leading:
            # Another writer on this loop leads the batch; it will answer us.
            mine.future = asyncio.get_running_loop().create_future()
            return await mine.future
        # Lead: yield so every writer that is ready joins this batch, and keep yielding while
        # the batch grows (adaptive group commit); a lone writer yields once. Then commit.
        state.leading = True
        try:
            joined = 1
            await asyncio.sleep(0)
            while joined < len(state.pending) < self.max_batch:
                joined = len(state.pending)
                await asyncio.sleep(0)
        finally:
            try:
                while state.pending:
                    self._commit(state.pending[: self.max_batch])
                    del state.pending[: self.max_batch]
            finally:
                state.leading = False
        if isinstance(mine.result, BaseException):
            raise mine.result
        assert mine.result is not None
        return mine.result

    def _commit(self, batch: list[_Pending]) -> None:
        """Apply a batch in one transaction (one fsync), then answer each writer."""
        results: list[Snapshot | BaseException]
        state = self._state
        try:
            conn = self._conn()
            with _transaction(conn):
                data_version = conn.execute("PRAGMA data_version").fetchone()[0]
                if data_version != state.data_version:
                    state.drop_cache()  # another connection committed: trust nothing
                    state.data_version = data_version
                now = time.time()
                results = []
                for pending in batch:
                    try:
                        results.append(self._apply(conn, state, pending, now))
                    except DeviceBucketError as exc:
                        results.append(exc)
        except (sqlite3.Error, OSError) as exc:
            state.drop_cache()
            results = [self._fail(exc) for _ in batch]
        except BaseException as exc:  # never leave a writer waiting forever
            state.drop_cache()
            results = [exc for _ in batch]
        for pending, result in zip(batch, results, strict=True):
            pending.result = result
            future = pending.future
            if future is None or future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

    def _apply(
        self, conn: sqlite3.Connection, state: _ThreadState, pending: _Pending, now: float
    ) -> Snapshot:
        key = (pending.device, pending.job)
        cached = state.cache.get(key)
        if cached is not None:
            text, version, updated_at = cached.text, cached.version, cached.updated_at
            data = dict(cached.data)  # shallow: operations replace top-level values only
        else:
            row = conn.execute(_SELECT_BUCKET, key).fetchone()
            text, version, updated_at = row if row is not None else ("{}", 0, None)
            text = self._open(pending.device, pending.job, text)
            data = decode(text)
        planned = plan_write(
            data, text, version, pending.operation, pending.expected_version, self.limits
        )
        if planned is None:
            if cached is None:  # nothing changed, so ``data`` still holds what ``text`` says
                state.remember(key, _Cached(text, version, updated_at, data))
            return Snapshot(None, version, updated_at, text)
        if pending.job:
            schema = self._schema(conn, state, pending.job)
            if schema is not None:
                validate_against_schema(planned.data, schema, pending.job)
        stored = self._seal(pending.device, pending.job, planned.text)
        conn.execute(
            _UPSERT_BUCKET, (*key, stored, planned.version, len(planned.data), planned.size, now)
        )
        keep = self.limits.history_versions
        if keep:  # 0: no history at all (the fastest writes)
            changes = encode_changes(planned.changes)
            history = (*key, planned.version, now, pending.actor, changes, stored)
            conn.execute(_INSERT_HISTORY, history)
            if planned.version % keep == 0:  # at least the last ``keep`` stay restorable
                conn.execute(_FORGET_CONTENTS, (*key, planned.version - keep))
        state.remember(key, _Cached(planned.text, planned.version, now, planned.data))
        return Snapshot(None, planned.version, now, planned.text)

    @staticmethod
    def _schema(conn: sqlite3.Connection, state: _ThreadState, job: str) -> str | None:
        if job not in state.schemas:
            row = conn.execute("SELECT schema FROM jobs WHERE job = ?", (job,)).fetchone()
            state.schemas[job] = None if row is None else row[0]
        return state.schemas[job]

    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job:
        self._state.drop_cache()  # this connection changes rows behind the cache
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                row = conn.execute(f"{_SELECT_JOB} WHERE job = ?", (job,)).fetchone()
                now = time.time()
                if row is None:
                    conn.execute(
                        "INSERT INTO jobs VALUES (?, ?, ?, ?, ?)",
                        (job, automation, schema, now, now),
                    )
                    return Job(
                        job, automation, None if schema is None else decode_schema(schema), now, now
                    )
                stored = row[2]
                if schema is None and not replace_schema:
                    schema = stored
                elif stored is not None and schema != stored and not replace_schema:
                    raise JobConflictError(
                        f"job {job!r} is registered with a different bucket schema;"
                        " replace it explicitly (--replace-schema / replace_schema=True)"
                    )
                automation = automation if automation is not None else row[1]
                conn.execute(
                    "UPDATE jobs SET automation = ?, schema = ?, updated_at = ? WHERE job = ?",
                    (automation, schema, now, job),
                )
                return Job(
                    job, automation, None if schema is None else decode_schema(schema), row[3], now
                )

    async def _delete_device(self, device: str) -> int:
        self._state.drop_cache()  # this connection changes rows behind the cache
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                conn.execute("DELETE FROM history WHERE device = ?", (device,))
                return conn.execute("DELETE FROM buckets WHERE device = ?", (device,)).rowcount

    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        ident, secret = new_token()
        now = time.time()
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                conn.execute(
                    "INSERT INTO tokens VALUES (?, ?, ?, ?)",
                    (ident, device, hash_token(secret), now),
                )
        return Token(ident, device, now), secret

    async def _tokens(self) -> list[Token]:
        with self._errors():
            rows = (
                self._conn()
                .execute("SELECT id, device, created_at FROM tokens ORDER BY created_at, id")
                .fetchall()
            )
        return [Token(*row) for row in rows]

    async def _delete_token(self, ident: str) -> bool:
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                return conn.execute("DELETE FROM tokens WHERE id = ?", (ident,)).rowcount > 0

    async def _authenticate(self, presented: str) -> Token | None:
        query = "SELECT id, device, created_at, hash FROM tokens WHERE id = ?"
        with self._errors():
            row = self._conn().execute(query, (token_id(presented),)).fetchone()
        if row is None or not token_matches(presented, row[3]):
            return None
        return Token(row[0], row[1], row[2])

    async def _import(
        self, jobs: list[Job], buckets: list[BucketRecord], tokens: list[TokenRecord]
    ) -> None:
        self._state.drop_cache()  # this connection changes rows behind the cache
        with self._errors():
            conn = self._conn()
            with _transaction(conn):
                conn.executemany(
                    "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?)",
                    [
                        (
                            j.job,
                            j.automation,
                            None if j.schema is None else schema_text(j.schema),
                            j.created_at,
                            j.updated_at,
                        )
                        for j in jobs
                    ],
                )
                rows = []
                for b in buckets:
                    text = encode(b.data)
                    size = check_size(text, self.limits)
                    stored = self._seal(b.device, b.job, text)
                    rows.append(
                        (b.device, b.job or "", stored, b.version, len(b.data), size, b.updated_at)
                    )
                conn.executemany(_UPSERT_BUCKET, rows)
                conn.executemany(  # an imported bucket starts a history of its own
                    "DELETE FROM history WHERE device = ? AND job = ?", [r[:2] for r in rows]
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)",
                    [(t.id, t.device, t.hash, t.created_at) for t in tokens],
                )


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; roll back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
