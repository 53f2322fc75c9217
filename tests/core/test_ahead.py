"""A job write checked ahead (``core.ahead``): which writes are, what the check gives, and
that the planner takes its verdict only for the very text and schema it checked."""

from __future__ import annotations

import pytest

from devicebucket import Limits
from devicebucket.core.ahead import (
    AHEAD_SIZE,
    AHEAD_WEIGHT,
    check_ahead,
    unchecked,
    worth_checking_ahead,
)
from devicebucket.core.errors import InvalidValueError, SchemaViolationError
from devicebucket.core.operations import Clear, Delete, Merge, Operation, Replace
from devicebucket.core.planner import (
    EMPTY,
    BucketMoved,
    Checked,
    StoredBucket,
    WritePlan,
    plan_write,
)
from devicebucket.core.schema import schema_text
from devicebucket.core.values import encode

# At most one of "x" and "y".
ONE_OF_TWO = schema_text({"type": "object", "not": {"required": ["x", "y"]}})
LIMITS = Limits()


def stored(data: dict[str, object], version: int = 1) -> StoredBucket:
    return StoredBucket(encode(data), version, 1.0)


def ahead(bucket: StoredBucket, operation: Operation, schema: str = ONE_OF_TWO) -> Checked:
    return check_ahead(
        bucket, operation, device="d", job="j", schema=schema, limits=LIMITS, now=10.0
    )


def plan(
    bucket: StoredBucket, operation: Operation, checked: Checked | None, schema: str = ONE_OF_TWO
) -> WritePlan | None:
    return plan_write(
        bucket,
        operation,
        None,
        device="d",
        job="j",
        schema=schema,
        limits=LIMITS,
        actor="test",
        now=10.0,
        checked=checked,
    )


@pytest.mark.parametrize(
    ("size", "operation", "worth"),
    [
        (AHEAD_SIZE - 1, Merge({"a": 1}), False),
        (AHEAD_SIZE, Merge({"a": 1}), True),
        (AHEAD_SIZE, Delete(("a",)), True),
        (10, Delete(("a",)), False),
        (10, Clear(), False),
        (10, Merge({"a": list(range(AHEAD_WEIGHT - 3))}), False),
        (10, Merge({"a": list(range(AHEAD_WEIGHT))}), True),
        (10, Merge({"a": {"b": [{"c": n} for n in range(AHEAD_WEIGHT // 2)]}}), True),
        (10, Merge({"a": "x" * 256 * AHEAD_WEIGHT}), True),
        (10, Merge({"a": "x" * 1000}), False),
        (10, Replace({f"k{n}": n for n in range(AHEAD_WEIGHT)}), True),
        (10, Replace({"k": 1}), False),
    ],
    ids=[
        "small-bucket",
        "big-bucket",
        "delete-from-big",
        "delete-from-small",
        "clear-small",
        "short-list",
        "long-list",
        "nested",
        "long-text",
        "text",
        "big-restore",
        "small-restore",
    ],
)
def test_big_buckets_and_big_writes_are_checked_ahead(
    size: int, operation: Operation, worth: bool
) -> None:
    assert worth_checking_ahead(size, operation) is worth


def test_check_ahead_gives_the_planned_text_and_its_verdict() -> None:
    bucket = stored({"keep": 1})
    good = ahead(bucket, Merge({"x": 1}))
    assert good == Checked('{"keep":1,"x":1}', ONE_OF_TWO, None)
    bad = ahead(stored({"x": 1}), Merge({"y": 2}))
    assert bad.text == '{"x":1,"y":2}'
    assert isinstance(bad.error, SchemaViolationError)
    assert "nothing was written" in str(bad.error)


def test_check_ahead_leaves_other_refusals_and_no_change_to_the_write() -> None:
    same = stored({"x": 1})
    assert ahead(same, Merge({"x": 1})) == unchecked(ONE_OF_TWO)  # changes nothing
    assert plan(stored({"x": 1}), Merge({"x": 1}), unchecked(ONE_OF_TWO)) is None
    too_big = Merge({"x": "a" * LIMITS.max_bucket_bytes})
    assert ahead(EMPTY, too_big) == unchecked(ONE_OF_TWO)  # refused for its size
    with pytest.raises(InvalidValueError, match="limit"):
        plan(EMPTY, too_big, unchecked(ONE_OF_TWO))
    # A write checked as changing nothing that changes the bucket after all is checked again.
    with pytest.raises(BucketMoved):
        plan(stored({"x": 2}, version=2), Merge({"x": 1}), unchecked(ONE_OF_TWO))


def test_the_planner_takes_the_verdict_for_the_same_text_and_schema() -> None:
    bucket = stored({"keep": 1})
    # A verdict made up for the test: the planner raises it without checking again ...
    refused = SchemaViolationError("refused ahead", path="$", rule="test")
    with pytest.raises(SchemaViolationError, match="refused ahead"):
        plan(bucket, Merge({"x": 1}), Checked('{"keep":1,"x":1}', ONE_OF_TWO, refused))
    # ... and passes a text it was told matches.
    both = Merge({"x": 1, "y": 1})
    passed = plan(bucket, both, Checked('{"keep":1,"x":1,"y":1}', ONE_OF_TWO, None))
    assert passed is not None
    assert passed.data == {"keep": 1, "x": 1, "y": 1}


def test_a_verdict_on_a_bucket_that_moved_since_is_not_taken() -> None:
    """Checked ahead against version 1, "y" alone matches; by the time the write plans, a
    write of "x" made version 2, and "y" with it does not: the write is to be checked
    again, against version 2 (never under the lock)."""
    checked = ahead(stored({"keep": 1}, version=1), Merge({"y": 2}))
    assert checked.error is None
    moved = stored({"keep": 1, "x": 1}, version=2)
    with pytest.raises(BucketMoved):
        plan(moved, Merge({"y": 2}), checked)
    again = ahead(stored({"keep": 1, "x": 1}, version=2), Merge({"y": 2}))
    assert isinstance(again.error, SchemaViolationError)
    with pytest.raises(SchemaViolationError, match="does not match"):
        plan(moved, Merge({"y": 2}), again)
    # Without a verdict, the planner checks the bucket itself.
    with pytest.raises(SchemaViolationError, match="does not match"):
        plan(moved, Merge({"y": 2}), None)


def test_a_verdict_against_another_schema_is_not_taken() -> None:
    checked = ahead(stored({"x": 1}), Merge({"y": 2}), schema=schema_text({"type": "object"}))
    assert checked.error is None
    with pytest.raises(BucketMoved):
        plan(stored({"x": 1}), Merge({"y": 2}), checked)


def test_a_write_after_expired_keys_takes_the_verdict_on_its_own_text() -> None:
    """The removal of expired keys comes first, unchecked; the write's text is checked."""
    bucket = StoredBucket('{"x":1,"keep":1}', 1, 1.0, None, {"x": 5.0})
    checked = ahead(bucket, Merge({"y": 2}))
    assert checked == Checked('{"keep":1,"y":2}', ONE_OF_TWO, None)
    bucket = StoredBucket('{"x":1,"keep":1}', 1, 1.0, None, {"x": 5.0})
    planned = plan(bucket, Merge({"y": 2}), checked)
    assert planned is not None
    assert planned.swept is not None
    assert (planned.row.text, planned.row.version) == ('{"keep":1,"y":2}', 3)
