"""The write planner: what one write does to a stored bucket, decided once for every backend.

Pure: no I/O, no clock, no keys. A SQL backend reads the bucket's row under its lock, calls
:func:`plan_write`, and executes the plan (sealing the text if it encrypts); the rules of a
write (conditional versions, the merge, the size limit, the job's schema, the history record
and how much of it keeps contents) live only here. The same goes for registering a job
(:func:`plan_job`); an import's records are checked and planned by ``core.importing``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from .errors import InvalidSchemaError, JobConflictError, QuotaExceededError, SchemaViolationError
from .expiry import EXPIRY_ACTOR, Expiries, after_write, encode_expiries, expired
from .limits import Limits
from .model import (
    Job,
    Snapshot,
    Written,
    encode_changes,
)
from .operations import (
    Delete,
    KeyChanges,
    Merge,
    Operation,
    apply_operation,
    check_version,
    operation_changes,
)
from .schema import decode_schema, schema_text, validate_against_schema
from .values import JSONObject, check_size, decode, encode, is_flat

__all__ = [
    "DROP_EVERY",
    "EMPTY",
    "BucketMoved",
    "BucketRow",
    "Checked",
    "HistoryRow",
    "JobRow",
    "StoredBucket",
    "WritePlan",
    "check_quota",
    "plan_job",
    "plan_write",
]


@dataclass(slots=True)
class StoredBucket:
    """A bucket as read under its lock: its (opened) text, version and time.

    ``data`` is ``text`` decoded where the backend has it at hand (a cache); the planner
    consumes it. Without it, the planner decodes ``text``.
    """

    text: str
    version: int
    updated_at: float | None
    data: JSONObject | None = None
    expires: Expiries | None = None  # its keys' expiry instants (``core.expiry``)
    head: int | None = None  # the backend's id of its newest history row (never planned)
    kept_from: int = 0  # the oldest version whose history may keep contents
    # Where the SQLite store removes old contents later (never planned): the id of the
    # oldest history row that may keep contents, the bucket's first or that of version
    # ``kept_from`` (None: not known), and the id and version of the newest full copy made
    # every ``history_versions`` versions.
    kept_id: int | None = None
    full_id: int | None = None
    full_version: int = 0
    # Where it begins the walk that drops old entries (never planned): ``version:id`` of its
    # rows at multiples of ``DROP_EVERY``, oldest first (``sqlitebatch``).
    marks: str | None = None
    # Whether ``data`` holds no dict or list (``values.is_flat``; None: not known). A write's
    # result is copied for its caller with ``dict()`` where it does (``Snapshot``).
    flat: bool | None = None


EMPTY: Final = StoredBucket("{}", 0, None)  # never changed: the planner reads it only


@dataclass(frozen=True, slots=True)
class Checked:
    """A job bucket's text checked against a schema ahead of its write (``core.ahead``), and
    the refusal it met (None: it matches). The planner takes the verdict for the same text
    against the same schema, and raises BucketMoved for any other."""

    text: str
    schema: str
    error: SchemaViolationError | InvalidSchemaError | None


class BucketMoved(Exception):  # noqa: N818 - what happened, not a failure of the caller's
    """The bucket is no longer what a write's text was checked ahead against (another
    writer came between): the write changes nothing; check it again."""


# The rows and the plan are plain (not frozen) dataclasses: every write makes several, and a
# frozen dataclass costs four times as much to build.


@dataclass(slots=True)
class BucketRow:
    """The row of the ``buckets`` table, with the bucket's plain text."""

    device: str
    job: str  # '' for the device bucket
    text: str
    version: int
    keys: int
    size: int
    updated_at: float
    expires: str | None = None  # ``expiry.encode_expiries``
    next_expiry: float | None = None
    # The oldest version whose history may keep contents: the rows below it are read as
    # having none (SQLite removes them later, PostgreSQL in the write; not among ``values``).
    kept_from: int = 0

    def values(
        self, stored: str
    ) -> tuple[str, str, str, int, int, int, float, str | None, float | None]:
        """The row's column values in table order, with ``stored`` (the text, sealed or not)."""
        return (
            self.device,
            self.job,
            stored,
            self.version,
            self.keys,
            self.size,
            self.updated_at,
            self.expires,
            self.next_expiry,
        )


@dataclass(slots=True)
class HistoryRow:
    """The row of the ``history`` table that records a write (``core.history``): its
    contents are a delta, and, where ``full``, the whole bucket's text too."""

    version: int
    at: float
    actor: str
    changes: str  # ``model.encode_changes``: key names only, never values
    delta: str | None = None  # the new values of the keys added or changed, as JSON
    full: bool = False


