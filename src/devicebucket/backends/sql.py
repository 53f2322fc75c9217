"""What the SQL stores share: the tables, the statements, and the hooks of encryption at rest.

The tables and every statement are written once, here, for both SQL dialects; a
:class:`Dialect` says how each spells a placeholder, a column type or a list of jobs.
:class:`SQLStore` is the base of the SQLite and PostgreSQL stores: it seals and opens stored
text, checks the key, rotates it, and runs an import and a job registration through the
planner. A backend adds how it connects, locks and executes.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ..core.crypto import EncryptionError, KeyRing, key_check, open_plain, verify_key
from ..core.limits import Limits
from ..core.model import DeviceInfo, HistoryRecord, decode_change
from ..core.planner import Checked, JobRow, plan_history, plan_import
from ..core.sessions import Session
from ..core.store import Store
from ..core.values import decode

__all__ = [
    "MIGRATION_STEPS",
    "POSTGRES",
    "SQL",
    "SQLITE",
    "Dialect",
    "SQLStore",
    "device_info",
    "job_row",
]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database spells what the statements need."""

    param: Callable[[int], str]  # the n-th placeholder, 1-based
    id_type: str  # device and job ids: compared and sorted by bytes
    text_type: str
    int_type: str
    bigint_type: str
    real_type: str
    contains: Callable[[str, str], str]  # a case-sensitive substring test
    jobs_list: str  # a device's job ids, as one value ``device_info`` reads
    row_id: str  # a row's physical id, for the re-sealing of a rotation
    lock: str  # what locks the rows a SELECT reads ("" where the transaction does)


SQLITE: Final = Dialect(
    param=lambda n: f"?{n}",
    id_type="TEXT",
    text_type="TEXT",
    int_type="INTEGER",
    bigint_type="INTEGER",
    real_type="REAL",
    contains=lambda column, needle: f"instr({column}, {needle}) > 0",
    jobs_list="GROUP_CONCAT(NULLIF(job, ''), char(31))",
    row_id="rowid",
    lock="",
)

POSTGRES: Final = Dialect(
    param=lambda n: f"${n}",
    id_type='text COLLATE "C"',
    text_type="text",
    int_type="integer",
    bigint_type="bigint",
    real_type="double precision",
    contains=lambda column, needle: f"strpos({column}, {needle}) > 0",
    jobs_list="array_agg(job ORDER BY job) FILTER (WHERE job <> '')",
    row_id="ctid",
    lock=" FOR UPDATE",
)

# The schema, one step at a time; ``{id}``, ``{text}``, ... are the dialect's types. A step is
# never changed once released: a new table or index is a new step.
MIGRATION_STEPS: Final = (
    """
    CREATE TABLE buckets (
        device {id} NOT NULL,
        job {id} NOT NULL DEFAULT '',
        data {text} NOT NULL,
        version {bigint} NOT NULL,
        keys {int} NOT NULL,
        size {int} NOT NULL,
        updated_at {real} NOT NULL,
        PRIMARY KEY (device, job)
    );
    CREATE TABLE jobs (
        job {id} PRIMARY KEY,
        automation {text},
        schema {text},
        created_at {real} NOT NULL,
        updated_at {real} NOT NULL
    )
    """,
    """
    CREATE TABLE tokens (
        id {text} PRIMARY KEY,
        device {text},
        hash {text} NOT NULL,
        created_at {real} NOT NULL
    )
    """,
    # Which devices have a bucket of a job (the dashboard's job pages), without a full scan.
    "CREATE INDEX buckets_by_job ON buckets (job, device)",
    # Every change: who, when, which keys; ``data`` only for the last N versions.
    """
    CREATE TABLE history (
        device {id} NOT NULL,
        job {id} NOT NULL,
        version {bigint} NOT NULL,
        at {real} NOT NULL,
        actor {text} NOT NULL,
        changes {text} NOT NULL,
        data {text},
        PRIMARY KEY (device, job, version)
    );
    CREATE TABLE settings (name {text} PRIMARY KEY, value {text} NOT NULL)
    """,
    # Dashboard sessions, shared by every worker and server (``core.sessions``).
    """
    CREATE TABLE sessions (
        id {text} PRIMARY KEY,
        token {text} NOT NULL,
        binding {text} NOT NULL,
        csrf {text} NOT NULL,
        created_at {real} NOT NULL,
        seen_at {real} NOT NULL
    )
    """,
)

_BUCKET_COLUMNS: Final = "device, job, data, version, keys, size, updated_at"


