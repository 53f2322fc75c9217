"""The PostgreSQL store: many servers, one source of truth.

* Buckets are stored as the canonical JSON **text** (``rules.encode``), not ``jsonb``: jsonb
  reorders keys, refuses ``\\u0000`` in strings and returns large floats as integers, so a
  bucket would not come back as it was written.
* A write is one transaction: ``SELECT … FOR UPDATE`` locks the bucket's row, the pure rules
  merge and check it (schema included), ``UPDATE`` writes it. A bucket's first write inserts
  with ``ON CONFLICT DO NOTHING`` and, if another server inserted first, locks that row
  instead. Writers on any number of servers serialize on the row: no update is lost.
* Ids use ``COLLATE "C"``, so devices sort (and page) by bytes, as in SQLite.
* Tables are created and upgraded by numbered migrations under an advisory lock, so servers
  starting together apply each migration once. ``?schema=NAME`` in the URL puts the tables
  in that schema; ``?pool_min=1&pool_max=10`` sizes each process's connection pool.
* One connection pool per event loop. A connection lost with the database (restart,
  network cut) fails that call with StoreUnavailableError; the pool opens new connections
  on the next call, so the store recovers by itself.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from .crypto import KeyRing
from .errors import InvalidValueError, JobConflictError, StoreUnavailableError
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
from .sqlite import decode_schema
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
from .urls import redact_url

__all__ = ["MIGRATIONS", "PostgresStore"]


def _strpos(column: str, needle: str) -> str:
    return f"strpos({column}, {needle}) > 0"


def _device_info(r: asyncpg.Record) -> DeviceInfo:
    return DeviceInfo(
        r["device"], int(r["keys"]), int(r["size"]), r["updated_at"], tuple(r["jobs"] or ())
    )


_LOCK_ID = 0x64657669636562  # "deviceb": the advisory lock that serializes migrations

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE buckets (
        device text COLLATE "C" NOT NULL,
        job text COLLATE "C" NOT NULL DEFAULT '',
        data text NOT NULL,
        version bigint NOT NULL,
        keys integer NOT NULL,
        size integer NOT NULL,
        updated_at double precision NOT NULL,
        PRIMARY KEY (device, job)
    );
    CREATE TABLE jobs (
        job text COLLATE "C" PRIMARY KEY,
        automation text,
        schema text,
        created_at double precision NOT NULL,
        updated_at double precision NOT NULL
    );
    CREATE TABLE tokens (
        id text PRIMARY KEY,
        device text,
        hash text NOT NULL,
        created_at double precision NOT NULL
    );
    """,
    # Which devices have a bucket of a job (the dashboard's job page), without a full scan.
    "CREATE INDEX buckets_by_job ON buckets (job, device)",
    # Every change: who, when, which keys; ``data`` only for the last N versions.
    """
    CREATE TABLE history (
        device text COLLATE "C" NOT NULL,
        job text COLLATE "C" NOT NULL,
        version bigint NOT NULL,
        at double precision NOT NULL,
        actor text NOT NULL,
        changes text NOT NULL,
        data text,
        PRIMARY KEY (device, job, version)
    );
    CREATE TABLE settings (name text PRIMARY KEY, value text NOT NULL)
    """,
)

_SELECT_BUCKET = "SELECT data, version, updated_at FROM buckets WHERE device = $1 AND job = $2"
_UPDATE_BUCKET = """
    UPDATE buckets SET data = $3, version = $4, keys = $5, size = $6, updated_at = $7
    WHERE device = $1 AND job = $2"""
_INSERT_BUCKET = """
    INSERT INTO buckets VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (device, job) DO NOTHING RETURNING version"""
_HISTORY_CONFLICT = """
    ON CONFLICT (device, job, version) DO UPDATE SET at = excluded.at, actor = excluded.actor,
        changes = excluded.changes, data = excluded.data"""
