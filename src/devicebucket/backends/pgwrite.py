"""How the PostgreSQL store writes a bucket: optimistic first (read, plan with
``planner.plan_write``, and write in one statement that applies only if the bucket still has
the version read, forgetting old contents in it when the write does), under the bucket's row
lock when the write drops old entries, has keys that expired to remove first or a quota to
come near, or when its bucket stays contended."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from functools import partial

from ..core.ahead import worth_checking_ahead
from ..core.expiry import decode_expiries
from ..core.limits import Limits
from ..core.model import Snapshot
from ..core.operations import Operation
from ..core.planner import EMPTY, StoredBucket, WritePlan, check_quota, plan_write
from . import pgsql
from .pgsql import PG as _SQL
from .pgsql import Connection
from .turns import in_turn

__all__ = ["OptimisticWrites"]


class OptimisticWrites:
    """The write half of ``PostgresStore``."""

    # What the store gives: declared only (no value), so the store's own are found.
    limits: Limits
    _connection: Callable[..., AbstractAsyncContextManager[Connection]]
    _open: Callable[[str, str | None, str, int], str]
    _seal: Callable[[str, str | None, str, int], str]
    _history_texts: Callable[[WritePlan, str], tuple[str | None, str | None]]

    async def _write(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot:
        """Optimistic first: read, plan, and write in one statement that applies only if the
        bucket still has the version read (two round trips, no transaction), and forgets old
        contents with it where the plan does (every ``history_versions`` versions). A lost
        race plans again. Dropping old entries, expired keys, a near quota or a contended
        bucket take the row lock instead (:meth:`_write_locked`)."""
        key = job or ""
        for _ in range(pgsql.OPTIMISTIC_ATTEMPTS):
            async with self._connection() as conn:
                read = await conn.fetchrow(pgsql.READ_FOR_WRITE, device, key)
                assert read is not None  # one row, whether the bucket exists or not
                *row, schema = read
                stored = self._stored(device, key, *row)
                where = (device, key, schema)
                plan = await self._plan(
                    stored, operation, expected_version, where, actor, expire_in
                )
                if plan is None:
                    return Snapshot(None, stored.version, stored.updated_at, stored.text)
                if plan.drop_through is not None or plan.swept:
                    break  # entries to drop, or expired keys to remove first: under the lock
                if plan.check_quota:  # far from the quota a write cannot pass it
                    others = await conn.fetchval(_SQL.device_bytes_besides, device, key)
                    if self._near_quota(plan, others):
                        break
                values = plan.row.values(self._seal(device, key, plan.row.text, plan.row.version))
                history = pgsql.history_values(plan, values[2], stored.head, self._history_texts)
                if stored.version == 0:
                    statement = pgsql.INSERT_WITH_HISTORY if history else pgsql.INSERT_BUCKET
                    written = await conn.fetchval(statement, *values, *history)
                elif not history:
                    written = await conn.fetchval(pgsql.UPDATE_IF, *values, stored.version)
                elif plan.forget_through is None:
                    statement = pgsql.UPDATE_IF_WITH_HISTORY
                    written = await conn.fetchval(statement, *values, *history, stored.version)
                else:
                    statement, through = pgsql.UPDATE_IF_FORGETTING, plan.forget_through
                    written = await conn.fetchval(
                        statement, *values, *history, stored.version, through
                    )
                if written is not None:
                    return plan.snapshot()
        return await self._write_locked(device, key, operation, expected_version, actor, expire_in)

    def _stored(
        self,
        device: str,
        key: str,
        data: str | None,
        version: int | None,
        updated_at: float | None,
        next_expiry: float | None,
        expires: str | None,
        head: int | None,
        kept_from: int | None = 0,
        *_: object,  # the SQLite store's ids of history rows: NULL here
    ) -> StoredBucket:
        """A bucket's row as read (no version: there is none), its text opened. (The store
        removes old contents in the statement that forgets them; ``kept_from`` records it.)"""
        if version is None or data is None:
            return EMPTY
        text = self._open(device, key, data, version)
        expiries = decode_expiries(expires)
        return StoredBucket(text, version, updated_at, None, expiries, head, kept_from or 0)

    async def _plan(
        self,
        stored: StoredBucket,
        operation: Operation,
        expected_version: int | None,
        where: tuple[str, str, str | None],
        actor: str,
        expire_in: Mapping[str, float] | None,
    ) -> WritePlan | None:
        """``where``: the device, the job ('' for none) and the job's schema. A big job write
        is planned on the thread for that (``backends.turns``): checking its schema here
        would hold the event loop, every request of this process, for as long."""
        device, job, schema = where
        plan = partial(
            plan_write,
            stored,
            operation,
            expected_version,
            device=device,
            job=job,
            schema=schema,
            limits=self.limits,
            actor=actor,
            now=time.time(),
            expire_in=expire_in,
        )
        if schema is not None and worth_checking_ahead(len(stored.text), operation):
            return await in_turn(device, plan)
        return plan()

    def _near_quota(self, plan: WritePlan, others: int) -> bool:
        """Whether a growing write comes within 16 buckets' worth of the device's quota,
        where growing writes of the device take turns (:meth:`_check_quota`)."""
        near = self.limits.device_quota_bytes - 16 * self.limits.max_bucket_bytes
        return plan.check_quota and others + plan.row.size > near

    async def _write_locked(
        self,
        device: str,
        key: str,
        operation: Operation,
        expected_version: int | None,
        actor: str,
        expire_in: Mapping[str, float] | None,
    ) -> Snapshot:
        """The write under its bucket's row lock, with its housekeeping, in one transaction."""
        async with self._connection() as conn, conn.transaction():
            schema = await conn.fetchval(_SQL.job_schema, key) if key else None
            while True:
                row = await conn.fetchrow(f"{_SQL.select_for_write} FOR UPDATE", device, key)
                stored = EMPTY if row is None else self._stored(device, key, *row)
                where = (device, key, schema)
                plan = await self._plan(
                    stored, operation, expected_version, where, actor, expire_in
                )
                if plan is None:
                    return Snapshot(None, stored.version, stored.updated_at, stored.text)
                head = stored.head
                if plan.swept is not None:  # its row exists: it holds the keys that expired
                    _, head = await self._execute(conn, plan.swept, head, exists=True)
                done, _ = await self._execute(conn, plan, head, exists=row is not None)
                if not done:
                    continue  # another writer created it first: lock its row, plan again
                return plan.snapshot()

    async def _execute(
        self, conn: Connection, plan: WritePlan, head: int | None, *, exists: bool
    ) -> tuple[bool, int | None]:
        """Execute a plan under its row lock on a bucket whose newest history row is
        ``head``: whether it was (not if the bucket was to be created and another writer
        created it first), and the bucket's new head."""
        device, key = plan.row.device, plan.row.job
        values = plan.row.values(self._seal(device, key, plan.row.text, plan.row.version))
        history = pgsql.history_values(plan, values[2], head, self._history_texts)
        if exists:  # the row is locked: the update applies (and, with a history, gives its id)
            statement = pgsql.UPDATE_WITH_HISTORY if history else _SQL.update_bucket
        else:  # nothing when another writer created the bucket first
            statement = pgsql.INSERT_WITH_HISTORY if history else pgsql.INSERT_BUCKET
        written = await conn.fetchval(statement, *values, *history)
        if written is None and not exists:
            return False, head
        if history:
            head = written
        if plan.forget_through is not None:
            await conn.execute(_SQL.forget_contents, device, key, plan.forget_through)
        if plan.drop_through is not None:
            await conn.execute(_SQL.drop_history, device, key, plan.drop_through)
        if plan.check_quota:
            await self._check_quota(conn, plan)
        return True, head

    async def _check_quota(self, conn: Connection, plan: WritePlan) -> None:
        """Refuse a write that takes its device past the quota (the transaction then rolls
        back). Called last, once the write holds its row, so no write waits for a row while
        holding the lock below. Far from the quota, other buckets' sizes are read as they
        are; near it (within 16 buckets' worth), growing writes of the device take turns on
        an advisory lock, so each sees the others' sizes."""
        device, job = plan.row.device, plan.row.job
        others = await conn.fetchval(_SQL.device_bytes_besides, device, job)
        if self._near_quota(plan, others):
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", device)
            others = await conn.fetchval(_SQL.device_bytes_besides, device, job)
        check_quota(plan, others, self.limits)
