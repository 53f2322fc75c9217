"""Every statement of the SQL stores, written once for both databases: the tables' dialect
(``tables.Dialect``) says how each spells a placeholder, a column type or a list of jobs."""

from __future__ import annotations

from typing import Any, Final, Protocol

from ..core.model import DeviceInfo
from ..core.planner import JobRow
from .tables import HISTORY_ROW, MIGRATION_STEPS, Dialect

__all__ = ["NO_BUCKET", "SQL", "Row", "device_info", "job_row"]

_BUCKET_COLUMNS: Final = "device, job, data, version, keys, size, updated_at, expires, next_expiry"
#: ``SQL.select_for_write``'s row for a bucket that is not there.
NO_BUCKET: Final = ("{}", 0, None, None, None, None, 0, None, None, 0, None)


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
                    serial=d.serial_key,
                )
                for s in MIGRATION_STEPS
            )
        ]
        bucket = f"device = {p(1)} AND job = {p(2)}"
        # A bucket as read: its text, version, time, and its keys' expiries (the earliest
        # first, so a read decodes them only when one has come).
        read = "SELECT data, version, updated_at, next_expiry, expires"
        self.select_bucket = f"{read} FROM buckets WHERE {bucket}"
        # ... and, to write it, the ids of its history rows (the newest; ``sqlitebatch``).
        self.select_for_write = (
            f"{read}, head, kept_from, kept_id, full_id, full_version, marks FROM buckets"
            f" WHERE {bucket}"
        )

        def upsert(more: str = "", sets: str = "") -> str:
            columns = f"{_BUCKET_COLUMNS}, head{more}"
            count = columns.count(",") + 1
            return (
                f"INSERT INTO buckets ({columns}) VALUES"
                f" ({', '.join(p(n) for n in range(1, count + 1))})"
                " ON CONFLICT (device, job) DO UPDATE SET data = excluded.data,"
                " version = excluded.version, keys = excluded.keys, size = excluded.size,"
                " updated_at = excluded.updated_at, expires = excluded.expires,"
                f" next_expiry = excluded.next_expiry, head = excluded.head{sets}"
            )

        ids = ("kept_from", "kept_id", "full_id", "full_version", "marks")
        # A bucket imported: its history comes as it was kept, from version 0 on.
        self.upsert_bucket = upsert(
            sets=", kept_from = 0, kept_id = NULL, full_id = NULL, full_version = 0, marks = NULL"
        )
        # As the SQLite store's batches write it: the ids that say where its history's old
        # contents are (``sqlitebatch``), on the writes that change them, left as they are
        # by the rest (fewer values to bind and write).
        self.upsert_bucket_ids = upsert(
            "".join(f", {c}" for c in ids), "".join(f", {c} = excluded.{c}" for c in ids)
        )
        self.upsert_bucket_head = upsert()
        self.update_bucket = (
            f"UPDATE buckets SET data = {p(3)}, version = {p(4)}, keys = {p(5)}, size = {p(6)},"
            f" updated_at = {p(7)}, expires = {p(8)}, next_expiry = {p(9)} WHERE {bucket}"
        )
        self.select_head = f"SELECT head FROM buckets WHERE {bucket}"
        self.set_head = f"UPDATE buckets SET head = {p(3)} WHERE {bucket}"
        self.select_expiries = f"SELECT expires FROM buckets WHERE {bucket}"
        self.add_activity = (
            f"INSERT INTO activity VALUES ({p(1)}, {p(2)}) ON CONFLICT (minute)"
            " DO UPDATE SET writes = activity.writes + excluded.writes"
        )
        self.prune_activity = f"DELETE FROM activity WHERE minute < {p(1)}"
        self.select_activity = (
            f"SELECT minute, writes FROM activity WHERE minute >= {p(1)} ORDER BY minute"
        )
        self.latest_written = (
            "SELECT b.device, b.job, h.version, h.at, h.actor, h.changes FROM"
            f" (SELECT device, job, version, head FROM buckets ORDER BY updated_at DESC"
            f" LIMIT {p(1)}) b JOIN history h ON h.id = b.head AND h.version = b.version"
            " ORDER BY h.at DESC"
        )
        self.due = (
            f"SELECT device, job FROM buckets WHERE next_expiry <= {p(1)}"
            f" ORDER BY next_expiry LIMIT {p(2)}"
        )
        given = HISTORY_ROW[1:]  # the id: the database's
        self.insert_history = (
            f"INSERT INTO history ({', '.join(given)})"
            f" VALUES ({', '.join(p(n) for n in range(1, len(given) + 1))})"
        )
        self.last_history_id = "SELECT COALESCE(MAX(id), 0) FROM history"
        self._param = p

        def chain(
            more: str,
            seed: str = f"b.device = {p(1)} AND b.job = {p(2)}",
            anchor: tuple[str, str] | None = None,
        ) -> str:
            """The history rows of the buckets ``seed`` selects (by default the one bucket),
            from each one's newest, one ``prev`` at a time while the row just read satisfies
            ``more`` (over ``c.version``, ``c.n``, its place from the newest, 1-based,
            ``c.kept``, whether it keeps contents, and ``c.whole``, whether a full copy). A
            row whose id was reused after its entry was dropped is told by its bucket and
            version, and ends the chain. With ``anchor`` (an id and a version), the one
            bucket's rows from that one down, if it is the bucket's row of that version."""
            row = "h.id, h.job, h.version, h.prev, h.data IS NOT NULL OR h.delta IS NOT NULL,"
            row += " h.data IS NOT NULL"
            first = f"buckets b JOIN history h ON h.id = b.head WHERE {seed}"
            if anchor is not None:
                first = (
                    f"history h WHERE h.id = {anchor[0]} AND h.device = {p(1)}"
                    f" AND h.job = {p(2)} AND h.version = {anchor[1]}"
                )
            return (
                "WITH RECURSIVE chain(id, job, version, prev, kept, whole, n) AS"
                f" (SELECT {row}, 1 FROM {first}"
                f" UNION ALL SELECT {row}, c.n + 1 FROM chain c JOIN history h"
                f" ON h.id = c.prev AND h.device = {p(1)} AND h.job = c.job"
                f" AND h.version < c.version WHERE {more})"
            )

        # Each history read gives the bucket's ``kept_from`` too (``core.history``).
        kept_from = f"(SELECT kept_from FROM buckets WHERE {bucket})"
        # The newest ``limit`` entries, and below them the deltas down to a full copy, which
        # tell whether the last ones are kept: in version order, with (has a full copy,
        # has a delta) for ``history.kept_flags``.
        self.select_history = (
            f"{chain(f'(c.n < {p(3)} OR (c.kept AND NOT c.whole))')} SELECT h.version, h.at,"
            f" h.actor, h.changes, h.data IS NOT NULL, h.delta IS NOT NULL, {kept_from} FROM"
            " chain c JOIN history h ON h.id = c.id ORDER BY c.version"
        )
        # A version and the rows below it down to a full copy, in version order, for
        # ``history.contents``.
        self.select_past = (
            f"{chain(f'(c.version > {p(3)} OR (c.kept AND NOT c.whole))')} SELECT h.version,"
            f" h.changes, h.data, h.delta, h.at, {kept_from} FROM chain c JOIN history h"
            f" ON h.id = c.id WHERE c.version <= {p(3)} ORDER BY c.version"
        )
        # A change's delta holds the values a watcher reports (a full copy holds them too).
        self.changes_after = (
            f"{chain(f'c.version > {p(3)}')} SELECT h.version, h.at, h.actor, h.changes,"
            f" COALESCE(h.delta, h.data), {kept_from} FROM chain c JOIN history h"
            f" ON h.id = c.id WHERE c.version > {p(3)} ORDER BY c.version LIMIT {p(4)}"
        )

        # Contents are forgotten down to the first older row that has none already (on
        # SQLite, only in rows up to the id ``p(4)``: ``sweep_contents`` takes the rest).
        def forgetting(through: str) -> str:
            return (
                "UPDATE history SET data = NULL, delta = NULL WHERE id IN"
                f" ({chain(f'(c.version > {through} OR c.kept)')} SELECT id FROM chain"
                f" WHERE version <= {through} AND kept"
            )

        self._forgetting = forgetting
        forget = forgetting(p(3))
        self.forget_contents = f"{forget})"
        self.forget_contents_upto = f"{forget} AND id <= {p(4)})"
        # The contents below their bucket's ``kept_from`` in the rows of ids after ``p(1)``
        # up to ``p(2)``, which lie on a few pages.
        self.sweep_contents = (
            f"UPDATE history SET data = NULL, delta = NULL WHERE id > {p(1)} AND id <= {p(2)}"
            " AND (data IS NOT NULL OR delta IS NOT NULL) AND version < (SELECT b.kept_from"
            " FROM buckets b WHERE b.device = history.device AND b.job = history.job)"
        )
        everything = chain("1 = 1")
        self.drop_history = (
            f"DELETE FROM history WHERE id IN ({everything} SELECT id FROM chain"
            f" WHERE version <= {p(3)})"
        )
        # The same from the row of id ``p(4)`` down, if it is the bucket's row of version
        # ``p(5)`` (a mark, above the newest entry dropped): not from the newest row.
        self.drop_history_from = (
            f"DELETE FROM history WHERE id IN ({chain('1 = 1', anchor=(p(4), p(5)))}"
            f" SELECT id FROM chain WHERE version <= {p(3)})"
        )
        self.forget_history = f"DELETE FROM history WHERE id IN ({everything} SELECT id FROM chain)"
        self.delete_device_history = (
            "DELETE FROM history WHERE id IN"
            f" ({chain('1 = 1', seed=f'b.device = {p(1)}')} SELECT id FROM chain)"
        )
        self.bucket_version = f"SELECT version FROM buckets WHERE {bucket}"
        self.written_since = (
            f"SELECT device, job, version, updated_at FROM buckets WHERE updated_at > {p(1)}"
            " ORDER BY updated_at LIMIT 10000"
        )
        self.device_bytes_besides = (
            f"SELECT COALESCE(SUM(size), 0) FROM buckets WHERE device = {p(1)} AND job <> {p(2)}"
        )
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
        # A job's schema and the size of a device's bucket of it (``core.ahead``).
        self.schema_and_size = (
            f"SELECT ({self.job_schema}),"
            f" (SELECT size FROM buckets WHERE device = {p(2)} AND job = {p(1)})"
        )
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
            "SELECT h.device, h.job, h.version, h.at, h.actor, h.changes, h.data, h.delta,"
            " (SELECT b.kept_from FROM buckets b WHERE b.device = h.device AND b.job = h.job)"
            " FROM history h ORDER BY h.device, h.job, h.version"
        )
        self.export_buckets = (
            "SELECT device, job, data, version, updated_at, expires FROM buckets"
            " ORDER BY device, job"
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
        # Every stored text that may be sealed: (table, column).
        sealed = (("buckets", "data"), ("history", "data"), ("history", "delta"))
        self.unsealed = {
            (table, column): f"SELECT {d.row_id}, device, job, {column}, version FROM {table}"
            f" WHERE {column} IS NOT NULL AND {column} NOT LIKE {p(1)} LIMIT {p(2)}{d.lock}"
            for table, column in sealed
        }
        self.reseal = {
            (table, column): f"UPDATE {table} SET {column} = {p(2)} WHERE {d.row_id} = {p(1)}"
            for table, column in sealed
        }

    def forget_contents_at(self, through: int) -> str:
        """``forget_contents`` with its version the parameter numbered ``through`` (and the
        bucket's device and job the first two), for a statement that has more."""
        return f"{self._forgetting(self._param(through))})"

    def insert_history_rows(self, rows: int) -> str:
        """``insert_history`` with the ids given, for ``rows`` rows at once (the SQLite
        store's batches give their rows' ids, and insert them in one statement)."""
        p, width = self._param, len(HISTORY_ROW)
        values = (
            f"({', '.join(p(row * width + n) for n in range(1, width + 1))})" for row in range(rows)
        )
        return f"INSERT INTO history ({', '.join(HISTORY_ROW)}) VALUES {', '.join(values)}"


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