class SQL:
    """Every statement of the SQL stores, spelled for one dialect."""

    def __init__(self, d: Dialect) -> None:
        p = d.param
        self.steps = [
            [s for s in step.split(";") if s.strip()]
            for step in (
                s.format(
                    id=d.id_type,
                    text=d.text_type,
                    int=d.int_type,
                    bigint=d.bigint_type,
                    real=d.real_type,
                )
                for s in MIGRATION_STEPS
            )
        ]
        bucket = f"device = {p(1)} AND job = {p(2)}"
        self.select_bucket = f"SELECT data, version, updated_at FROM buckets WHERE {bucket}"
        self.upsert_bucket = (
            f"INSERT INTO buckets ({_BUCKET_COLUMNS}) VALUES"
            f" ({', '.join(p(n) for n in range(1, 8))})"
            " ON CONFLICT (device, job) DO UPDATE SET data = excluded.data,"
            " version = excluded.version, keys = excluded.keys, size = excluded.size,"
            " updated_at = excluded.updated_at"
        )
        self.update_bucket = (
            f"UPDATE buckets SET data = {p(3)}, version = {p(4)}, keys = {p(5)}, size = {p(6)},"
            f" updated_at = {p(7)} WHERE {bucket}"
        )
        self.insert_history = (
            f"INSERT INTO history VALUES ({', '.join(p(n) for n in range(1, 8))})"
            " ON CONFLICT (device, job, version) DO UPDATE SET at = excluded.at,"
            " actor = excluded.actor, changes = excluded.changes, data = excluded.data"
        )
        self.forget_contents = (
            f"UPDATE history SET data = NULL WHERE {bucket} AND version <= {p(3)}"
            " AND data IS NOT NULL"
        )
        self.select_history = (
            "SELECT version, at, actor, changes, data IS NOT NULL FROM history"
            f" WHERE {bucket} ORDER BY version DESC LIMIT {p(3)}"
        )
        self.select_kept = (
            f"SELECT data, at FROM history WHERE {bucket} AND version = {p(3)} AND data IS NOT NULL"
        )
        self.drop_history = f"DELETE FROM history WHERE {bucket} AND version <= {p(3)}"
        self.device_bytes_besides = (
            f"SELECT COALESCE(SUM(size), 0) FROM buckets WHERE device = {p(1)} AND job <> {p(2)}"
        )
        self.forget_history = f"DELETE FROM history WHERE {bucket}"
        self.delete_device_history = f"DELETE FROM history WHERE device = {p(1)}"
        self.delete_device = f"DELETE FROM buckets WHERE device = {p(1)}"
        devices = (
            "SELECT device, SUM(CASE WHEN job = '' THEN keys ELSE 0 END), SUM(size),"
            f" MAX(updated_at), {d.jobs_list} FROM buckets"
        )
        self.devices_after = (
            f"{devices} WHERE device > {p(1)} GROUP BY device ORDER BY device LIMIT {p(2)}"
        )
        self.device = f"{devices} WHERE device = {p(1)} GROUP BY device"
        self.devices_in = f"{devices} WHERE device IN ({{marks}}) GROUP BY device"
        job_columns = "job, automation, schema, created_at, updated_at"
        self.select_jobs = f"SELECT {job_columns} FROM jobs ORDER BY job"
        self.select_job = f"SELECT {job_columns} FROM jobs WHERE job = {p(1)}"
        self.lock_job = f"{self.select_job}{d.lock}"
        self.job_summaries = (
            f"SELECT {job_columns}, (SELECT COUNT(*) FROM buckets b WHERE b.job = jobs.job)"
            " FROM jobs ORDER BY job"
        )
        self.insert_job = f"INSERT INTO jobs VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)}, {p(5)})"
        self.update_job = (
            f"UPDATE jobs SET automation = {p(2)}, schema = {p(3)}, updated_at = {p(4)}"
            f" WHERE job = {p(1)}"
        )
        self.upsert_job = (
            f"{self.insert_job} ON CONFLICT (job) DO UPDATE SET automation = excluded.automation,"
            " schema = excluded.schema, created_at = excluded.created_at,"
            " updated_at = excluded.updated_at"
        )
        self.insert_new_job = f"{self.insert_job} ON CONFLICT (job) DO NOTHING"
        self.job_schema = f"SELECT schema FROM jobs WHERE job = {p(1)}"
        self.insert_token = f"INSERT INTO tokens VALUES ({p(1)}, {p(2)}, {p(3)}, {p(4)})"
        self.upsert_token = (
            f"{self.insert_token} ON CONFLICT (id) DO UPDATE SET device = excluded.device,"
            " hash = excluded.hash, created_at = excluded.created_at"
        )
        self.select_tokens = "SELECT id, device, created_at FROM tokens ORDER BY created_at, id"
        self.select_token = f"SELECT id, device, created_at FROM tokens WHERE id = {p(1)}"
        self.token_hash = f"SELECT id, device, created_at, hash FROM tokens WHERE id = {p(1)}"
        self.delete_token = f"DELETE FROM tokens WHERE id = {p(1)}"
        self.export_tokens = "SELECT id, device, hash, created_at FROM tokens ORDER BY id"
        self.export_history = (
            "SELECT device, job, version, at, actor, changes, data FROM history"
            " ORDER BY device, job, version"
        )
        self.export_buckets = (
            "SELECT device, job, data, version, updated_at FROM buckets ORDER BY device, job"
        )
        self.insert_session = (
            f"INSERT INTO sessions VALUES ({', '.join(p(n) for n in range(1, 7))})"
        )
        self.select_session = (
            f"SELECT token, binding, csrf, created_at, seen_at FROM sessions WHERE id = {p(1)}"
        )
        self.touch_session = f"UPDATE sessions SET seen_at = {p(2)} WHERE id = {p(1)}"
        self.delete_session = f"DELETE FROM sessions WHERE id = {p(1)}"
        self.delete_stale_sessions = (
            f"DELETE FROM sessions WHERE seen_at < {p(1)} OR created_at < {p(2)}"
        )
        self.key_check = "SELECT value FROM settings WHERE name = 'key_check'"
        self.set_key_check = (
            f"INSERT INTO settings VALUES ('key_check', {p(1)})"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        )
        self.unsealed = {
            table: f"SELECT {d.row_id}, device, job, data, version FROM {table}"
            " WHERE data IS NOT NULL"
            f" AND data NOT LIKE {p(1)} LIMIT {p(2)}{d.lock}"
            for table in ("buckets", "history")
        }
        self.reseal = {
            table: f"UPDATE {table} SET data = {p(2)} WHERE {d.row_id} = {p(1)}"
            for table in ("buckets", "history")
        }


