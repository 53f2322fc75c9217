"""The export format: JSON Lines, a header line, then one job or bucket a line
(each record is one line; they are folded here for reading).

```
{"devicebucket": "export", "format": 1}
{"type": "job", "job": "signup", "automation": "signup.py", "schema": {...},
 "created_at": ..., "updated_at": ...}
{"type": "bucket", "device": "pixel-7-01", "job": null, "version": 3,
 "updated_at": ..., "data": {...}}
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .errors import InvalidValueError
from .store import BucketRecord, Job, Record

__all__ = ["FORMAT", "HEADER", "dump_record", "parse_records"]

FORMAT = 1
HEADER: dict[str, Any] = {"devicebucket": "export", "format": FORMAT}


def dump_record(record: Record) -> str:
    """One line (without newline) of the export."""
    if isinstance(record, Job):
        line: dict[str, Any] = {
            "type": "job",
            "job": record.job,
            "automation": record.automation,
            "schema": record.schema,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }
    else:
        line = {
            "type": "bucket",
            "device": record.device,
            "job": record.job,
            "version": record.version,
            "updated_at": record.updated_at,
            "data": record.data,
        }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _field(line: dict[str, Any], name: str, kinds: tuple[type, ...], number: int) -> Any:
    value = line.get(name)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise InvalidValueError(f"line {number}: field {name!r} must be {names}")
    return value


def parse_records(lines: Iterable[str]) -> list[Record]:
    """Parse a whole export, or raise InvalidValueError naming the first bad line.

    Everything is parsed before anything is written, so a malformed file writes nothing.
    """
    records: list[Record] = []
    header_seen = False
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            raise InvalidValueError(f"line {number}: not valid JSON") from None
        if not isinstance(line, dict):
            raise InvalidValueError(f"line {number}: expected a JSON object")
        if not header_seen:
            if line.get("devicebucket") != "export":
                raise InvalidValueError("line 1: not a devicebucket export (header missing)")
            if line.get("format") != FORMAT:
                raise InvalidValueError(
                    f"line 1: export format {line.get('format')!r} is not {FORMAT}"
                )
            header_seen = True
            continue
        kind = line.get("type")
        number_kinds = (int, float)
        if kind == "job":
            schema = line.get("schema")
            if schema is not None and not isinstance(schema, (dict, bool)):
                raise InvalidValueError(f"line {number}: field 'schema' must be an object or null")
            records.append(
                Job(
                    job=_field(line, "job", (str,), number),
                    automation=_field(line, "automation", (str, type(None)), number),
                    schema=schema,
                    created_at=float(_field(line, "created_at", number_kinds, number)),
                    updated_at=float(_field(line, "updated_at", number_kinds, number)),
                )
            )
        elif kind == "bucket":
            records.append(
                BucketRecord(
                    device=_field(line, "device", (str,), number),
                    job=_field(line, "job", (str, type(None)), number),
                    data=_field(line, "data", (dict,), number),
                    version=_field(line, "version", (int,), number),
                    updated_at=float(_field(line, "updated_at", number_kinds, number)),
                )
            )
        else:
            raise InvalidValueError(f"line {number}: unknown record type {kind!r}")
    if not header_seen:
        raise InvalidValueError("empty file: not a devicebucket export")
    return records
