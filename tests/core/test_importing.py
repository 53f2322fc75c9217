"""An import's records, checked and planned before anything is written (``core.importing``)."""

from __future__ import annotations

import json

import pytest

from devicebucket import InvalidValueError, Limits
from devicebucket.core.importing import check_records, plan_history, plan_import
from devicebucket.core.model import BucketRecord, Change, HistoryRecord, Job, Record, TokenRecord

LIMITS = Limits()


def test_records_are_sorted_by_kind_in_the_order_given() -> None:
    records: list[Record] = [
        BucketRecord("pixel-2", None, {"b": 1}, 4, 10.0),
        Job("checkout"),
        TokenRecord("0123456789ab", "pixel-2", "f" * 64, 5.0),
        BucketRecord("pixel-1", "checkout", {"a": (1, 2)}, 2, 11.0),
        HistoryRecord("pixel-2", None, Change(4, 10.0, "agent", ("b",)), {"b": 1}),
    ]
    checked = check_records(records, LIMITS)
    assert [b.device for b in checked.buckets] == ["pixel-2", "pixel-1"]
    assert checked.buckets[1].data == {"a": [1, 2]}  # normalized: a tuple is a JSON array
    assert [j.job for j in checked.jobs] == ["checkout"]
    assert [t.id for t in checked.tokens] == ["0123456789ab"]
    assert len(checked) == 5


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (TokenRecord("xyz", None, "f" * 64), "12-hex-digit id"),
        (BucketRecord("pixel", None, {"a": 1}, 0), "version must be an integer >= 1"),
        (BucketRecord("pixel", None, {"a": 1}, 1, 0.0, {"b": 5.0}), "expires must map its keys"),
        (BucketRecord("pixel", None, {"a": 1}, 1, 0.0, {"a": float("nan")}), "expires must map"),
        (BucketRecord("bad id!", None, {}), "device"),
        (HistoryRecord("pixel", None, Change(1, 0.0, "a\ud800")), "valid text"),
        (HistoryRecord("pixel", None, Change(1, 0.0, "x" * 1025)), "valid text"),
    ],
)
def test_a_bad_record_is_refused_with_what_is_wrong(record: object, message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        check_records([record], LIMITS)  # type: ignore[list-item]


def test_an_imported_bucket_row_keeps_its_version_time_and_expiries() -> None:
    (row,) = plan_import(
        [BucketRecord("pixel", None, {"otp": "1234", "n": 1}, 7, 42.5, {"otp": 100.0})], LIMITS
    )
    assert (row.device, row.job, row.version, row.updated_at) == ("pixel", "", 7, 42.5)
    assert json.loads(row.text) == {"otp": "1234", "n": 1}
    assert (row.keys, row.size) == (2, len(row.text))
    assert json.loads(row.expires or "null") == {"otp": 100.0}
    assert row.next_expiry == 100.0


def test_an_import_over_the_size_limit_is_refused() -> None:
    small = Limits(max_bucket_bytes=64)
    with pytest.raises(InvalidValueError, match="over the limit"):
        plan_import([BucketRecord("pixel", None, {"a": "x" * 100})], small)


def test_history_rows_carry_the_change_and_kept_contents() -> None:
    change = Change(3, 9.0, "cli", ("a",), ("b",), ("c",))
    rows = plan_history(
        [HistoryRecord("pixel", "job-1", change, {"a": 1}), HistoryRecord("pixel", None, change)]
    )
    (kept, device, job, text), (_, _, device_job, none) = rows
    assert (kept.version, kept.at, kept.actor) == (3, 9.0, "cli")
    assert json.loads(kept.changes) == [["a"], ["b"], ["c"]]
    assert (device, job, json.loads(text or "null")) == ("pixel", "job-1", {"a": 1})
    assert (device_job, none) == ("", None)