class Row(Protocol):
    """A row as either driver returns it (a tuple, an ``asyncpg.Record``)."""

    def __getitem__(self, index: int, /) -> Any: ...


def device_info(row: Row) -> DeviceInfo:
    """A row of ``SQL.devices_*`` as a DeviceInfo (jobs come as a list or a joined text)."""
    device, keys, size, updated, jobs = (row[i] for i in range(5))
    if isinstance(jobs, str):
        jobs = sorted(jobs.split("\x1f"))
    return DeviceInfo(device, int(keys), int(size), updated, tuple(jobs or ()))


def job_row(row: Row) -> JobRow:
    """A row of ``SQL.select_job(s)`` as a JobRow."""
    return JobRow(row[0], row[1], row[2], row[3], row[4])


class SQLStore(Store):
    """A store that keeps the bucket texts itself: it may seal them (encryption at rest)."""

    def __init__(self, *, limits: Limits | None = None, keys: KeyRing | None = None) -> None:
        super().__init__(limits=limits)
        self.keys = keys

    # --- encryption at rest (every stored bucket text passes these) ----------------------

    def _seal(self, device: str, job: str | None, text: str, version: int) -> str:
        """``text`` as stored: sealed for its device, job and version if the store encrypts."""
        return text if self.keys is None else self.keys.seal(device, job or "", text, version)

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

    @abstractmethod
    async def _run(self, statement: str, *args: Any) -> None:
        """Execute one statement that changes rows no cache holds, in its own transaction."""

    @abstractmethod
    async def _rows(self, query: str, *args: Any) -> Sequence[Row]:
        """The rows of one query."""

    # --- import, the same rows everywhere ------------------------------------------------

    async def _import(self, checked: Checked) -> None:
        rows = plan_import(checked.buckets, self.limits)
        await self._write_import(
            [JobRow.of(j).values() for j in checked.jobs],
            [r.values(self._seal(r.device, r.job, r.text, r.version)) for r in rows],
            [(t.id, t.device, t.hash, t.created_at) for t in checked.tokens],
            [
                (d, j, h.version, h.at, h.actor, h.changes, self._seal_kept(d, j, t, h.version))
                for h, d, j, t in plan_history(checked.history)
            ],
        )

    def _seal_kept(self, device: str, job: str, text: str | None, version: int) -> str | None:
        """A history entry's contents as stored, if it keeps them."""
        return None if text is None else self._seal(device, job, text, version)

    def _history_record(self, row: Row) -> HistoryRecord:
        """A row of ``SQL.export_history`` as a record (its kept contents opened)."""
        device, job, version, at, actor, changes, data = (row[i] for i in range(7))
        change = decode_change(version, at, actor, changes, data is not None)
        contents = None if data is None else decode(self._open(device, job, data, version))
        return HistoryRecord(device, job or None, change, contents)

    @abstractmethod
    async def _write_import(
        self,
        jobs: list[tuple[Any, ...]],
        buckets: list[tuple[Any, ...]],
        tokens: list[tuple[Any, ...]],
        history: list[tuple[Any, ...]],
    ) -> None:
        """In one transaction: ``SQL.upsert_job`` each job, ``SQL.upsert_bucket`` each bucket
        and ``SQL.forget_history`` of it, ``SQL.upsert_token`` each token, then
        ``SQL.insert_history`` each history row."""
