"""PostgreSQL's own: the statements its store composes from ``statements.SQL``, its numbered
migrations and how they are applied, and the parameters of its URLs that are devicebucket's,
not the driver's."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from ..core.errors import InvalidValueError, StoreUnavailableError
from ..core.planner import WritePlan
from .statements import SQL
from .tables import POSTGRES

__all__ = [
    "CONNECTION_ERRORS",
    "INSERT_BUCKET",
    "INSERT_HISTORY_ID",
    "INSERT_WITH_HISTORY",
    "LOCK_ID",
    "MIGRATIONS",
    "OPTIMISTIC_ATTEMPTS",
    "PG",
    "READ_FOR_WRITE",
    "UPDATE_IF",
    "UPDATE_IF_FORGETTING",
    "UPDATE_IF_WITH_HISTORY",
    "UPDATE_WITH_HISTORY",
    "VERSIONS_OF",
    "Connection",
    "LoopPools",
    "history_values",
    "migrate",
    "pool_size",
    "split_url",
]

PG = SQL(POSTGRES)
LOCK_ID = 0x64657669636562  # "deviceb": the advisory lock that serializes migrations

# The numbered migrations: which steps of ``tables.MIGRATION_STEPS`` each one applies.
MIGRATIONS: Final[tuple[list[str], ...]] = (
    PG.steps[0] + PG.steps[1],
    PG.steps[2],
    PG.steps[3],
    PG.steps[4],
    PG.steps[5],
    PG.steps[6],
    PG.steps[7],
    PG.steps[8],
    PG.steps[9],
)

# The bucket and its history row in one statement (one round trip): a data-modifying CTE runs
# in any case. $1-$9 are the bucket row, $10 the actor, $11 the changes, $12 the id of the
# bucket's newest history row so far (the new row's ``prev``), $13 the full copy (or NULL),
# $14 the delta (``core.history``), $15 the bucket's ``kept_from``. The new row's id is drawn
# in the bucket's statement, which records it as the bucket's ``head``; the statement returns
# it.
_COLUMNS = "device, job, data, version, keys, size, updated_at, expires, next_expiry, head"
_NEXT_ID = "nextval('history_id_seq')"
_HISTORY_ROW = (
    "INSERT INTO history (id, device, job, version, at, actor, changes, data, delta, prev)"
    " SELECT head, $1, $2, version, $7, $10::text, $11::text, $13::text, $14::text,"
    " $12::bigint FROM bucket"
)
_INSERT = (
    f"INSERT INTO buckets ({_COLUMNS}{{more}}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
    " {head}{values}) ON CONFLICT (device, job) DO NOTHING RETURNING version, head"
)
_UPDATE = PG.update_bucket.replace(" WHERE", f", head = {_NEXT_ID}, kept_from = $15 WHERE")
INSERT_BUCKET = _INSERT.format(more="", head="NULL", values="")
UPDATE_WITH_HISTORY = (
    f"WITH bucket AS ({_UPDATE} RETURNING version, head) {_HISTORY_ROW} RETURNING id"
)
INSERT_WITH_HISTORY = (
    f"WITH bucket AS ({_INSERT.format(more=', kept_from', head=_NEXT_ID, values=', $15')})"
    f" {_HISTORY_ROW} RETURNING id"
)
# The optimistic write (``PostgresStore._write``): one read, then one statement that changes
# the bucket only if it still has the version that was read ($10 without history, $16 with).
# The read gives the bucket (NULLs when there is none) and the job's schema.
READ_FOR_WRITE = (
    "SELECT b.data, b.version, b.updated_at, b.next_expiry, b.expires, b.head, b.kept_from,"
    " (SELECT schema FROM jobs WHERE job = $2 AND $2 <> '') FROM (SELECT 1) AS one"
    " LEFT JOIN buckets b ON b.device = $1 AND b.job = $2"
)
UPDATE_IF = f"{PG.update_bucket} AND version = $10 RETURNING version"
_UPDATE_IF = f"{_UPDATE} AND version = $16 RETURNING version, head"
UPDATE_IF_WITH_HISTORY = f"WITH bucket AS ({_UPDATE_IF}) {_HISTORY_ROW} RETURNING id"
# ... and a write that forgets old contents (``WritePlan.forget_through``, $17) forgets them
# in the same statement, which applies only with the bucket's: atomic with it, and after any
# other write's forgetting of the bucket, as versions come one after another. Its walk
# begins at the bucket's newest row before this one (the statement sees the rows as they
# were before it).
UPDATE_IF_FORGETTING = (
    f"WITH bucket AS ({_UPDATE_IF}), forgot AS ({PG.forget_contents_at(17)}"
    f" AND EXISTS (SELECT FROM bucket)) {_HISTORY_ROW} RETURNING id"
)


def history_values(
    plan: WritePlan,
    stored: str,
    head: int | None,
    texts: Callable[[WritePlan, str], tuple[str | None, str | None]],
) -> tuple[Any, ...]:
    """The history row's parameters and the bucket's ``kept_from`` ($10-$15 of
    ``UPDATE_WITH_HISTORY`` and its kin) for a plan whose bucket text is ``stored``
    (``texts``: the store's ``_history_texts``, its row's full copy and delta as stored);
    none when the history is off."""
    h = plan.history
    if h is None:
        return ()
    return (h.actor, h.changes, head, *texts(plan, stored), plan.row.kept_from)


# A history row an import writes, its id returned to chain the bucket's next row onto.
INSERT_HISTORY_ID = f"{PG.insert_history} RETURNING id"
# The versions of the buckets watched (``PostgresStore._versions``).
VERSIONS_OF = (
    "SELECT b.device, b.job, b.version FROM unnest($1::text[], $2::text[]) AS w(device, job)"
    " JOIN buckets b ON b.device = w.device AND b.job = w.job"
)
Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
# Optimistic attempts before a write takes its bucket's row lock instead (a hot bucket).
OPTIMISTIC_ATTEMPTS: Final = 3

_OUR_PARAMETERS = ("schema", "pool_min", "pool_max")
#: What a lost or broken connection raises (the store answers StoreUnavailableError).
CONNECTION_ERRORS: Final = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection broken mid-transaction (database restart)
    OSError,
    asyncio.TimeoutError,
)


class LoopPools:
    """One connection pool per event loop, opened once however many calls arrive together.
    A failed opening is forgotten, so a later call tries again (the database came back)."""

    def __init__(self, open_pool: Callable[[], Awaitable[asyncpg.Pool]]) -> None:
        self._open = open_pool
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[asyncpg.Pool]
        ] = weakref.WeakKeyDictionary()

    async def get(self) -> asyncpg.Pool:
        """This loop's pool."""
        loop = asyncio.get_running_loop()
        opening = self._pools.get(loop)
        if opening is None:
            opening = self._pools[loop] = loop.create_task(_opened(self._open))
        try:
            return await asyncio.shield(opening)
        except BaseException:
            if opening.done() and self._pools.get(loop) is opening:
                del self._pools[loop]
            raise

    async def close(self) -> None:
        """Close this loop's pool, if it opened."""
        opening = self._pools.pop(asyncio.get_running_loop(), None)
        if opening is None:
            return
        try:
            pool = await opening
        except Exception:  # it never opened: nothing to close
            return
        await pool.close()


