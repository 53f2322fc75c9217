"""The export format: every record kind round-trips; times are RFC 3339, older files read."""

from __future__ import annotations

import json

import pytest

from devicebucket.core.errors import InvalidValueError
from devicebucket.core.model import BucketRecord, Change, HistoryRecord, Job, Record, TokenRecord
from devicebucket.wire.exchange import HEADER, dump_record, parse_records

RECORDS: list[Record] = [
    Job("signup", "s.py", {"type": "object"}, 1795618301.904138, 1795618302.5),
    TokenRecord("0123456789ab", "pixel", "f" * 64, 1795618301.25),
    BucketRecord("pixel", None, {"a": 1}, 3, 1795618303.000001),
    HistoryRecord("pixel", None, Change(3, 1795618303.000001, "local via cli", ("a",)), None),
    HistoryRecord(
        "pixel", "signup", Change(1, 1795618300.5, "admin token env via http", kept=True), {"b": 2}
    ),
]


def test_records_round_trip_with_rfc3339_times() -> None:
    lines = [json.dumps(HEADER)] + [dump_record(r) for r in RECORDS]
    assert json.loads(lines[0]) == {"devicebucket": "export", "format": 2}
    assert json.loads(lines[3])["updated_at"] == "2026-11-25T14:51:43.000001Z"
    assert parse_records(lines) == RECORDS


def test_a_format_1_export_with_unix_seconds_is_still_read() -> None:
    lines = [
        '{"devicebucket": "export", "format": 1}',
        '{"type":"bucket","device":"d","job":null,"version":2,"updated_at":1.5,"data":{}}',
    ]
    assert parse_records(lines) == [BucketRecord("d", None, {}, 2, 1.5)]


@pytest.mark.parametrize("at", ['"yesterday"', "true", "null"])
def test_a_bad_time_is_refused_naming_the_line(at: str) -> None:
    bad = f'{{"type":"bucket","device":"d","job":null,"version":2,"updated_at":{at},"data":{{}}}}'
    with pytest.raises(InvalidValueError, match="line 2: field 'updated_at'"):
        parse_records([json.dumps(HEADER), bad])
