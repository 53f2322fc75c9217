"""The export format: JSON Lines, a header line, then one job, token, bucket or history entry
a line (each record is one line; they are folded here for reading). Times are RFC 3339 in
UTC, to the microsecond (format 1, still read, had Unix seconds); buckets come before
history entries.

```
{"devicebucket": "export", "format": 2}
{"type": "job", "job": "signup", "automation": "signup.py", "schema": {...},
 "created_at": ..., "updated_at": ...}
{"type": "bucket", "device": "pixel-7-01", "job": null, "version": 3,
 "updated_at": ..., "data": {...}, "expires": {"otp": ...}}   # expires: if any
{"type": "history", "device": "pixel-7-01", "job": null, "version": 3, "at": ...,
 "actor": "local via cli", "added": [], "changed": ["a"], "removed": [], "data": {...}}
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..core.errors import InvalidValueError
from ..core.model import BucketRecord, Change, HistoryRecord, Job, Record, TokenRecord
from .shapes import rfc3339, seconds_of

__all__ = ["FORMAT", "HEADER", "RecordParser", "dump_record", "parse_records"]

FORMAT = 2
_READABLE = (1, 2)  # format 1: times as Unix seconds
HEADER: dict[str, Any] = {"devicebucket": "export", "format": FORMAT}


def dump_record(record: Record) -> str:
    """One line (without newline) of the export."""
    if isinstance(record, Job):
        line: dict[str, Any] = {
            "type": "job",
            "job": record.job,
            "automation": record.automation,
            "schema": record.schema,
            "created_at": _time(record.created_at),
            "updated_at": _time(record.updated_at),
        }
    elif isinstance(record, TokenRecord):
        line = {
            "type": "token",
            "id": record.id,
            "device": record.device,
            "hash": record.hash,
            "created_at": _time(record.created_at),
        }
    elif isinstance(record, HistoryRecord):
        line = {
            "type": "history",
            "device": record.device,
            "job": record.job,
            "version": record.change.version,
            "at": _time(record.change.at),
            "actor": record.change.actor,
            "added": list(record.change.added),
            "changed": list(record.change.changed),
            "removed": list(record.change.removed),
            "data": record.data,
        }
    else:
        line = {
            "type": "bucket",
            "device": record.device,
            "job": record.job,
            "version": record.version,
            "updated_at": _time(record.updated_at),
            "data": record.data,
        }
        if record.expires:  # its keys' expiry times, only when some expire
            line["expires"] = {k: _time(at) for k, at in sorted(record.expires.items())}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _field(line: dict[str, Any], name: str, kinds: tuple[type, ...], number: int) -> Any:
    value = line.get(name)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise InvalidValueError(f"line {number}: field {name!r} must be {names}")
    return value


def _time(seconds: float) -> str:
    return rfc3339(seconds, precise=True)


def _seconds(line: dict[str, Any], name: str, number: int) -> float:
    """A time field: RFC 3339 text (Unix seconds in format 1)."""
    value = _field(line, name, (str, int, float), number)
    if not isinstance(value, str):
        return float(value)
    try:
        return seconds_of(value)
    except ValueError:
        raise InvalidValueError(f"line {number}: field {name!r} is not an RFC 3339 time") from None


def _names(line: dict[str, Any], name: str, number: int) -> tuple[str, ...]:
    keys = _field(line, name, (list,), number)
    if not all(isinstance(k, str) for k in keys):
        raise InvalidValueError(f"line {number}: field {name!r} must be a list of str")
    return tuple(keys)


class RecordParser:
    """Parses an export one line at a time, so a long export never sits in memory twice."""

    def __init__(self) -> None:
        self.number = 0
        self.header_seen = False

    def feed(self, raw: str) -> Record | None:
        """The record on this line, None for the header or a blank line; raises if malformed."""
        self.number += 1
        number = self.number
        if not raw.strip():
            return None
        try:
            line = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidValueError(f"line {number}: not valid JSON") from None
        if not isinstance(line, dict):
            raise InvalidValueError(f"line {number}: expected a JSON object")
        if not self.header_seen:
            if line.get("devicebucket") != "export":
                raise InvalidValueError("line 1: not a devicebucket export (header missing)")
            if line.get("format") not in _READABLE:
                raise InvalidValueError(f"line 1: export format is not one of {_READABLE}")
            self.header_seen = True
            return None
        return _record(line, number)

    def finish(self) -> None:
        if not self.header_seen:
            raise InvalidValueError("empty file: not a devicebucket export")


def _record(line: dict[str, Any], number: int) -> Record:
    kind = line.get("type")
    if kind == "job":
        schema = line.get("schema")
        if schema is not None and not isinstance(schema, (dict, bool)):
            raise InvalidValueError(f"line {number}: field 'schema' must be an object or null")
        return Job(
            job=_field(line, "job", (str,), number),
            automation=_field(line, "automation", (str, type(None)), number),
            schema=schema,
            created_at=_seconds(line, "created_at", number),
            updated_at=_seconds(line, "updated_at", number),
        )
    if kind == "bucket":
        return BucketRecord(
            device=_field(line, "device", (str,), number),
            job=_field(line, "job", (str, type(None)), number),
            data=_field(line, "data", (dict,), number),
            version=_field(line, "version", (int,), number),
            updated_at=_seconds(line, "updated_at", number),
            expires=_expires(line, number),
        )
    if kind == "history":
        added, changed, removed = (_names(line, n, number) for n in ("added", "changed", "removed"))
        data = _field(line, "data", (dict, type(None)), number)
        change = Change(
            version=_field(line, "version", (int,), number),
            at=_seconds(line, "at", number),
            actor=_field(line, "actor", (str,), number),
            added=added,
            changed=changed,
            removed=removed,
            kept=data is not None,
        )
        return HistoryRecord(
            device=_field(line, "device", (str,), number),
            job=_field(line, "job", (str, type(None)), number),
            change=change,
            data=data,
        )
    if kind == "token":
        return TokenRecord(
            id=_field(line, "id", (str,), number),
            device=_field(line, "device", (str, type(None)), number),
            hash=_field(line, "hash", (str,), number),
            created_at=_seconds(line, "created_at", number),
        )
    raise InvalidValueError(f"line {number}: unknown record type {str(kind)[:32]!r}")


def _expires(line: dict[str, Any], number: int) -> dict[str, float] | None:
    """A bucket record's ``expires``: key to time (None when it has none)."""
    found = _field(line, "expires", (dict, type(None)), number)
    if found is None:
        return None
    times = {}
    for key, when in found.items():
        times[key] = _seconds({"expires": when}, "expires", number)
    return times


def parse_records(lines: Iterable[str]) -> list[Record]:
    """Parse a whole export, or raise InvalidValueError naming the first bad line.

    Everything is parsed before anything is written, so a malformed file writes nothing.
    """
    parser = RecordParser()
    records = [record for raw in lines if (record := parser.feed(raw)) is not None]
    parser.finish()
    return records