_UPDATE_WITH_HISTORY = f"""
    WITH bucket AS ({_UPDATE_BUCKET})
    INSERT INTO history VALUES ($1, $2, $4, $7, $8::text, $9::text, $3) {_HISTORY_CONFLICT}"""
_INSERT_WITH_HISTORY = f"""
    WITH bucket AS ({_INSERT_BUCKET})
    INSERT INTO history SELECT $1, $2, version, $7, $8::text, $9::text, $3 FROM bucket
    {_HISTORY_CONFLICT} RETURNING version"""
_FORGET_CONTENTS = """
    UPDATE history SET data = NULL
    WHERE device = $1 AND job = $2 AND version <= $3 AND data IS NOT NULL"""
_SELECT_DEVICES = """
    SELECT device, sum(CASE WHEN job = '' THEN keys ELSE 0 END) AS keys,
           sum(size) AS size, max(updated_at) AS updated_at,
           array_agg(job ORDER BY job) FILTER (WHERE job <> '') AS jobs
    FROM buckets"""
_SELECT_JOB = "SELECT job, automation, schema, created_at, updated_at FROM jobs"
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
_CONNECTION_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection broken mid-transaction (database restart)
    OSError,
    asyncio.TimeoutError,
)


def _job(row: Any) -> Job:
    schema = row["schema"]
    return Job(
        row["job"],
        row["automation"],
        None if schema is None else decode_schema(schema),
        row["created_at"],
        row["updated_at"],
    )


_OUR_PARAMETERS = ("schema", "pool_min", "pool_max")


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The DSN without our parameters (``schema``, ``pool_min``, ``pool_max``), and them."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OUR_PARAMETERS}
    rest = urlencode([(k, v) for k, v in query if k not in _OUR_PARAMETERS])
    return urlunsplit(parts._replace(query=rest)), ours


def _pool_size(value: str | None, default: int, name: str) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise InvalidValueError(f"{name} in a PostgreSQL URL must be an integer from 1 to 1000")
    return int(value)


