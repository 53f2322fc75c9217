"""An import's records, checked before anything is written (:func:`check_records`), and the
rows it writes (:func:`plan_import`, :func:`plan_history`): pure, as the write planner is
(``core.planner``), and the same for every backend."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from .errors import InvalidValueError
from .expiry import Expiries, encode_expiries
from .ids import check_id
from .limits import Limits
from .model import BucketRecord, HistoryRecord, Job, Record, TokenRecord, encode_changes
from .planner import BucketRow, HistoryRow
from .schema import check_schema
from .values import JSONObject, check_size, encode, is_valid_text, normalize_data

__all__ = ["Checked", "check_records", "plan_history", "plan_import"]


_HEX12: Final = re.compile(r"[0-9a-f]{12}")
_HEX64: Final = re.compile(r"[0-9a-f]{64}")


@dataclass(slots=True)
class Checked:
    """Exported records, checked and sorted by kind, each list in the order given."""

    jobs: list[Job] = field(default_factory=list)
    buckets: list[BucketRecord] = field(default_factory=list)
    tokens: list[TokenRecord] = field(default_factory=list)
    history: list[HistoryRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.jobs) + len(self.buckets) + len(self.tokens) + len(self.history)


def check_records(records: Iterable[Record], limits: Limits) -> Checked:
    """Check exported records before an import writes any (bucket and kept history data
    normalized). Raises on the first bad record."""
    checked = Checked()
    for record in records:
        if isinstance(record, Job):
            check_id(record.job, "job id")
            if record.schema is not None:
                check_schema(record.schema, limits)
            checked.jobs.append(record)
        elif isinstance(record, TokenRecord):
            if not (_HEX12.fullmatch(record.id) and _HEX64.fullmatch(record.hash)):
                raise InvalidValueError("a token record needs a 12-hex-digit id and a SHA-256 hash")
            if record.device is not None:
                check_id(record.device)
            checked.tokens.append(record)
        elif isinstance(record, HistoryRecord):
            checked.history.append(_checked_history(record, limits))
        else:
            _check_place(record.device, record.job, record.version)
            data = normalize_data(record.data, limits)
            expires = _checked_expires(record.expires, data)
            checked.buckets.append(
                BucketRecord(
                    record.device, record.job, data, record.version, record.updated_at, expires
                )
            )
    return checked


def _checked_expires(expires: object, data: JSONObject) -> Expiries | None:
    if expires is None:
        return None
    if not isinstance(expires, dict) or not all(
        isinstance(k, str) and k in data and type(at) in (int, float) and math.isfinite(at)
        for k, at in expires.items()
    ):
        raise InvalidValueError("a bucket record's expires must map its keys to times")
    return {k: float(at) for k, at in expires.items()} or None


def _check_place(device: str, job: str | None, version: object) -> None:
    check_id(device)
    if job is not None:
        check_id(job, "job id")
    if type(version) is not int or version < 1:
        raise InvalidValueError("bucket version must be an integer >= 1")


def _checked_history(record: HistoryRecord, limits: Limits) -> HistoryRecord:
    change = record.change
    _check_place(record.device, record.job, change.version)
    texts = (change.actor, *change.added, *change.changed, *change.removed)
    if len(change.actor) > 1024 or not all(is_valid_text(t) for t in texts):
        raise InvalidValueError("a history record's actor and key names must be valid text")
    data = None if record.data is None else normalize_data(record.data, limits)
    return HistoryRecord(record.device, record.job, change, data)


def plan_history(records: Iterable[HistoryRecord]) -> list[tuple[HistoryRow, str, str, str | None]]:
    """The history rows an import writes (``HistoryRow``, device, job, the kept contents'
    text or None)."""
    return [
        (
            HistoryRow(
                r.change.version,
                r.change.at,
                r.change.actor,
                encode_changes(r.change.added, r.change.changed, r.change.removed),
            ),
            r.device,
            r.job or "",
            None if r.data is None else encode(r.data),
        )
        for r in records
    ]


def plan_import(buckets: Iterable[BucketRecord], limits: Limits) -> list[BucketRow]:
    """The rows an import writes for these (checked) buckets, versions and times as given.

    An imported bucket starts a history of its own: the backend drops its old history rows.
    """
    rows = []
    for b in buckets:
        text = encode(b.data)
        size = check_size(text, limits)
        row = BucketRow(b.device, b.job or "", text, b.version, len(b.data), size, b.updated_at)
        row.expires, row.next_expiry = encode_expiries(b.expires)
        rows.append(row)
    return rows
