"""``copy``: move everything from one store to another, then prove the copy is whole."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.errors import DeviceBucketError
from ..core.model import BucketRecord, HistoryRecord, Job, Record
from ..core.store import Store
from ..core.values import encode
from ..wire.exchange import dump_record

__all__ = ["CopyError", "Inventory", "copy_store", "inventory"]


class CopyError(DeviceBucketError):
    """The target was not empty, or the copy does not match its source."""


@dataclass
class Inventory:
    """What a store holds: counts, and a checksum of each device's buckets."""

    jobs: int = 0
    tokens: int = 0
    buckets: int = 0
    history: int = 0
    devices: dict[str, str] = field(default_factory=dict)
    _lines: dict[str, list[bytes]] = field(default_factory=dict, repr=False)

    def add(self, record: Record) -> None:
        if isinstance(record, Job):
            self.jobs += 1
        elif isinstance(record, BucketRecord):
            self.buckets += 1
            self._line(record.device, record.job, record.version, encode(record.data))
        elif isinstance(record, HistoryRecord):
            self.history += 1
            self._line(record.device, dump_record(record))  # as exact as an export carries it
        else:
            self.tokens += 1

    def _line(self, device: str, *fields: object) -> None:
        line = "\t".join(map(str, fields))
        self._lines.setdefault(device, []).append(hashlib.sha256(line.encode()).digest())

    def finish(self) -> Inventory:
        """Fold each device's line hashes (in sorted order) into one checksum."""
        for device, lines in self._lines.items():
            self.devices[device] = hashlib.sha256(b"".join(sorted(lines))).hexdigest()
        self._lines.clear()
        return self

    def summary(self) -> dict[str, int]:
        return {
            "jobs": self.jobs,
            "tokens": self.tokens,
            "buckets": self.buckets,
            "history": self.history,
            "devices": len(self.devices),
        }


async def inventory(store: Store, *, history: bool = True) -> Inventory:
    found = Inventory()
    async for record in store.export(history=history):
        found.add(record)
    return found.finish()


async def _is_empty(store: Store) -> bool:
    return not (await store.devices(limit=1) or await store.jobs() or await store.tokens())


async def copy_store(
    source: Store,
    target: Store,
    *,
    force: bool = False,
    history: bool = True,
    chunk: int = 1000,
    progress: Callable[[int], None] = lambda n: None,
) -> Inventory:
    """Copy every job, token and bucket (with versions) and, unless ``history=False``, every
    history entry (with the contents it keeps), then verify the target.

    Refuses a target that holds anything unless ``force``. Raises CopyError naming what
    differs if the target's counts or per-device checksums do not match the source's.
    """
    if not force and not await _is_empty(target):
        raise CopyError(
            f"target {target.url} is not empty; copy into an empty store, or pass --force"
            " to write over what it holds"
        )
    copied = Inventory()
    batch: list[Record] = []
    async for record in source.export(history=history):
        copied.add(record)
        batch.append(record)
        if len(batch) >= chunk:
            await target.import_records(batch)
            progress(len(batch))
            batch = []
    if batch:
        await target.import_records(batch)
        progress(len(batch))
    copied.finish()
    found = await inventory(target, history=history)
    differing = sorted(
        d for d, checksum in copied.devices.items() if found.devices.get(d) != checksum
    )
    if differing:
        shown = ", ".join(differing[:5]) + (" …" if len(differing) > 5 else "")
        raise CopyError(f"copy does not match its source for {len(differing)} device(s): {shown}")
    if not force and found.summary() != copied.summary():
        raise CopyError(f"copy does not match its source: {found.summary()} != {copied.summary()}")
    return copied
