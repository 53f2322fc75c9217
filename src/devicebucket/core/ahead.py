"""A big job write checked against its job's schema off the event loop and the write lock.

The planner checks a job write's merged bucket against the schema, on the event loop that
serves every request, and on SQLite under the store's write lock, which every writer waits
for. A bucket of a megabyte takes jsonschema about half a second: a device that set one key
of such a bucket again and again held every other device's writes for as long each time.
So the SQLite store checks a big job write ahead of its batch, on a thread of its own
(``backends.turns``), against the bucket as it reads it then (:func:`check_ahead`); the planner
under the lock takes that verdict when it comes to the same text against the same schema
(``planner.Checked``), and checks again only when the bucket moved in between. The
PostgreSQL store, which holds no lock while it plans, plans a big job write on that thread.
Small writes (:func:`worth_checking_ahead`) are checked where they are planned, in about the
time the hop to a thread would take.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .errors import DeviceBucketError, InvalidSchemaError, SchemaViolationError
from .limits import Limits
from .operations import Merge, Operation, Replace
from .planner import Checked, StoredBucket, plan_write
from .schema import validate_against_schema

__all__ = [
    "AHEAD_SIZE",
    "AHEAD_TRIES",
    "AHEAD_WEIGHT",
    "check_ahead",
    "unchecked",
    "worth_checking_ahead",
]

#: A job write is checked ahead when its bucket's text is at least this long before it (in
#: characters or bytes; about a millisecond of jsonschema's time) ...
AHEAD_SIZE: Final = 4096
#: ... or what it writes weighs this much: a value each, a string a value a 256 characters.
AHEAD_WEIGHT: Final = 256
#: A write whose bucket moved past its check this many times is checked under the lock.
AHEAD_TRIES: Final = 3


def worth_checking_ahead(size: int, operation: Operation) -> bool:
    """Whether a job write to a bucket whose text is ``size`` long is checked ahead of it."""
    if size >= AHEAD_SIZE:
        return True
    if isinstance(operation, Merge):
        return _weighs_at_least(operation.patch, AHEAD_WEIGHT)
    if isinstance(operation, Replace):
        return _weighs_at_least(operation.data, AHEAD_WEIGHT)
    return False


def _weighs_at_least(value: Any, weight: int) -> bool:
    """Whether ``value`` weighs ``weight`` (walking no further than that far)."""
    left = weight
    pending = [value]
    while pending:
        item = pending.pop()
        left -= 1 + len(item) // 256 if isinstance(item, str) else 1
        if left <= 0:
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def check_ahead(
    stored: StoredBucket,
    operation: Operation,
    *,
    device: str,
    job: str,
    schema: str,
    limits: Limits,
    now: float,
    expire_in: Mapping[str, float] | None = None,
) -> Checked:
    """The bucket's text after ``operation`` on ``stored`` and its verdict against
    ``schema``. A write that changes nothing, or is refused for another reason, gets a
    verdict on no text (:func:`unchecked`): the write itself says so, under the lock, and is
    checked again if it changes the bucket after all. Consumes ``stored.data``."""
    try:
        plan = plan_write(
            stored,
            operation,
            None,
            device=device,
            job=job,
            schema=None,
            limits=limits,
            actor="",
            now=now,
            expire_in=expire_in,
        )
    except DeviceBucketError:
        return unchecked(schema)
    if plan is None:
        return unchecked(schema)
    try:
        validate_against_schema(plan.data, schema, job)
    except (SchemaViolationError, InvalidSchemaError) as refused:
        return Checked(plan.row.text, schema, refused)
    return Checked(plan.row.text, schema, None)


def unchecked(schema: str) -> Checked:
    """A verdict on no text, never taken (no bucket's text is empty)."""
    return Checked("", schema, None)