class PostgresStore(Store):
    """A store in a PostgreSQL database, shared by any number of processes and servers."""

    def __init__(
        self,
        url: str,
        *,
        limits: Limits | None = None,
        schema: str | None = None,
        min_pool: int | None = None,
        max_pool: int | None = None,
        timeout: float = 10.0,
        keys: KeyRing | None = None,
    ) -> None:
        """Pool sizes come from the arguments, else ``?pool_min=&pool_max=`` in the URL,
        else 1 and 10."""
        super().__init__(limits=limits, keys=keys)
        self.dsn, params = split_url(url)
        self.schema = schema or params.get("schema")
        self.url = redact_url(url)
        self.min_pool = min_pool or _pool_size(params.get("pool_min"), 1, "pool_min")
        self.max_pool = max_pool or _pool_size(params.get("pool_max"), 10, "pool_max")
        if self.min_pool > self.max_pool:
            raise InvalidValueError("pool_min may not be larger than pool_max")
        self.timeout = timeout
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[asyncpg.Pool]
        ] = weakref.WeakKeyDictionary()

    def _fail(self, exc: BaseException) -> StoreUnavailableError:
        detail = str(exc).splitlines()[0] if str(exc) else ""
        return StoreUnavailableError(
            f"PostgreSQL store {self.url}: {type(exc).__name__}{': ' + detail if detail else ''}"
        )

    async def _open_pool(self) -> asyncpg.Pool:
        settings = {"search_path": self.schema} if self.schema else {}
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_pool,
            max_size=self.max_pool,
            timeout=self.timeout,
            command_timeout=self.timeout,
            server_settings=settings,
        )
        try:
            async with pool.acquire() as conn:
                await self._migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _pool(self) -> asyncpg.Pool:
        """This loop's pool, opened (and migrated) once however many calls arrive together.

        A failed opening is forgotten, so a later call tries again (the database came back).
        """
        loop = asyncio.get_running_loop()
        opening = self._pools.get(loop)
        if opening is None:
            opening = self._pools[loop] = loop.create_task(self._open_pool())
        try:
            return await asyncio.shield(opening)
        except BaseException:
            if opening.done() and self._pools.get(loop) is opening:
                del self._pools[loop]
            raise

    async def _migrate(self, conn: Connection) -> None:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
            if self.schema:
                await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS devicebucket_migrations"
                " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = await conn.fetchval(
                "SELECT coalesce(max(version), 0) FROM devicebucket_migrations"
            )
            if done > len(MIGRATIONS):
                raise StoreUnavailableError(
                    f"PostgreSQL store {self.url} was migrated by a newer devicebucket"
                    f" (version {done}, this one knows {len(MIGRATIONS)})"
                )
            for number in range(done, len(MIGRATIONS)):
                await conn.execute(MIGRATIONS[number])
                await conn.execute(
                    "INSERT INTO devicebucket_migrations (version) VALUES ($1)", number + 1
                )
            stored = await conn.fetchval("SELECT value FROM settings WHERE name = 'key_check'")
            check = self._check_key(stored, f"PostgreSQL store {self.url}")
            if check is not None:  # encryption turned on: new values are sealed from now on
                await conn.execute("INSERT INTO settings VALUES ('key_check', $1)", check)
        self._migrated = True

    async def migrate(self) -> int:
        """Apply pending migrations now; returns the schema version."""
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT max(version) FROM devicebucket_migrations"))

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        try:
            pool = await self._pool()
            async with pool.acquire() as conn:
                yield conn
        except StoreUnavailableError:
            raise
        except _CONNECTION_ERRORS as exc:
            raise self._fail(exc) from None

    async def close(self) -> None:
        opening = self._pools.pop(asyncio.get_running_loop(), None)
        if opening is None:
            return
        try:
            pool = await opening
        except Exception:  # it never opened: nothing to close
            return
        await pool.close()

    # --- reads ---------------------------------------------------------------------------

    async def _get(self, device: str, job: str | None) -> Snapshot:
        async with self._connection() as conn:
            row = await conn.fetchrow(_SELECT_BUCKET, device, job or "")
        if row is None:
            return Snapshot(None, 0, None, "{}")
        text = self._open(device, job, row["data"])
        return Snapshot(None, row["version"], row["updated_at"], text)

    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]:
        query = f"{_SELECT_DEVICES} WHERE device > $1 GROUP BY device ORDER BY device LIMIT $2"
        async with self._connection() as conn:
            rows = await conn.fetch(query, after or "", limit)
        return [_device_info(r) for r in rows]

    async def _device(self, device: str) -> DeviceInfo | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                f"{_SELECT_DEVICES} WHERE device = $1 GROUP BY device", device
            )
        return None if row is None else _device_info(row)

    async def _device_page(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage:
        sql = device_page_sql(
            search, job, sort, descending, offset, limit, lambda n: f"${n}", _strpos
        )
        async with self._connection() as conn:
            ids = [row[0] for row in await conn.fetch(sql.page, *sql.page_args)]
            total = int(await conn.fetchval(sql.count, *sql.count_args))
            query = f"{_SELECT_DEVICES} WHERE device = ANY($1::text[]) GROUP BY device"
            found = {row["device"]: _device_info(row) for row in await conn.fetch(query, ids)}
        return DevicePage([found[device] for device in ids if device in found], total)

    async def _history(self, device: str, job: str | None, limit: int) -> list[Change]:
        query = (
            "SELECT version, at, actor, changes, data IS NOT NULL FROM history"
            " WHERE device = $1 AND job = $2 ORDER BY version DESC LIMIT $3"
        )
        async with self._connection() as conn:
            rows = await conn.fetch(query, device, job or "", limit)
        return [decode_change(*row) for row in rows]

    async def _history_text(
        self, device: str, job: str | None, version: int
    ) -> tuple[str, float] | None:
        query = (
            "SELECT data, at FROM history WHERE device = $1 AND job = $2 AND version = $3"
            " AND data IS NOT NULL"
        )
        async with self._connection() as conn:
            row = await conn.fetchrow(query, device, job or "", version)
        return None if row is None else (self._open(device, job, row["data"]), row["at"])

    async def _reseal(self, limit: int) -> int:
        keys = self.keys
        assert keys is not None
        primary = f"{keys.prefix}%"
        count = 0
        async with self._connection() as conn, conn.transaction():
            for table in ("buckets", "history"):
                rows = await conn.fetch(
                    f"SELECT ctid, device, job, data FROM {table} WHERE data IS NOT NULL"
                    " AND data NOT LIKE $1 LIMIT $2 FOR UPDATE",
                    primary,
                    limit - count,
                )
                await conn.executemany(
                    f"UPDATE {table} SET data = $2 WHERE ctid = $1",
                    [
                        (r["ctid"], keys.seal(r["device"], r["job"], keys.open(*r[1:])))
                        for r in rows
                    ],
                )
                count += len(rows)
        return count

    async def _set_key_check(self, check: str) -> None:
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO settings VALUES ('key_check', $1)"
                " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                check,
            )

    async def _token(self, ident: str) -> Token | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, device, created_at FROM tokens WHERE id = $1", ident
            )
        return None if row is None else Token(row["id"], row["device"], row["created_at"])

    async def _get_job(self, job: str) -> Job | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(f"{_SELECT_JOB} WHERE job = $1", job)
        return None if row is None else _job(row)

    async def _jobs(self) -> list[Job]:
        async with self._connection() as conn:
            rows = await conn.fetch(f"{_SELECT_JOB} ORDER BY job")
        return [_job(row) for row in rows]

    async def _export(self) -> AsyncIterator[Record]:
        async with self._connection() as conn:
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    for row in await conn.fetch(f"{_SELECT_JOB} ORDER BY job"):
                        yield _job(row)
                    for row in await conn.fetch(
                        "SELECT id, device, hash, created_at FROM tokens ORDER BY id"
                    ):
                        yield TokenRecord(row["id"], row["device"], row["hash"], row["created_at"])
                    cursor = conn.cursor(
                        "SELECT device, job, data, version, updated_at FROM buckets"
                        " ORDER BY device, job",
                        prefetch=500,
                    )
                    async for r in cursor:
                        yield BucketRecord(
                            r["device"],
                            r["job"] or None,
                            decode(self._open(r["device"], r["job"], r["data"])),
                            r["version"],
                            r["updated_at"],
                        )
            except _CONNECTION_ERRORS as exc:
                raise self._fail(exc) from None

    # --- writes --------------------------------------------------------------------------

    async def _write(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str,
    ) -> Snapshot:
        key = job or ""
        async with self._connection() as conn, conn.transaction():
            while True:
                row = await conn.fetchrow(f"{_SELECT_BUCKET} FOR UPDATE", device, key)
                text, version, updated_at = (
                    (row["data"], row["version"], row["updated_at"]) if row else ("{}", 0, None)
                )
                text = self._open(device, key, text)
                planned = plan_write(
                    decode(text), text, version, operation, expected_version, self.limits
                )
                if planned is None:
                    return Snapshot(None, version, updated_at, text)
                if job:
                    schema = await conn.fetchval("SELECT schema FROM jobs WHERE job = $1", job)
                    if schema is not None:
                        validate_against_schema(planned.data, schema, job)
                now = time.time()
                stored = self._seal(device, key, planned.text)
                values = (
                    device,
                    key,
                    stored,
                    planned.version,
                    len(planned.data),
                    planned.size,
                    now,
                )
                keep = self.limits.history_versions
                # With the history on, the bucket and its history row are written by one
                # statement (one round trip): a data-modifying CTE runs in any case.
                history = (actor, encode_changes(planned.changes)) if keep else ()
                if row is not None:
                    update = _UPDATE_WITH_HISTORY if keep else _UPDATE_BUCKET
                    await conn.execute(update, *values, *history)
                else:
                    insert = _INSERT_WITH_HISTORY if keep else _INSERT_BUCKET
                    if await conn.fetchval(insert, *values, *history) is None:
                        continue  # another writer created it first: lock its row, merge again
                if keep and planned.version % keep == 0:  # at least the last ``keep`` stay
                    await conn.execute(_FORGET_CONTENTS, device, key, planned.version - keep)
                return Snapshot(None, planned.version, now, planned.text)

    async def _delete_device(self, device: str) -> int:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("DELETE FROM history WHERE device = $1", device)
            status = await conn.execute("DELETE FROM buckets WHERE device = $1", device)
        return int(status.split()[-1])

    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job:
        now = time.time()
        async with self._connection() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO jobs VALUES ($1, NULL, NULL, $2, $2) ON CONFLICT (job) DO NOTHING",
                job,
                now,
            )
            row = await conn.fetchrow(f"{_SELECT_JOB} WHERE job = $1 FOR UPDATE", job)
            assert row is not None  # inserted above if it was missing
            stored = row["schema"]
            if schema is None and not replace_schema:
                schema = stored
            elif stored is not None and schema != stored and not replace_schema:
                raise JobConflictError(
                    f"job {job!r} is registered with a different bucket schema;"
                    " replace it explicitly (--replace-schema / replace_schema=True)"
                )
            automation = automation if automation is not None else row["automation"]
            await conn.execute(
                "UPDATE jobs SET automation = $2, schema = $3, updated_at = $4 WHERE job = $1",
                job,
                automation,
                schema,
                now,
            )
        return Job(
            job,
            automation,
            None if schema is None else decode_schema(schema),
            row["created_at"],
            now,
        )

    async def _import(
        self, jobs: list[Job], buckets: list[BucketRecord], tokens: list[TokenRecord]
    ) -> None:
        rows = []
        for b in buckets:
            text = encode(b.data)
            rows.append(
                (
                    b.device,
                    b.job or "",
                    self._seal(b.device, b.job, text),
                    b.version,
                    len(b.data),
                    check_size(text, self.limits),
                    b.updated_at,
                )
            )
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO jobs VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job) DO UPDATE SET"
                " automation = EXCLUDED.automation, schema = EXCLUDED.schema,"
                " created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at",
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
            await conn.executemany(
                "INSERT INTO buckets VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device, job)"
                " DO UPDATE SET data = EXCLUDED.data, version = EXCLUDED.version,"
                " keys = EXCLUDED.keys, size = EXCLUDED.size, updated_at = EXCLUDED.updated_at",
                rows,
            )
            await conn.executemany(  # an imported bucket starts a history of its own
                "DELETE FROM history WHERE device = $1 AND job = $2", [r[:2] for r in rows]
            )
            await conn.executemany(
                "INSERT INTO tokens VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET"
                " device = EXCLUDED.device, hash = EXCLUDED.hash, created_at = EXCLUDED.created_at",
                [(t.id, t.device, t.hash, t.created_at) for t in tokens],
            )

    # --- tokens --------------------------------------------------------------------------

    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        ident, secret = new_token()
        now = time.time()
        async with self._connection() as conn:
            await conn.execute(
                "INSERT INTO tokens VALUES ($1, $2, $3, $4)", ident, device, hash_token(secret), now
            )
        return Token(ident, device, now), secret

    async def _tokens(self) -> list[Token]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT id, device, created_at FROM tokens ORDER BY created_at, id"
            )
        return [Token(r["id"], r["device"], r["created_at"]) for r in rows]

    async def _delete_token(self, ident: str) -> bool:
        async with self._connection() as conn:
            status = await conn.execute("DELETE FROM tokens WHERE id = $1", ident)
        return bool(status != "DELETE 0")

    async def _authenticate(self, presented: str) -> Token | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, device, created_at, hash FROM tokens WHERE id = $1", token_id(presented)
            )
        if row is None or not token_matches(presented, row["hash"]):
            return None
        return Token(row["id"], row["device"], row["created_at"])
