"""How the SQLite store applies a batch of writes (``groupcommit``) in one transaction: each
write reads its bucket (from the connection's cache where it is good), is planned
(``planner.plan_write``) and executed in order, so later writes see earlier ones, and a
rejected write changes nothing while the rest of its batch commits. The batch's history rows
are inserted together (``HistoryRows``).

Old contents leave the history a page at a time. A row's contents are read as removed as
soon as its version falls below its bucket's ``kept_from`` (``core.history``); they leave the
row later. Once ``forget_lag`` newer rows have been written after it (or, by the same
connection, rows holding ``forget_lag_bytes`` of contents: big buckets wait for fewer), a
batch clears it with every other row that has come that far (``SQL.sweep_contents``): rows
side by side, on a few pages. A row that came that far while its version was still kept is
cleared by its bucket's next forgetting (``SQL.forget_contents_upto``), on its own page, as
every row once was; the bucket row's ``kept_id`` tells when there is none such, and that
statement is skipped.

Entries past ``history_entries`` are dropped every ``DROP_EVERY`` versions of a bucket by a
walk down its chain that begins at a mark (``add_mark``, ``drop_marks``): its row at or
above the newest entry dropped, whose id the bucket row keeps, not its newest row."""

from __future__ import annotations

import sqlite3
import time
from abc import abstractmethod
from typing import Final

from ..core.crypto import KeyRing
from ..core.errors import StoreUnavailableError
from ..core.model import Snapshot
from ..core.planner import (
    DROP_EVERY,
    HistoryRow,
    StoredBucket,
    WritePlan,
    check_quota,
    plan_write,
)
from ..core.values import decode
from .groupcommit import Pending, ThreadState, answer
from .sqliteahead import AheadChecks
from .sqlitefile import transaction
from .statements import SQL
from .tables import HISTORY_ROW, SQLITE

__all__ = ["BatchCommit"]

_SQL: Final = SQL(SQLITE)
#: A connection removes old contents once at least this many rows have come ``forget_lag``
#: rows behind the newest (at every batch with a lag of 0), or as soon as the bytes of newer
#: contents have pushed any behind.
SWEEP_ROWS: Final = 256
#: A batch joins the connection's newest entry of young batches (``ThreadState.young``)
#: while that holds under ``lag_bytes >> YOUNG_SHARE`` characters of contents: the entries
#: stay about 64 however small the batches.
YOUNG_SHARE: Final = 6
#: The most history rows one statement inserts (a batch of 64 writes has 64 rows, or more
#: where expired keys' removals come first): 640 values, under the 999 an older SQLite
#: allows a statement.
ROWS_AT_ONCE: Final = 64
_COLUMNS: Final = len(HISTORY_ROW)  # the values of a history row
# The statement for each count of rows, made once (by its count: none for 0).
_INSERT_ROWS: Final = ("", *(_SQL.insert_history_rows(n) for n in range(1, ROWS_AT_ONCE + 1)))


