"""The tables of the SQL stores, as the steps that migrate a database to them, and how each
database spells what a step or a statement needs (:class:`Dialect`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["HISTORY_ROW", "MIGRATION_STEPS", "POSTGRES", "SQLITE", "Dialect"]


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
    serial_key: str  # an integer primary key the database numbers itself, in order


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
    serial_key="INTEGER PRIMARY KEY",
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
    serial_key="bigserial PRIMARY KEY",
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
    # Keys that expire (``core.expiry``): their instants, and the earliest, for the sweep.
    """
    ALTER TABLE buckets ADD COLUMN expires {text};
    ALTER TABLE buckets ADD COLUMN next_expiry {real};
    CREATE INDEX buckets_by_expiry ON buckets (next_expiry) WHERE next_expiry IS NOT NULL
    """,
    # Writes per minute, for the dashboard's activity chart: each process adds its counts
    # every few seconds (``core.live``), so a write pays nothing for it.
    "CREATE TABLE activity (minute {bigint} PRIMARY KEY, writes {bigint} NOT NULL)",
    # The history without its second index: rows are appended in the order written (the
    # table's end, where a batch's rows share pages) and chained, newest to oldest, from the
    # bucket's ``head`` through each row's ``prev``; a row keeps a delta of its version's
    # contents, a full copy now and then (``core.history``). The old rows (full copies) are
    # moved over in order, and chained with the help of an index that lives only for that.
    """
    CREATE TABLE history_moving AS SELECT * FROM history;
    DROP TABLE history;
    CREATE TABLE history (
        id {serial},
        device {id} NOT NULL,
        job {id} NOT NULL,
        version {bigint} NOT NULL,
        at {real} NOT NULL,
        actor {text} NOT NULL,
        changes {text} NOT NULL,
        data {text},
        delta {text},
        prev {bigint}
    );
    INSERT INTO history (device, job, version, at, actor, changes, data)
        SELECT device, job, version, at, actor, changes, data FROM history_moving
        ORDER BY device, job, version;
    DROP TABLE history_moving;
    CREATE INDEX history_chaining ON history (device, job, version);
    UPDATE history SET prev = (SELECT p.id FROM history p WHERE p.device = history.device
        AND p.job = history.job AND p.version < history.version ORDER BY p.version DESC LIMIT 1);
    ALTER TABLE buckets ADD COLUMN head {bigint};
    UPDATE buckets SET head = (SELECT h.id FROM history h WHERE h.device = buckets.device
        AND h.job = buckets.job ORDER BY h.version DESC LIMIT 1);
    DROP INDEX history_chaining
    """,
    # The oldest version whose history may keep contents (``core.history``): what is
    # below it is read as removed until the store removes it (SQLite does so a page at a time).
    # The SQLite store also keeps the ids it needs to find the rows (``sqlitebatch``).
    """
    ALTER TABLE buckets ADD COLUMN kept_from {bigint} NOT NULL DEFAULT 0;
    ALTER TABLE buckets ADD COLUMN kept_id {bigint};
    ALTER TABLE buckets ADD COLUMN full_id {bigint};
    ALTER TABLE buckets ADD COLUMN full_version {bigint} NOT NULL DEFAULT 0
    """,
    # Where the SQLite store's walk begins when it drops a bucket's oldest entries: the ids
    # of its rows at every hundredth version (``sqlitebatch``), not its newest row.
    "ALTER TABLE buckets ADD COLUMN marks {text}",
)

#: A history row's columns, as the statements that insert one list its values.
HISTORY_ROW: Final = (
    "id",
    "device",
    "job",
    "version",
    "at",
    "actor",
    "changes",
    "data",
    "delta",
    "prev",
)