async def _opened(open_pool: Callable[[], Awaitable[asyncpg.Pool]]) -> asyncpg.Pool:
    return await open_pool()


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """The DSN without our parameters (``schema``, ``pool_min``, ``pool_max``), and them."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OUR_PARAMETERS}
    rest = urlencode([(k, v) for k, v in query if k not in _OUR_PARAMETERS])
    return urlunsplit(parts._replace(query=rest)), ours


def pool_size(value: str | None, default: int, name: str) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise InvalidValueError(f"{name} in a PostgreSQL URL must be an integer from 1 to 1000")
    return int(value)


async def migrate(
    conn: Connection,
    schema: str | None,
    where: str,
    new_key_check: Callable[[str | None], str | None],
) -> None:
    """Create or upgrade the tables in ``schema`` (or the search path's), each numbered
    migration once, under an advisory lock, so servers starting together apply each once;
    then record the key check ``new_key_check`` gives for the stored one, if any
    (encryption turned on). ``where`` names the store in errors."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_ID)
        if schema:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS devicebucket_migrations"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = await conn.fetchval("SELECT coalesce(max(version), 0) FROM devicebucket_migrations")
        if done > len(MIGRATIONS):
            raise StoreUnavailableError(
                f"{where} was migrated by a newer devicebucket"
                f" (version {done}, this one knows {len(MIGRATIONS)})"
            )
        for number in range(done, len(MIGRATIONS)):
            for statement in MIGRATIONS[number]:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO devicebucket_migrations (version) VALUES ($1)", number + 1
            )
        check = new_key_check(await conn.fetchval(PG.key_check))
        if check is not None:  # encryption turned on: new values are sealed from now on
            await conn.execute(PG.set_key_check, check)