class BatchCommit(AheadChecks):
    """The write half of ``SQLiteStore`` (a big job write is checked ahead: ``AheadChecks``)."""

    keys: KeyRing | None
    forget_lag: int  # rows
    forget_lag_bytes: int  # characters of contents

    @abstractmethod
    def _fail(self, exc: BaseException) -> StoreUnavailableError: ...

    @abstractmethod
    def _seal(self, device: str, job: str | None, text: str, version: int) -> str: ...

    @abstractmethod
    def _history_texts(self, plan: WritePlan, stored: str) -> tuple[str | None, str | None]: ...

    def _commit(self, batch: list[Pending]) -> None:
        """Apply a batch in one transaction (one fsync), then answer each writer."""
        results: list[Snapshot | BaseException]
        state = self._state
        try:
            conn = self._conn()
            with transaction(conn):
                data_version = conn.execute("PRAGMA data_version").fetchone()[0]
                if data_version != state.data_version:
                    state.drop_cache()  # another connection committed: trust nothing
                    state.data_version = data_version
                now = time.time()
                results = []
                history = HistoryRows(state, self.forget_lag, self.forget_lag_bytes)
                for pending in batch:
                    try:
                        results.append(self._apply(conn, state, pending, now, history))
                    except (sqlite3.Error, OSError):
                        raise  # the transaction itself failed: every write in it failed
                    except Exception as exc:
                        # A write fails before it executes anything (the planner decides
                        # first), so the rest of the batch commits without it.
                        results.append(exc)
                history.insert(conn)
                swept = history.sweep(conn)
            state.swept = swept
        except (sqlite3.Error, OSError) as exc:
            state.drop_cache()
            results = [self._fail(exc) for _ in batch]
        except BaseException as exc:  # never leave a writer waiting forever
            state.drop_cache()
            results = [exc for _ in batch]
        answer(batch, results)

    def _apply(
        self,
        conn: sqlite3.Connection,
        state: ThreadState,
        pending: Pending,
        now: float,
        history: HistoryRows,
    ) -> Snapshot:
        """Read the bucket (from the cache where it is good), plan the write, execute it."""
        key = (pending.device, pending.job)
        cached = state.cache.get(key)
        if cached is not None and cached.data is not None:
            # A shallow copy: operations replace top-level values only.
            data = dict(cached.data)
            stored = StoredBucket(
                cached.text,
                cached.version,
                cached.updated_at,
                data,
                cached.expires,
                cached.head,
                cached.kept_from,
                cached.kept_id,
                cached.full_id,
                cached.full_version,
                cached.marks,
                cached.flat,
            )
        else:
            stored = self._read_bucket(conn, pending.device, pending.job)
            # The planner consumes it: kept for the cache if nothing changes.
            data = stored.data = decode(stored.text)
        plan = plan_write(
            stored,
            pending.operation,
            pending.expected_version,
            device=pending.device,
            job=pending.job,
            schema=self._schema(conn, state, pending.job) if pending.job else None,
            limits=self.limits,
            actor=pending.actor,
            now=now,
            expire_in=pending.expire_in,
            checked=pending.checked,
        )
        if plan is None:
            if cached is None:  # unchanged: ``data`` is still what the text says
                stored.data = data
                state.remember(key, stored)
            return Snapshot(None, stored.version, stored.updated_at, stored.text)
        state.remember(key, self._execute(conn, plan, stored, history))
        return plan.snapshot()

    def _execute(
        self, conn: sqlite3.Connection, plan: WritePlan, before: StoredBucket, history: HistoryRows
    ) -> StoredBucket:
        """Execute a plan on the bucket ``before`` (its history ids as read); the bucket as it
        leaves it. A write refused by the quota executes nothing, not even the removal of
        expired keys that comes first (the next write makes it)."""
        row = plan.row
        if plan.check_quota:
            check_quota(plan, self._others(conn, row.device, row.job), self.limits)
        if plan.swept is not None:  # expired keys' removal: a version of its own, first
            before = self._execute(conn, plan.swept, before, history)
        after = StoredBucket(
            row.text,
            row.version,
            row.updated_at,
            plan.data,
            plan.expires,
            before.head,
            row.kept_from,
            before.kept_id,
            before.full_id,
            before.full_version,
            before.marks,
            plan.flat,
        )
        stored = self._seal(row.device, row.job, row.text, row.version)
        h = plan.history
        moved = False  # whether the ids change (most writes leave them)
        if h is not None:
            data, delta = self._history_texts(plan, stored)
            after.head = history.add(conn, row.device, row.job, h, data, delta, before.head)
            if before.version == 0:  # a new bucket: its contents begin at this row
                after.kept_id, moved = after.head, True
            if h.full and h.version % self.limits.history_versions == 0:
                after.full_id, after.full_version, moved = after.head, h.version, True
            if h.version % DROP_EVERY == 0:
                after.marks, moved = add_mark(after.marks, h.version, after.head), True
        through = plan.forget_through
        swept = 0
        if through is not None:
            # The row of the new ``kept_from`` is the full copy before this one, if that
            # was made at it; else where the rows begin is not known.
            at_floor = before.full_version == row.kept_from
            after.kept_id, moved = (before.full_id if at_floor else None), True
            # Its old contents are cleared here only from rows that came ``forget_lag``
            # behind the newest while still kept (the sweep left them): none if its oldest
            # such row, the one of the old ``kept_from``, is younger.
            swept = history.swept()
            if before.kept_id is not None and before.kept_id > swept:
                through = None
        drop = plan.drop_through
        anchor = None  # the mark where the walk that drops old entries begins: at worst
        if drop is not None:  # this row's own (drops come at versions that are marked)
            anchor, after.marks = drop_marks(after.marks, drop)
            moved = True
        if moved:
            ids = (
                after.head,
                row.kept_from,
                after.kept_id,
                after.full_id,
                after.full_version,
                after.marks,
            )
            conn.execute(_SQL.upsert_bucket_ids, (*row.values(stored), *ids))
        else:
            conn.execute(_SQL.upsert_bucket_head, (*row.values(stored), after.head))
        others = self._state.others
        known = others.get(row.device)
        if known is not None and known[0] != row.job:  # this bucket is among its others
            del others[row.device]
        if through is not None or drop is not None:
            history.insert(conn)  # the chains they walk hold every row first
            if through is not None:
                conn.execute(_SQL.forget_contents_upto, (row.device, row.job, through, swept))
            if anchor is not None:
                conn.execute(_SQL.drop_history_from, (row.device, row.job, drop, *anchor))
        return after

    def _others(self, conn: sqlite3.Connection, device: str, job: str) -> int:
        """The bytes of ``device``'s buckets besides its bucket ``job``: read once, then known
        as long as the connection's cache is (``ThreadState.others``)."""
        state = self._state
        known = state.others.get(device)
        if known is not None and known[0] == job:
            return known[1]
        total: int = conn.execute(_SQL.device_bytes_besides, (device, job)).fetchone()[0]
        state.remember_others(device, job, total)
        return total

    @staticmethod
    def _schema(conn: sqlite3.Connection, state: ThreadState, job: str) -> str | None:
        if job not in state.schemas:
            row = conn.execute(_SQL.job_schema, (job,)).fetchone()
            state.schemas[job] = None if row is None else row[0]
        return state.schemas[job]


