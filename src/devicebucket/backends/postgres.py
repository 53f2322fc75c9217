"""The PostgreSQL store: many servers, one source of truth.

* Buckets are stored as the canonical JSON **text** (``values.encode``), not ``jsonb``: jsonb
  reorders keys, refuses ``\\u0000`` in strings and returns large floats as integers, so a
  bucket would not come back as it was written.
* A write reads its bucket, the planner (``planner.plan_write``) merges and checks it (schema
  included), and one statement writes it (and its history row, and removes the old contents
  the write forgets) only if the bucket still has the version read; otherwise it plans
  again. A hot bucket, a write that drops old entries or removes expired keys, or one near
  the quota takes the row lock (``SELECT … FOR UPDATE``) in one transaction instead.
  Writers on any number of servers lose no update.
* Ids use ``COLLATE "C"``, so devices sort (and page) by bytes, as in SQLite.
* Tables are created and upgraded by numbered migrations under an advisory lock, so servers
  starting together apply each migration once. ``?schema=NAME`` in the URL puts the tables
  in that schema; ``?pool_min=1&pool_max=10`` sizes each process's connection pool.
* One connection pool per event loop. A connection lost with the database (restart,
  network cut) fails that call with StoreUnavailableError; the pool opens new connections
  on the next call, so the store recovers by itself.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import asyncpg

from ..core.crypto import KeyRing
from ..core.errors import InvalidValueError, StoreUnavailableError
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
from ..core.planner import plan_job
from ..core.tokens import Token, hash_token, new_token, token_id, token_matches
from ..core.urls import redact_url
from . import pgsql
from .pgsql import CONNECTION_ERRORS, MIGRATIONS, Connection, LoopPools
from .pgsql import PG as _SQL
from .pgwrite import OptimisticWrites
from .queries import device_page_sql
from .sql import SQLStore
from .statements import SQL, Row, device_info, job_row
from .tables import POSTGRES

__all__ = ["MIGRATIONS", "PostgresStore"]


class PostgresStore(OptimisticWrites, SQLStore):
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
        self.dsn, params = pgsql.split_url(url)
        self.schema = schema or params.get("schema")
        self.url = redact_url(url)
        self.min_pool = min_pool or pgsql.pool_size(params.get("pool_min"), 1, "pool_min")
        self.max_pool = max_pool or pgsql.pool_size(params.get("pool_max"), 10, "pool_max")
        if self.min_pool > self.max_pool:
            raise InvalidValueError("pool_min may not be larger than pool_max")
        self.timeout = timeout
        self._absent = False  # no tables yet: reads find nothing, the first write creates them
        self._pools = LoopPools(self._open_pool)

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
                await self._migrate(conn, create=False)
        except BaseException:
            await pool.close()
            raise
        return pool

    async def _migrate(self, conn: Connection, *, create: bool = True) -> None:
        """Create or upgrade the tables; with ``create=False``, only if they exist (a read
        creates nothing: ``_absent`` says there is nothing to read yet)."""
        if not create:
            found = await conn.fetchval("SELECT to_regclass('devicebucket_migrations')")
            self._absent = found is None
            if self._absent:
                return
        where = f"PostgreSQL store {self.url}"
        await pgsql.migrate(conn, self.schema, where, lambda stored: self._check_key(stored, where))
        self._migrated = True
        self._absent = False

    async def migrate(self) -> int:
        """Apply pending migrations now; returns the schema version."""
        async with self._connection() as conn:
            return int(await conn.fetchval("SELECT max(version) FROM devicebucket_migrations"))

    @asynccontextmanager
    async def _connection(self, *, create: bool = True) -> AsyncIterator[Connection]:
        """A connection of the pool. While the store has no tables, ``create`` (a write)
        creates them; a read (``create=False``) looks again whether another made them."""
        try:
            pool = await self._pools.get()
            async with pool.acquire() as conn:
                if self._absent:
                    await self._migrate(conn, create=create)
                yield conn
        except StoreUnavailableError:
            raise
        except CONNECTION_ERRORS as exc:
            raise self._fail(exc) from None

    async def close(self) -> None:
        if self._minutes:
            with suppress(StoreUnavailableError):
                await self.flush_activity()
        await self._pools.close()

    async def _size_and_version(self) -> tuple[int, int] | None:
        async with self._connection(create=False) as conn:
            if self._absent:
                return None
            size = await conn.fetchval(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
            version = await conn.fetchval("SELECT max(version) FROM devicebucket_migrations")
        return int(size), int(version)

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self._connection(create=False) as conn:
            return [] if self._absent else list(await conn.fetch(query, *args))

    @property
    def _sql(self) -> SQL:
        return _SQL

    async def _run_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        async with self._connection() as conn:
            if len(statements) == 1:  # one statement is its own transaction: one round trip
                statement, args = statements[0]
                await conn.execute(statement, *args)
                return
            async with conn.transaction():
                for statement, args in statements:
                    await conn.execute(statement, *args)

    async def _rows(self, query: str, *args: Any) -> Sequence[Row]:
        return await self._fetch(query, *args)

    # --- reads ---------------------------------------------------------------------------

    async def _get(self, device: str, job: str | None) -> Snapshot:
        rows = await self._fetch(_SQL.select_bucket, device, job or "")
        if not rows:
            return Snapshot(None, 0, None, "{}")
        data, version, updated_at, next_expiry, expires = rows[0]
        text = self._open(device, job, data, version)
        if next_expiry is not None and next_expiry <= (now := time.time()):
            text = visible(text, decode_expiries(expires), now)  # a key's expiry has come
        return Snapshot(None, version, updated_at, text)

    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]:
        return [device_info(r) for r in await self._fetch(_SQL.devices_after, after or "", limit)]

    async def _device(self, device: str) -> DeviceInfo | None:
        rows = await self._fetch(_SQL.device, device)
        return device_info(rows[0]) if rows else None

    async def _device_page(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage:
        sql = device_page_sql(search, job, sort, descending, offset, limit, POSTGRES)
        async with self._connection(create=False) as conn:
            if self._absent:
                return DevicePage([], 0)
            ids = [row[0] for row in await conn.fetch(sql.page, *sql.page_args)]
            total = int(await conn.fetchval(sql.count, *sql.count_args))
            query = _SQL.devices_in.format(marks="SELECT unnest($1::text[])")
            found = {row[0]: device_info(row) for row in await conn.fetch(query, ids)}
        return DevicePage([found[device] for device in ids if device in found], total)

    # --- the versions of watched buckets, in one query (``sql.SQLStore._poll``) ----------

    async def _versions(
        self, buckets: list[tuple[str, str | None]]
    ) -> list[tuple[tuple[str, str | None], int]]:
        if not buckets:
            return []
        rows = await self._fetch(
            pgsql.VERSIONS_OF, [d for d, _ in buckets], [j or "" for _, j in buckets]
        )
        found = {(r[0], r[1] or None): r[2] for r in rows}
        return [(b, found.get(b, 0)) for b in buckets]

    async def _token(self, ident: str) -> Token | None:
        rows = await self._fetch(_SQL.select_token, ident)
        return Token(*rows[0]) if rows else None

    async def _get_job(self, job: str) -> Job | None:
        rows = await self._fetch(_SQL.select_job, job)
        return job_row(rows[0]).to_job() if rows else None

    async def _jobs(self) -> list[Job]:
        return [job_row(row).to_job() for row in await self._fetch(_SQL.select_jobs)]

    async def _job_summaries(self) -> list[tuple[Job, int]]:
        rows = await self._fetch(_SQL.job_summaries)
        return [(job_row(row).to_job(), int(row[5])) for row in rows]

    async def _tokens(self) -> list[Token]:
        return [Token(*row) for row in await self._fetch(_SQL.select_tokens)]

    async def _authenticate(self, presented: str) -> Token | None:
        rows = await self._fetch(_SQL.token_hash, token_id(presented))
        if not rows or not token_matches(presented, rows[0]["hash"]):
            return None
        return Token(rows[0]["id"], rows[0]["device"], rows[0]["created_at"])

    async def _export(self, history: bool) -> AsyncIterator[Record]:
        async with self._connection(create=False) as conn:
            if self._absent:
                return
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    for row in await conn.fetch(_SQL.select_jobs):
                        yield job_row(row).to_job()
                    for row in await conn.fetch(_SQL.export_tokens):
                        yield TokenRecord(*row)
                    async for r in conn.cursor(_SQL.export_buckets, prefetch=500):
                        yield self._bucket_record(r)
                    if history:
                        record = self._history_records()
                        async for r in conn.cursor(_SQL.export_history, prefetch=500):
                            yield record(r)
            except CONNECTION_ERRORS as exc:
                raise self._fail(exc) from None

    # --- writes --------------------------------------------------------------------------

    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job:
        now = time.time()
        async with self._connection() as conn, conn.transaction():
            # A new job's row first, so concurrent registrations lock one row; planned as
            # the update of that empty row, a new job comes out as if inserted whole.
            await conn.execute(_SQL.insert_new_job, job, None, None, now, now)
            row = await conn.fetchrow(_SQL.lock_job, job)
            assert row is not None  # inserted above if it was missing
            planned = plan_job(job_row(row), job, automation, schema, replace_schema, now)
            await conn.execute(
                _SQL.update_job, job, planned.automation, planned.schema, planned.updated_at
            )
        return planned.to_job()

    async def _delete_device(self, device: str) -> int:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_SQL.delete_device_history, device)
            status = await conn.execute(_SQL.delete_device, device)
        return int(status.split()[-1])

    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        ident, secret = new_token()
        now = time.time()
        async with self._connection() as conn:
            await conn.execute(_SQL.insert_token, ident, device, hash_token(secret), now)
        return Token(ident, device, now), secret

    async def _delete_token(self, ident: str) -> bool:
        async with self._connection() as conn:
            status = await conn.execute(_SQL.delete_token, ident)
        return bool(status != "DELETE 0")

    async def _write_import(
        self,
        jobs: list[tuple[Any, ...]],
        buckets: list[tuple[Any, ...]],
        tokens: list[tuple[Any, ...]],
        history: list[tuple[Any, ...]],
    ) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.executemany(_SQL.upsert_job, jobs)
            await conn.executemany(_SQL.forget_history, [r[:2] for r in buckets])
            await conn.executemany(_SQL.upsert_bucket, buckets)
            await conn.executemany(_SQL.upsert_token, tokens)
            heads: dict[tuple[str, str], int | None] = {}
            for row in history:
                bucket = (row[0], row[1])
                if bucket not in heads:
                    heads[bucket] = await conn.fetchval(_SQL.select_head, *bucket)
                heads[bucket] = await conn.fetchval(pgsql.INSERT_HISTORY_ID, *row, heads[bucket])
            await conn.executemany(_SQL.set_head, [(*b, h) for b, h in heads.items()])

    async def _reseal(self, limit: int) -> int:
        assert self.keys is not None
        count = 0
        async with self._connection() as conn, conn.transaction():
            for column, unsealed in _SQL.unsealed.items():
                rows = await conn.fetch(unsealed, f"{self.keys.prefix}%", limit - count)
                await conn.executemany(_SQL.reseal[column], self._resealed(rows))
                count += len(rows)
        return count

    async def _set_key_check(self, check: str) -> None:
        async with self._connection() as conn:
            await conn.execute(_SQL.set_key_check, check)
