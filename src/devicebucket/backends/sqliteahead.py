"""How the SQLite store writes a big job write (``core.ahead``): checked against its job's
schema ahead of its batch, on the thread for that (``turns``), with that thread's own
connection, against the schema and the bucket as they are then. What the loop's connection
knows of the job and the bucket decides whether a write is big (else one read). This
process's big writes of one bucket go one at a time, so each is checked against what the one
before it wrote; a bucket that moved past a check all the same (a writer in another process,
an expiry) is checked again, and after ``AHEAD_TRIES`` tries under the lock."""

from __future__ import annotations

import sqlite3
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Final

from ..core.ahead import AHEAD_TRIES, check_ahead, unchecked, worth_checking_ahead
from ..core.expiry import decode_expiries
from ..core.limits import Limits
from ..core.model import Snapshot
from ..core.operations import Operation
from ..core.planner import BucketMoved, Checked, StoredBucket
from .groupcommit import BucketTurn, Pending, ThreadState
from .statements import NO_BUCKET, SQL
from .tables import SQLITE
from .turns import in_turn

__all__ = ["AheadChecks"]

_SQL: Final = SQL(SQLITE)


class AheadChecks:
    """The big job writes of ``SQLiteStore``; its write half (``sqlitebatch``) builds on it."""

    limits: Limits

    @property
    @abstractmethod
    def _state(self) -> ThreadState: ...

    @abstractmethod
    def _conn(self) -> sqlite3.Connection: ...

    @abstractmethod
    def _open(self, device: str, job: str | None, stored: str, version: int) -> str: ...

    @abstractmethod
    async def _batch(self, mine: Pending) -> Snapshot:
        """``mine`` written in a batch (``groupcommit``)."""

    def _checks_ahead(self, device: str, job: str, operation: Operation) -> bool:
        """Whether a write to a job bucket is big and its job has a schema, as far as this
        connection knows the job and the bucket (else it reads them)."""
        state = self._state
        if job in state.schemas and state.schemas[job] is None:
            return False
        cached = state.cache.get((device, job))
        if cached is not None and job in state.schemas:
            return worth_checking_ahead(len(cached.text), operation)
        try:
            schema, size = self._conn().execute(_SQL.schema_and_size, (job, device)).fetchone()
        except (sqlite3.Error, OSError):
            return False  # the write itself meets the trouble and says so
        return schema is not None and worth_checking_ahead(size or 0, operation)

    async def _write_checked(
        self,
        device: str,
        job: str,
        operation: Operation,
        expected_version: int | None,
        actor: str,
        expire_in: Mapping[str, float] | None,
    ) -> Snapshot:
        """A big write to a job bucket, checked ahead in its device's turn."""
        async with self._bucket_turn(device, job):
            for _ in range(AHEAD_TRIES):
                check = partial(self._check_ahead_now, device, job, operation, expire_in)
                checked = await in_turn(device, check)
                mine = Pending(device, job, operation, expected_version, actor, expire_in, checked)
                try:
                    return await self._batch(mine)
                except BucketMoved:
                    continue
            return await self._batch(
                Pending(device, job, operation, expected_version, actor, expire_in)
            )

    @asynccontextmanager
    async def _bucket_turn(self, device: str, job: str) -> AsyncIterator[None]:
        """This thread's big writes of one bucket, one at a time."""
        turns = self._state.bucket_turns
        turn = turns.setdefault((device, job), BucketTurn())
        turn.writers += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.writers -= 1
            if not turn.writers:
                del turns[device, job]

    def _read_bucket(self, conn: sqlite3.Connection, device: str, job: str) -> StoredBucket:
        """The bucket's row as a write reads it (its text opened, not decoded)."""
        row = conn.execute(_SQL.select_for_write, (device, job)).fetchone()
        text, version, updated_at, _, expires, *ids = row if row is not None else NO_BUCKET
        text = self._open(device, job, text, version)
        return StoredBucket(text, version, updated_at, None, decode_expiries(expires), *ids)

    def _check_ahead_now(
        self, device: str, job: str, operation: Operation, expire_in: Mapping[str, float] | None
    ) -> Checked:
        """On that thread, with its own connection: the schema and bucket as they are."""
        try:
            conn = self._conn()
            found = conn.execute(_SQL.job_schema, (job,)).fetchone()
            stored = self._read_bucket(conn, device, job)
        except (sqlite3.Error, OSError):
            return unchecked("")  # the write itself meets the trouble and says so
        schema = None if found is None else found[0]
        if schema is None:
            return unchecked("")  # none now: a schema given meanwhile is a bucket moved
        return check_ahead(
            stored,
            operation,
            device=device,
            job=job,
            schema=schema,
            limits=self.limits,
            now=time.time(),
            expire_in=expire_in,
        )
