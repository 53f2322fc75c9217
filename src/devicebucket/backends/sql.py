"""What the SQL stores share: the hooks of encryption at rest, an import and a job
registration through the planner, and how a store anyone watches hears of writes made
elsewhere. The tables are in :mod:`.tables`, the statements in :mod:`.statements`; a
backend adds how it connects, locks and executes.
"""

from __future__ import annotations

import asyncio
import time
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from ..core.crypto import EncryptionError, KeyRing, key_check, open_plain, verify_key
from ..core.errors import DeviceBucketError
from ..core.expiry import decode_expiries, expired
from ..core.history import Past, Rebuild, contents, kept_flags
from ..core.importing import Checked, plan_history, plan_import
from ..core.limits import Limits
from ..core.model import BucketRecord, Change, HistoryRecord, decode_change
from ..core.planner import JobRow, WritePlan
from ..core.sessions import Session
from ..core.store import Store
from ..core.values import decode, encode
from ..core.watching import HistoryEntry, Hub, Listen
from .statements import SQL, Row

__all__ = ["POLL_SECONDS", "SQLStore"]

#: How often a store that anyone watches looks for writes made by other processes and servers.
POLL_SECONDS: Final = 0.02


class SQLStore(Store):
    """A store that keeps the bucket texts itself: it may seal them (encryption at rest)."""

    def __init__(self, *, limits: Limits | None = None, keys: KeyRing | None = None) -> None:
        super().__init__(limits=limits)
        self.keys = keys

    # --- encryption at rest (every stored bucket text passes these) ----------------------

    def _seal(self, device: str, job: str | None, text: str, version: int) -> str:
        """``text`` as stored: sealed for its device, job and version if the store encrypts."""
        return text if self.keys is None else self.keys.seal(device, job or "", text, version)

    def _history_texts(self, plan: WritePlan, stored: str) -> tuple[str | None, str | None]:
        """What the history row of a plan (which has one) stores: the full copy, which is the
        bucket's text as stored (``stored``), where the row keeps one, and the delta, sealed
        as ``_seal`` seals (written out here, not called: every write with a history passes
        here, and a store that does not encrypt then makes no call)."""
        h = plan.history
        assert h is not None
        delta = h.delta
        if delta is not None and self.keys is not None:
            delta = self.keys.seal(plan.row.device, plan.row.job, delta, h.version)
        return (stored if h.full else None), delta

    def _open(self, device: str, job: str | None, stored: str, version: int) -> str:
        if self.keys is None:
            return open_plain(device, job or "", stored)
        return self.keys.open(device, job or "", stored, version)

    def _check_key(self, stored_check: str | None, where: str) -> str | None:
        """Compare the configured key with the store's; a new key check to store, if any."""
        return verify_key(self.keys, stored_check, where)

    async def rotate_key(
        self, progress: Callable[[int], None] | None = None, *, batch: int = 500
    ) -> int:
        """Re-seal every stored value with the first key of ``self.keys`` (the new key; the
        old one follows it in the ring), then record the new key check. Safe to run while
        others read and write, and to run again after an interruption. Returns the count."""
        if self.keys is None:
            raise EncryptionError("give the new key (and the old one) to rotate to")
        done = 0
        while count := await self._reseal(batch):
            done += count
            if progress is not None:
                progress(count)
            await asyncio.sleep(0)  # one batch at a time: others on this loop go on
        await self._set_key_check(key_check(self.keys))
        return done

    def _resealed(self, rows: Iterable[Row]) -> list[tuple[Any, str]]:
        """``(row id, device, job, stored, version)`` rows as ``(row id, re-sealed)`` pairs."""
        keys = self.keys
        assert keys is not None
        return [
            (r[0], keys.seal(r[1], r[2], keys.open(r[1], r[2], r[3], r[4]), r[4])) for r in rows
        ]

    @abstractmethod
    async def _reseal(self, limit: int) -> int:
        """Re-seal up to ``limit`` stored values not sealed with the primary key (see
        ``SQL.unsealed``), locking their rows; return how many (0: none left)."""

    @abstractmethod
    async def _set_key_check(self, check: str) -> None: ...

    # --- what `devicebucket info` shows -----------------------------------------------------

    async def info(self) -> dict[str, Any]:
        """Where the store is, whether it exists yet, how big it is, what it holds, its
        schema version and whether it is encrypted (never a key or a password)."""
        found = await self._size_and_version()
        info: dict[str, Any] = {"url": self.url, "exists": found is not None}
        if found is None:
            return info
        devices = await self._rows("SELECT COUNT(DISTINCT device) FROM buckets")
        jobs = await self._rows("SELECT COUNT(*) FROM jobs")
        check = await self._rows(self._sql.key_check)
        return info | {
            "size_bytes": found[0],
            "devices": int(devices[0][0]),
            "jobs": int(jobs[0][0]),
            "schema_version": found[1],
            "encrypted": bool(check),
            "key_from": None if self.keys is None else self.keys.source,
        }

    async def exists(self) -> bool:
        """Whether the store was created (by a write or ``migrate-db``); reads create nothing."""
        return await self._size_and_version() is not None

    @abstractmethod
    async def _size_and_version(self) -> tuple[int, int] | None:
        """The store's size in bytes and schema version; None if it was never created."""

    # --- dashboard sessions (``core.sessions.SessionStore``) -------------------------------

    async def put_session(self, key: str, session: Session) -> None:
        s = session
        await self._run(
            self._sql.insert_session, key, s.token, s.binding, s.csrf, s.created_at, s.seen_at
        )

    async def get_session(self, key: str) -> Session | None:
        rows = await self._rows(self._sql.select_session, key)
        return Session(*(rows[0][i] for i in range(5))) if rows else None

    async def touch_session(self, key: str, at: float) -> None:
        await self._run(self._sql.touch_session, key, at)

    async def end_session(self, key: str) -> None:
        await self._run(self._sql.delete_session, key)

    async def end_stale_sessions(self, seen_before: float, created_before: float) -> None:
        await self._run(self._sql.delete_stale_sessions, seen_before, created_before)

    @property
    @abstractmethod
    def _sql(self) -> SQL:
        """The statements in this store's dialect."""

    async def _run(self, statement: str, *args: Any) -> None:
        """Execute one statement that changes rows no cache holds, in its own transaction."""
        await self._run_all([(statement, args)])

    @abstractmethod
    async def _run_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Execute statements that change rows no cache holds, in one transaction."""

    @abstractmethod
    async def _rows(self, query: str, *args: Any) -> Sequence[Row]:
        """The rows of one query."""

    # --- import, the same rows everywhere ------------------------------------------------

    async def _import(self, checked: Checked) -> None:
        rows = plan_import(checked.buckets, self.limits)
        history = [
            (d, j, h.version, h.at, h.actor, h.changes, self._seal_kept(d, j, t, h.version), None)
            for h, d, j, t in plan_history(checked.history)
        ]
        history.sort(key=lambda r: (r[0], r[1], r[2]))  # each bucket's rows chained in order
        await self._write_import(
            [JobRow.of(j).values() for j in checked.jobs],
            [(*r.values(self._seal(r.device, r.job, r.text, r.version)), None) for r in rows],
            [(t.id, t.device, t.hash, t.created_at) for t in checked.tokens],
            history,
        )

    # --- live changes (``core.live``) -------------------------------------------------------

    async def _changes_after(
        self, device: str, job: str | None, after: int, limit: int
    ) -> list[HistoryEntry]:
        rows = await self._rows(self._sql.changes_after, device, job or "", after, limit)
        lowest = (rows[0][5] or 0) if rows else 0  # the bucket's ``kept_from``
        entries: list[HistoryEntry] = []
        for r in rows:
            kept = r[4] is not None and r[0] >= lowest
            text = self._open(device, job, r[4], r[0]) if kept else None
            entries.append((decode_change(r[0], r[1], r[2], r[3], kept), text))
        return entries

    async def _expiries(self, device: str, job: str | None) -> dict[str, float]:
        rows = await self._rows(self._sql.select_expiries, device, job or "")
        return (decode_expiries(rows[0][0]) or {}) if rows else {}

    _counts_writes = True

    async def _activity(self, first: int) -> dict[int, int]:
        return {int(r[0]): int(r[1]) for r in await self._rows(self._sql.select_activity, first)}

    async def _add_activity(self, counts: dict[int, int]) -> None:
        week_ago = int(time.time() // 60) - 7 * 1440
        await self._run_all(
            [(self._sql.add_activity, (m, n)) for m, n in sorted(counts.items())]
            + [(self._sql.prune_activity, (week_ago,))]
        )

    async def _latest_changes(self, limit: int) -> list[tuple[str, str | None, Change]]:
        rows = await self._rows(self._sql.latest_written, limit)
        return [(r[0], r[1] or None, decode_change(r[2], r[3], r[4], r[5], False)) for r in rows]

    async def _due(self, now: float, limit: int) -> list[tuple[str, str | None]]:
        return [(r[0], r[1] or None) for r in await self._rows(self._sql.due, now, limit)]

    def _listener(self) -> Listen:
        return self._poll

    async def _poll(self, hub: Hub) -> None:
        """Hear of writes made by other processes and servers, for as long as anyone here
        watches: every ``POLL_SECONDS``, if the store may have changed, read the versions of
        the watched buckets (and, for watchers of many, which buckets were written since)."""
        cursor: tuple[float, float] | None = None
        swept = 0.0
        while True:
            try:
                # Watchers get expiries with no server sweeping (a server's sweep is enough).
                if not self._sweepers and time.monotonic() - swept >= 1.0:
                    swept = time.monotonic()
                    await self.sweep_expired()
                if not hub.taps:
                    cursor = None
                elif cursor is None:
                    cursor = await self._writes_cursor()
                if await self._changed_elsewhere():
                    for (device, job), version in await self._versions(list(hub.feeds)):
                        hub.notify(device, job, version)
                if cursor is not None:  # looks at most once a second, changed or not
                    written, cursor = await self._writes_since(cursor)
                    for device, job, version in written:
                        hub.notify(device, job, version)
            except DeviceBucketError:
                pass  # the store is away: look again later (watchers check for themselves too)
            await asyncio.sleep(POLL_SECONDS)

    async def _changed_elsewhere(self) -> bool:
        """Whether another connection may have written since the last call (True if unsure)."""
        return True

    async def _versions(
        self, buckets: list[tuple[str, str | None]]
    ) -> list[tuple[tuple[str, str | None], int]]:
        """The current version of each bucket (0: none)."""
        found = []
        for device, job in buckets:
            rows = await self._rows(self._sql.bucket_version, device, job or "")
            found.append(((device, job), int(rows[0][0]) if rows else 0))
        return found

    async def _writes_cursor(self) -> tuple[float, float]:
        """Where :meth:`_writes_since` starts: now."""
        return time.time(), 0.0

    async def _writes_since(
        self, cursor: tuple[float, float]
    ) -> tuple[list[tuple[str, str | None, int]], tuple[float, float]]:
        """The buckets written since ``cursor`` (device, job, version), and the next cursor:
        from the buckets' times, at most once a second (a scan of the table, made only while
        someone watches many buckets), the last second again each time (the watcher reads
        each version once). A write stamped more than a second before an earlier one (a
        server whose clock lags) is missed."""
        since, scanned = cursor
        if time.monotonic() - scanned < 1.0:
            return [], cursor
        rows = await self._rows(self._sql.written_since, since)
        latest = max((r[3] for r in rows), default=since)
        # Looked at again next time: the last second, for writes committed out of order.
        return [(r[0], r[1] or None, r[2]) for r in rows], (
            max(since, latest - 1.0),
            time.monotonic(),
        )

    def _seal_kept(self, device: str, job: str, text: str | None, version: int) -> str | None:
        """A history entry's contents as stored, if it keeps them."""
        return None if text is None else self._seal(device, job, text, version)

    def _bucket_record(self, row: Row) -> BucketRecord:
        """A row of ``SQL.export_buckets`` as a record: its text opened, without the keys
        whose expiry has come (an export is a read)."""
        device, job, data, version, updated_at, expires = (row[i] for i in range(6))
        bucket = decode(self._open(device, job, data, version))
        expiring = decode_expiries(expires)
        if expiring:
            now = time.time()
            for key in expired(expiring, now):
                bucket.pop(key, None)
                del expiring[key]
        return BucketRecord(device, job or None, bucket, version, updated_at, expiring or None)

    def _past(self, device: str, job: str | None, row: Row) -> Past:
        """``(version, changes, full, delta)`` as read, its texts opened."""
        version, changes, full, delta = (row[i] for i in range(4))
        return Past(
            version,
            changes,
            None if full is None else self._open(device, job, full, version),
            None if delta is None else self._open(device, job, delta, version),
        )

    def _history_records(self) -> Callable[[Row], HistoryRecord]:
        """What turns the rows of ``SQL.export_history``, in their order, into records with
        the contents each version keeps (rebuilt: ``core.history``)."""
        bucket: tuple[str, str] | None = None
        rebuild = Rebuild()

        def record(row: Row) -> HistoryRecord:
            nonlocal bucket, rebuild
            device, job, version, at, actor, changes = (row[i] for i in range(6))
            if bucket != (device, job):
                bucket, rebuild = (device, job), Rebuild(row[8] or 0)
            data = rebuild.next(self._past(device, job, (version, changes, row[6], row[7])))
            change = decode_change(version, at, actor, changes, data is not None)
            return HistoryRecord(device, job or None, change, None if data is None else dict(data))

        return record

    # --- the history, rebuilt where it keeps deltas (``core.history``) ----------------------

    async def _history(self, device: str, job: str | None, limit: int) -> list[Change]:
        rows = await self._rows(self._sql.select_history, device, job or "", limit)
        lowest = (rows[0][6] or 0) if rows else 0
        kept = kept_flags(((r[0], bool(r[4]), bool(r[5])) for r in rows), lowest)
        newest = rows[::-1][:limit]
        return [decode_change(r[0], r[1], r[2], r[3], kept[r[0]]) for r in newest]

    async def _history_text(
        self, device: str, job: str | None, version: int
    ) -> tuple[str, float] | None:
        rows = await self._rows(self._sql.select_past, device, job or "", version)
        if not rows or rows[-1][0] != version:
            return None
        lowest = rows[-1][5] or 0
        *_, (_, data) = contents((self._past(device, job, r) for r in rows), lowest)
        return None if data is None else (encode(data), rows[-1][4])

    @abstractmethod
    async def _write_import(
        self,
        jobs: list[tuple[Any, ...]],
        buckets: list[tuple[Any, ...]],
        tokens: list[tuple[Any, ...]],
        history: list[tuple[Any, ...]],
    ) -> None:
        """In one transaction: ``SQL.upsert_job`` each job, ``SQL.forget_history`` of each
        bucket then ``SQL.upsert_bucket`` it, ``SQL.upsert_token`` each token, then
        ``SQL.insert_history`` each history row (in bucket and version order), each bucket's
        rows chained onto its head, and ``SQL.set_head`` to its last."""