@dataclass(slots=True)
class WritePlan:
    """What a write that changes its bucket writes.

    ``history`` is None when the history is off; ``forget_through`` is a version up to which
    older history rows drop their contents, ``drop_through`` one up to which they are deleted
    (None: nothing to forget or drop now). ``check_quota``: the bucket may have grown and the
    store has a quota, so the backend reads what the device's other buckets hold and passes
    it to :func:`check_quota` before it executes the plan.
    """

    row: BucketRow
    data: JSONObject
    history: HistoryRow | None
    forget_through: int | None
    drop_through: int | None = None
    check_quota: bool = False
    written: Written | None = None
    expires: Expiries | None = None
    swept: WritePlan | None = None  # the removal of expired keys, executed first
    flat: bool = False  # ``data`` holds no dict or list (``StoredBucket.flat``)

    def snapshot(self) -> Snapshot:
        row = self.row
        return Snapshot(
            None, row.version, row.updated_at, row.text, self.written, self.data, self.flat
        )

    def stored(self) -> StoredBucket:
        """The bucket as this plan leaves it (a shallow copy of its dict: operations
        replace top-level values only)."""
        row = self.row
        return StoredBucket(
            row.text,
            row.version,
            row.updated_at,
            dict(self.data),
            self.expires,
            None,
            row.kept_from,
            flat=self.flat,
        )


def plan_write(
    stored: StoredBucket,
    operation: Operation,
    expected_version: int | None,
    *,
    device: str,
    job: str,
    schema: str | None,
    limits: Limits,
    actor: str,
    now: float,
    expire_in: Mapping[str, float] | None = None,
    checked: Checked | None = None,
) -> WritePlan | None:
    """The plan of one write to the bucket ``stored``; None if the write changes nothing.

    ``job`` is '' for the device bucket; ``schema`` the text of the job's schema, if it has
    one; ``expire_in`` seconds for keys of a merge (``expiry.check_expire_in``); ``checked``
    the verdict on a text checked ahead (``core.ahead``): taken if it is this text, else
    BucketMoved. Raises
    ConflictError when ``expected_version`` is not the stored version, InvalidValueError
    when the result is too large, SchemaViolationError when it does not match the schema.
    A write that changes nothing keeps the version (1, 1.0 and true differ: their texts
    differ). Keys of ``stored`` whose expiry has come are removed first, as a version of
    their own by the actor ``expiry`` (``WritePlan.swept``; the whole plan when the write
    itself then changes nothing).
    """
    check_version(expected_version, stored.version)
    gone = expired(stored.expires, now) if stored.expires else None
    if not gone:
        return _plan(stored, operation, device, job, schema, checked, limits, actor, now, expire_in)
    removal = Delete(tuple(gone))
    swept = _plan(stored, removal, device, job, None, None, limits, EXPIRY_ACTOR, now, None)
    assert swept is not None  # the keys are there: removing them changes the bucket
    after = swept.stored()
    plan = _plan(after, operation, device, job, schema, checked, limits, actor, now, expire_in)
    if plan is None:
        return swept
    plan.swept = swept
    return plan


def _plan(
    stored: StoredBucket,
    operation: Operation,
    device: str,
    job: str,
    schema: str | None,
    checked: Checked | None,
    limits: Limits,
    actor: str,
    now: float,
    expire_in: Mapping[str, float] | None,
) -> WritePlan | None:
    current = decode(stored.text) if stored.data is None else stored.data
    changes = operation_changes(current, operation)  # before ``current`` is consumed
    data = apply_operation(current, operation)
    text = encode(data)
    old_expires = stored.expires
    expires = (
        after_write(old_expires, data, _touched(operation, data), expire_in, now)
        if old_expires or expire_in
        else None
    )
    if text == stored.text and expires == old_expires:
        return None
    size = check_size(text, limits)
    if schema is not None:
        _check_schema(data, text, schema, job, checked)
    if expires != old_expires:  # a key whose expiry alone changed is a changed key too
        changes = _with_expiry_changes(changes, old_expires or {}, expires or {})
    version = stored.version + 1
    keep = limits.history_versions
    history = None
    forget = None
    kept_from = stored.kept_from
    if keep:
        # A delta each version, the whole bucket every ``keep`` versions. Contents older
        # than the full copy before this one are forgotten then: so the last ``keep``
        # versions (at most twice as many) stay restorable, and most writes forget nothing.
        every = version % keep == 0
        # A restore or a clear is a full copy too (a delta could not give its key order).
        full = every or not isinstance(operation, (Merge, Delete))
        if full:
            delta = None
        elif isinstance(operation, Merge) and len(changes.added) + len(changes.changed) == len(
            operation.patch
        ):
            # Every key of the patch is new or changed (a write mostly is): the patch is the
            # delta (``_delta``'s order: its changed keys keep their places, its added ones
            # come last, in its order).
            delta = encode(operation.patch)
        else:
            delta = _delta(changes, operation, data)
        key_names = encode_changes(changes.added, changes.changed, changes.removed)
        history = HistoryRow(version, now, actor, key_names, delta, full)
        if every and version > keep:
            # ``kept_from``, the bucket row's record of it, moves up to the full copy before
            # this one (never down: a longer history does not bring contents back).
            forget = version - keep - 1
            kept_from = max(kept_from, version - keep)
    # The entries themselves (who, when, which keys) are dropped a hundred at a time past the
    # last ``history_entries``.
    entries = limits.history_entries
    drop = version - entries if keep and version % DROP_EVERY == 0 and version > entries else None
    expires_text, next_expiry = encode_expiries(expires)
    row = BucketRow(
        device, job, text, version, len(data), size, now, expires_text, next_expiry, kept_from
    )
    # A text of more bytes than the old one has characters may have grown (never otherwise).
    grows = limits.device_quota_bytes > 0 and size > len(stored.text)
    written = Written(changes, data, actor, now)
    # A merge of plain values into a flat bucket leaves it flat; anything else is looked at.
    if isinstance(operation, Merge) and stored.flat is not None:
        flat = stored.flat and is_flat(operation.patch)
    else:
        flat = is_flat(data)
    return WritePlan(row, data, history, forget, drop, grows, written, expires, flat=flat)


