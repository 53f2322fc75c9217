"""The write planner is a pure function: the same stored row and operation give the same plan."""

from __future__ import annotations

import json

import pytest

from devicebucket import ConflictError, InvalidValueError, JobConflictError, Limits
from devicebucket.core.errors import SchemaViolationError
from devicebucket.core.operations import Clear, Delete, Merge
from devicebucket.core.planner import EMPTY, JobRow, StoredBucket, plan_job, plan_write


def plan(stored: StoredBucket, operation: Merge | Delete | Clear, **kw: object) -> object:
    args: dict[str, object] = {
        "device": "d",
        "job": "",
        "schema": None,
        "limits": Limits(history_versions=3),
        "actor": "test",
        "now": 10.0,
    }
    args.update(kw)
    expected = args.pop("expected_version", None)
    return plan_write(stored, operation, expected, **args)  # type: ignore[arg-type]


def test_a_first_write_plans_the_row_and_its_history() -> None:
    planned = plan(EMPTY, Merge({"a": 1}))
    assert planned is not None
    row = planned.row  # type: ignore[attr-defined]
    assert (row.device, row.job, row.text, row.version, row.keys, row.updated_at) == (
        "d",
        "",
        '{"a":1}',
        1,
        1,
        10.0,
    )
    history = planned.history  # type: ignore[attr-defined]
    assert (history.version, history.actor, history.changes) == (1, "test", '[["a"], [], []]')
    assert planned.forget_through is None  # type: ignore[attr-defined]


def test_a_write_that_changes_nothing_plans_nothing() -> None:
    assert plan(StoredBucket('{"a":1}', 4, 1.0), Merge({"a": 1})) is None
    assert plan(StoredBucket('{"a":1}', 4, 1.0), Delete(("b",))) is None


def test_retention_forgets_contents_every_keep_versions() -> None:
    planned = plan(StoredBucket('{"a":1}', 5, 1.0), Merge({"a": 2}))
    # Version 6 is a full copy; what is older than the full copy of 3 is forgotten.
    assert planned.history.full  # type: ignore[attr-defined]
    assert planned.forget_through == 2  # type: ignore[attr-defined]
    between = plan(StoredBucket('{"a":1,"b":0}', 6, 1.0), Merge({"a": 3, "c": 4}))
    assert between.history.delta == '{"a":3,"c":4}'  # type: ignore[attr-defined]
    assert not between.history.full  # type: ignore[attr-defined]
    assert between.forget_through is None  # type: ignore[attr-defined]
    off = plan(StoredBucket('{"a":1}', 5, 1.0), Clear(), limits=Limits(history_versions=0))
    assert off.history is None  # type: ignore[attr-defined]
    assert off.forget_through is None  # type: ignore[attr-defined]


def test_the_bucket_row_says_from_which_version_contents_are_kept() -> None:
    # The oldest version that keeps contents moves up with each forgetting, to the full copy
    # before this one, and never down: not with a longer history, nor with none.
    def kept_from(version: int, before: int = 0, keep: int = 3) -> int:
        stored = StoredBucket('{"a":1}', version, 1.0, kept_from=before)
        planned = plan(stored, Merge({"a": 2}), limits=Limits(history_versions=keep))
        return planned.row.kept_from  # type: ignore[attr-defined,no-any-return]

    assert kept_from(5) == 3  # version 6 forgets what is older than the full copy of 3
    assert kept_from(6, before=3) == 3
    assert kept_from(2) == 0  # version 3: nothing forgotten yet
    assert kept_from(9, before=6, keep=5) == 6  # forgets through 4, the row says 6 still
    assert kept_from(8, before=6, keep=0) == 6


def test_the_plan_refuses_conflicts_size_and_schema() -> None:
    with pytest.raises(ConflictError):
        plan(StoredBucket("{}", 2, 1.0), Merge({"a": 1}), expected_version=1)
    with pytest.raises(InvalidValueError, match="over the limit"):
        plan(EMPTY, Merge({"a": "x" * 100}), limits=Limits(max_bucket_bytes=50))
    schema = '{"properties":{"step":{"type":"integer"}}}'
    with pytest.raises(SchemaViolationError, match="signup"):
        plan(EMPTY, Merge({"step": "one"}), job="signup", schema=schema)


def test_job_registration_rule() -> None:
    new = plan_job(None, "j", "a.py", '{"type":"object"}', False, 5.0)
    assert new == JobRow("j", "a.py", '{"type":"object"}', 5.0, 5.0)
    kept = plan_job(new, "j", None, None, False, 6.0)
    assert kept == JobRow("j", "a.py", '{"type":"object"}', 5.0, 6.0)
    with pytest.raises(JobConflictError):
        plan_job(new, "j", None, "true", False, 7.0)
    assert plan_job(new, "j", None, "true", True, 7.0).schema == "true"


def test_a_delta_rebuilds_the_version_key_order_included() -> None:
    before = StoredBucket('{"a":1,"b":2,"c":3}', 1, 1.0)
    # Every key of the patch new or changed (the patch is the delta), then one that is not.
    for patch, delta in (
        ({"z": 9, "a": 5}, '{"z":9,"a":5}'),
        ({"z": 9, "b": 2, "a": 5}, '{"a":5,"z":9}'),
    ):
        planned = plan(before, Merge(patch))
        assert planned.history.delta == delta  # type: ignore[attr-defined]
        rebuilt = {"a": 1, "b": 2, "c": 3}
        rebuilt.update(json.loads(delta))
        assert list(rebuilt.items()) == list(planned.data.items())  # type: ignore[attr-defined]
        assert planned.row.text == '{"a":5,"b":2,"c":3,"z":9}'  # type: ignore[attr-defined]


def test_a_plan_says_whether_its_bucket_holds_no_container() -> None:
    def flat(stored: StoredBucket, operation: Merge | Delete | Clear) -> bool:
        planned = plan(stored, operation)
        assert planned is not None
        assert planned.snapshot().data == planned.data  # type: ignore[attr-defined]
        return bool(planned.flat)  # type: ignore[attr-defined]

    known = StoredBucket('{"a":1}', 1, 1.0, {"a": 1}, flat=True)
    assert flat(known, Merge({"b": "x"})) is True
    assert flat(known, Merge({"b": [1]})) is False
    assert flat(StoredBucket('{"a":[1]}', 1, 1.0, {"a": [1]}, flat=False), Merge({"b": 1})) is False
    # Not known (the text alone, or a dict as read): looked at.
    assert flat(StoredBucket('{"a":1}', 1, 1.0), Merge({"b": 2})) is True
    assert flat(StoredBucket('{"a":{"k":1}}', 1, 1.0), Merge({"b": 2})) is False
    assert flat(StoredBucket('{"a":{"k":1},"b":1}', 1, 1.0), Delete(("a",))) is True
    assert flat(StoredBucket('{"a":{"k":1}}', 1, 1.0, flat=False), Clear()) is True