class HistoryRows:
    """A batch's history rows, inserted together (one ``INSERT`` of up to ``ROWS_AT_ONCE``
    rows: a statement a row would cost each row its own step) before anything reads the
    history and before the commit. Each gets its id here, as SQLite would give it (the
    table's largest, plus one), so its bucket row can point at it at once. The connection
    remembers the last id it gave (``ThreadState.history_id``) for as long as it remembers
    its buckets: until another connection commits or a transaction fails.

    It also removes old contents from the rows that its rows push ``lag`` rows, or
    ``lag_bytes`` of contents, behind the newest (see the module's docstring)."""

    __slots__ = ("bytes", "count", "first", "lag", "lag_bytes", "state", "values")

    def __init__(self, state: ThreadState, lag: int, lag_bytes: int) -> None:
        self.state = state
        self.lag = lag
        self.lag_bytes = lag_bytes
        self.values: list[object] = []  # the rows' values, one row after another
        self.count = 0  # rows in ``values``
        self.first: int | None = None  # the id of the batch's first row
        self.bytes = 0  # the characters of contents its rows hold

    def add(
        self,
        conn: sqlite3.Connection,
        device: str,
        job: str,
        h: HistoryRow,
        data: str | None,
        delta: str | None,
        prev: int | None,
    ) -> int:
        """Queue the row of ``h`` (its texts as stored, the row before it); its id."""
        state = self.state
        last = state.history_id
        if last is None:
            last = conn.execute(_SQL.last_history_id).fetchone()[0]
        state.history_id = new = last + 1
        if self.first is None:
            self.first = new
        self.bytes += len(data or delta or "")
        self.values += (new, device, job, h.version, h.at, h.actor, h.changes, data, delta, prev)
        self.count += 1
        return new

    def swept(self) -> int:
        """The id up to which rows' old contents have been (or are now being) removed by a
        sweep, or had come ``lag`` rows behind the newest before this connection's window:
        a bucket's full copy removes old contents from those rows itself. Only once the
        batch has a row."""
        assert self.first is not None
        swept = self.state.swept
        if swept is None:  # how far rows had come before this connection's first batch
            return max(self.first - 1 - self.lag, 0)
        # Ids of dropped rows are given again: a window never starts past the rows' end.
        return min(swept, self.first - 1)

    def sweep(self, conn: sqlite3.Connection) -> int | None:
        """Clear the contents below their buckets' ``kept_from`` in the rows this connection
        has pushed ``lag`` rows behind the newest, or behind ``lag_bytes`` of contents it
        wrote since, once there are enough of them; how far that leaves it."""
        state = self.state
        if self.first is None:
            return state.swept
        swept = self.swept()
        last = state.history_id
        assert last is not None
        through = last - self.lag
        young = state.young
        if self.bytes:
            state.young_bytes += self.bytes
            newest = young[-1] if young else None
            if newest is not None and newest[1] < self.lag_bytes >> YOUNG_SHARE:
                # Batches too small to count alone share an entry: a lone writer's would
                # otherwise add one a write, up to ``lag`` of them (some 6 MB at the default).
                # The contents behind are then known to within an entry's bytes.
                young[-1] = (last, newest[1] + self.bytes)
            else:
                young.append((last, self.bytes))
        pushed = False  # whether contents' bytes pushed rows behind
        while young and (young[0][0] <= through or state.young_bytes > self.lag_bytes):
            batch_last, size = young.popleft()
            state.young_bytes -= size
            if batch_last > through:
                through, pushed = batch_last, True
        if through <= swept or (not pushed and through - swept < min(SWEEP_ROWS, self.lag)):
            return swept
        conn.execute(_SQL.sweep_contents, (swept, through))
        return through

    def insert(self, conn: sqlite3.Connection) -> None:
        values, count = self.values, self.count
        if count <= ROWS_AT_ONCE:  # a batch of up to 64 writes: one statement, as it is
            if count:
                conn.execute(_INSERT_ROWS[count], values)
        else:
            for start in range(0, count, ROWS_AT_ONCE):
                rows = min(ROWS_AT_ONCE, count - start)
                chunk = values[start * _COLUMNS : (start + rows) * _COLUMNS]
                conn.execute(_INSERT_ROWS[rows], chunk)
        values.clear()
        self.count = 0


#: The most marks a bucket keeps: past it, every other one goes (the walks grow longer).
MAX_MARKS: Final = 16


def add_mark(marks: str | None, version: int, row_id: int) -> str:
    """``marks`` (``version:id``, oldest first) with the row ``row_id`` of ``version``."""
    pairs = (marks.split() if marks else []) + [f"{version}:{row_id}"]
    if len(pairs) > MAX_MARKS:
        pairs = pairs[::2]  # the oldest stays: it is the next drop's
    return " ".join(pairs)


def drop_marks(marks: str | None, through: int) -> tuple[tuple[int, int] | None, str | None]:
    """Where to begin the walk that drops the entries up to version ``through``: the
    (id, version) of the oldest mark at or above it, None if there is none; and the marks
    left (those above it)."""
    anchor = None
    left = []
    for pair in marks.split() if marks else ():
        version, row_id = map(int, pair.split(":"))
        if version >= through and anchor is None:
            anchor = (row_id, version)
        if version > through:
            left.append(pair)
    return anchor, " ".join(left) or None