def _check_schema(
    data: JSONObject, text: str, schema: str, job: str, checked: Checked | None
) -> None:
    """Check the bucket against the schema, or take the verdict on it checked ahead."""
    if checked is None:
        validate_against_schema(data, schema, job)
    elif checked.schema != schema or checked.text != text:
        raise BucketMoved
    elif checked.error is not None:
        raise checked.error


def _delta(changes: KeyChanges, operation: Operation, data: JSONObject) -> str:
    """A merge's or a deletion's delta (``core.history``): the new values of the keys it
    changed, then of those it added in the order it added them, so that applied to the
    version before it gives this one, key order included. (A merge whose every key is new
    or changed has its patch as delta: the planner encodes that itself.)"""
    delta = {k: data[k] for k in changes.changed}
    if changes.added:
        added = set(changes.added)
        patch = operation.patch if isinstance(operation, Merge) else {}
        delta.update((k, data[k]) for k in patch if k in added)
    return encode(delta)


def _touched(operation: Operation, data: JSONObject) -> Iterable[str]:
    """The keys whose expiry a write clears: those it sets or removes (every one, for a
    clear or a restore)."""
    if isinstance(operation, Merge):
        return operation.patch.keys()
    if isinstance(operation, Delete):
        return operation.keys
    return data.keys()


def _with_expiry_changes(changes: KeyChanges, before: Expiries, after: Expiries) -> KeyChanges:
    listed = {*changes.added, *changes.changed, *changes.removed}
    moved = {
        k for k in before.keys() ^ after.keys() | {k for k in after if before.get(k) != after[k]}
    }
    extra = sorted(k for k in moved - listed if k in after or k in before)
    if not extra:
        return changes
    return KeyChanges(changes.added, tuple(sorted({*changes.changed, *extra})), changes.removed)


#: Entries past ``history_entries`` are dropped at every this many versions of a bucket.
DROP_EVERY: Final = 100


def check_quota(plan: WritePlan, others: int, limits: Limits) -> None:
    """Refuse (QuotaExceededError) a write after which the device's buckets, ``others``
    bytes besides the planned one, would hold more than its quota."""
    total = others + plan.row.size
    quota = limits.device_quota_bytes
    if quota and total > quota:
        raise QuotaExceededError(
            f"device {plan.row.device!r} would hold {total:,} bytes in its buckets, over its"
            f" quota of {quota:,} bytes (DEVICEBUCKET_DEVICE_QUOTA_BYTES)"
        )


@dataclass(frozen=True, slots=True)
class JobRow:
    """The row of the ``jobs`` table: the schema as its canonical text."""

    job: str
    automation: str | None
    schema: str | None
    created_at: float
    updated_at: float

    @classmethod
    def of(cls, job: Job) -> JobRow:
        text = None if job.schema is None else schema_text(job.schema)
        return cls(job.job, job.automation, text, job.created_at, job.updated_at)

    def values(self) -> tuple[str, str | None, str | None, float, float]:
        """The row's column values in table order."""
        return (self.job, self.automation, self.schema, self.created_at, self.updated_at)

    def to_job(self) -> Job:
        schema = None if self.schema is None else decode_schema(self.schema)
        return Job(self.job, self.automation, schema, self.created_at, self.updated_at)


def plan_job(
    existing: JobRow | None,
    job: str,
    automation: str | None,
    schema: str | None,
    replace_schema: bool,
    now: float,
) -> JobRow:
    """The job's row after a registration (``existing``: its row, read under a lock).

    ``schema=None`` keeps the stored schema unless ``replace_schema``; a different schema
    for a job that has one is refused with JobConflictError unless ``replace_schema``.
    """
    if existing is None:
        return JobRow(job, automation, schema, now, now)
    if schema is None and not replace_schema:
        schema = existing.schema
    elif existing.schema is not None and schema != existing.schema and not replace_schema:
        raise JobConflictError(
            f"job {job!r} is registered with a different bucket schema;"
            " replace it explicitly (--replace-schema / replace_schema=True)"
        )
    automation = automation if automation is not None else existing.automation
    return JobRow(job, automation, schema, existing.created_at, now)
