"""The shapes the store contract speaks in: a bucket at a version, a device as listed, a
change, a job, and the records of an export."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final, TypeAlias

from .operations import KeyChanges
from .values import copy_json, decode

__all__ = [
    "DEVICE_SORTS",
    "BucketRecord",
    "Change",
    "DeviceInfo",
    "DevicePage",
    "HistoryRecord",
    "Job",
    "Record",
    "Snapshot",
    "TokenRecord",
    "UpdateFunction",
    "Written",
    "decode_change",
    "encode_changes",
]


class Snapshot:
    """One bucket at one version.

    ``text`` is the bucket's canonical JSON (``values.encode``) where a store has it at hand,
    so a server can answer without encoding again. ``data`` is the bucket as a dict, a
    fresh copy owned by the caller; given only the text, it is decoded on first access, and
    given the store's own dict of it (``source``, never changed afterwards), copied from it:
    with ``dict()`` where the store knows it holds no dict or list (``flat``).
    """

    __slots__ = ("_data", "_flat", "_source", "text", "updated_at", "version", "written")

    def __init__(
        self,
        data: dict[str, Any] | None,
        version: int,
        updated_at: float | None = None,
        text: str | None = None,
        written: Written | None = None,
        source: dict[str, Any] | None = None,
        flat: bool = False,
    ) -> None:
        if data is None and text is None:
            raise ValueError("a Snapshot needs its data or its JSON text")
        self._data = data
        self._source = source
        self._flat = flat
        self.version = version
        self.updated_at = updated_at
        self.text = text
        self.written = written  # what the write that made this version did, if it was one

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            if self._source is not None:
                source = self._source
                self._data = dict(source) if self._flat else copy_json(source)
                self._source = None
            else:
                assert self.text is not None
                self._data = decode(self.text)
        return self._data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return (self.data, self.version, self.updated_at) == (
            other.data,
            other.version,
            other.updated_at,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Snapshot(version={self.version}, updated_at={self.updated_at}, keys={len(self.data)})"
        )


@dataclass(slots=True)
class Written:
    """What a write did (the planner's): the keys it touched, the bucket after it (the
    store's own dict: never handed out), who and when. Watchers in the writer's process
    get the change from it without reading the history."""

    changes: KeyChanges
    data: dict[str, Any]
    actor: str
    at: float


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device as listed: its device bucket's key count, the JSON size of all its buckets."""

    device: str
    keys: int
    size: int
    updated_at: float
    jobs: tuple[str, ...] = ()


DEVICE_SORTS: Final[tuple[str, ...]] = ("device", "keys", "size", "updated_at")


@dataclass(frozen=True, slots=True)
class DevicePage:
    """One page of a device listing and how many devices matched in all."""

    devices: list[DeviceInfo]
    total: int


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a bucket, as the history keeps it: names of keys, never values."""

    version: int
    at: float
    actor: str
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    kept: bool = False  # whether this version's full contents are kept (restorable)


_ENCODE_CHANGES: Final = json.JSONEncoder(ensure_ascii=False).encode


@lru_cache(maxsize=1024)  # writers mostly touch the same few sets of keys, again and again
def encode_changes(
    added: tuple[str, ...], changed: tuple[str, ...], removed: tuple[str, ...]
) -> str:
    """How a change's key names (a ``KeyChanges``' three tuples) are stored: ``[added,
    changed, removed]`` as JSON. Cached by the tuples themselves: hashing them is C's work,
    where a KeyChanges' generated ``__hash__`` and ``__eq__`` are Python's."""
    return _ENCODE_CHANGES([added, changed, removed])


def decode_change(version: int, at: float, actor: str, changes: str, kept: object) -> Change:
    """A stored history row (``encode_changes`` text) as a Change."""
    added, changed, removed = json.loads(changes)
    return Change(version, at, actor, tuple(added), tuple(changed), tuple(removed), bool(kept))


@dataclass(frozen=True, slots=True)
class Job:
    """A registered job and the schema every writer of its job buckets enforces."""

    job: str
    automation: str | None = None
    schema: dict[str, Any] | bool | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class BucketRecord:
    """One bucket as exported: enough to restore it exactly, version included."""

    device: str
    job: str | None
    data: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    updated_at: float = 0.0
    expires: dict[str, float] | None = None  # its keys' expiry instants, if any


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as exported: its SHA-256 hash, never its secret."""

    id: str
    device: str | None
    hash: str
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One change of a bucket's history as exported: the change (who, when, which keys) and
    the version's contents where the history keeps them (then ``change.kept``)."""

    device: str
    job: str | None
    change: Change
    data: dict[str, Any] | None = None


Record: TypeAlias = Job | BucketRecord | TokenRecord | HistoryRecord
UpdateFunction: TypeAlias = Callable[
    [dict[str, Any]], "Mapping[str, Any] | Awaitable[Mapping[str, Any]]"
]
