"""How the SQLite store checks a big job write against its job's schema ahead of the write's
batch (``core.ahead``): what its connection knows of the job and the bucket decides whether
(else one read), and the check runs on the thread for that (``turns``), with that thread's
own connection, against the schema and the bucket as they are then."""

from __future__ import annotations

import sqlite3
import time
from abc import abstractmethod
from collections.abc import Mapping
from functools import partial
from typing import Final

from ..core.ahead import check_ahead, worth_checking_ahead
from ..core.expiry import decode_expiries
from ..core.limits import Limits
from ..core.operations import Operation
from ..core.planner import Checked, StoredBucket
from .groupcommit import ThreadState
from .statements import NO_BUCKET, SQL
from .tables import SQLITE
from .turns import in_turn

__all__ = ["AheadChecks"]

_SQL: Final = SQL(SQLITE)


class AheadChecks:
    """What ``SQLiteStore`` checks ahead; its write half (``sqlitebatch``) builds on it."""

    limits: Limits

    @property
    @abstractmethod
    def _state(self) -> ThreadState: ...

    @abstractmethod
    def _conn(self) -> sqlite3.Connection: ...

    @abstractmethod
    def _open(self, device: str, job: str | None, stored: str, version: int) -> str: ...

    async def _check_ahead(
        self, device: str, job: str, operation: Operation, expire_in: Mapping[str, float] | None
    ) -> Checked | None:
        """A big write to a job bucket checked against its job's schema before it joins a
        batch, in its device's turn (``backends.turns``); None for a job without a schema or a
        small write. What this connection last knew of the job and bucket decides, else a
        read."""
        state = self._state
        if job in state.schemas and state.schemas[job] is None:
            return None
        cached = state.cache.get((device, job))
        if cached is not None and job in state.schemas:
            size = len(cached.text)
        else:
            try:
                schema, size = self._conn().execute(_SQL.schema_and_size, (job, device)).fetchone()
            except (sqlite3.Error, OSError):
                return None  # the write itself meets the trouble and says so
            if schema is None:
                return None
        if not worth_checking_ahead(size or 0, operation):
            return None
        check = partial(self._check_ahead_now, device, job, operation, expire_in)
        return await in_turn(device, check)

    def _check_ahead_now(
        self, device: str, job: str, operation: Operation, expire_in: Mapping[str, float] | None
    ) -> Checked | None:
        """On that thread, with its own connection: the schema and bucket as they are."""
        try:
            conn = self._conn()
            found = conn.execute(_SQL.job_schema, (job,)).fetchone()
            row = conn.execute(_SQL.select_for_write, (device, job)).fetchone()
        except (sqlite3.Error, OSError):
            return None  # the write itself meets the trouble and says so
        if found is None or found[0] is None:
            return None
        text, version, updated_at, _, expires, *_ = row if row is not None else NO_BUCKET
        text = self._open(device, job, text, version)
        stored = StoredBucket(text, version, updated_at, None, decode_expiries(expires))
        return check_ahead(
            stored,
            operation,
            device=device,
            job=job,
            schema=found[0],
            limits=self.limits,
            now=time.time(),
            expire_in=expire_in,
        )
