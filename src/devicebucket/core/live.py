"""The live part of the store contract: watch a bucket's changes as they happen, resume after
a version, watch many buckets at once, and wait for a key. :class:`~devicebucket.core.store.Store`
inherits it; how changes reach watchers is :mod:`devicebucket.core.watching`.

A backend gives two hooks: ``_changes_after`` (the history after a version, with each
version's contents where kept) and ``_listen`` (a task that hears of writes made by other
processes or servers and calls ``Hub.notify``). Writes made through this store object notify
its watchers themselves (:meth:`Live._notify`).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import suppress
from typing import Any, Final

from .errors import DeviceBucketError, InvalidValueError, WaitTimeoutError
from .expiry import EXPIRY_ACTOR
from .ids import check_id
from .model import Change, Snapshot, Written
from .operations import Merge, Operation
from .watching import (
    BATCH,
    Event,
    HistoryEntry,
    Hub,
    Listen,
    Overflow,
    Resync,
    changes_from_history,
)

__all__ = ["Condition", "Live", "apply_event"]

Condition = str | Callable[[dict[str, Any]], bool]
#: How many buckets a watcher of many remembers the last version it delivered of.
_SEEN: Final = 10_000


def apply_event(bucket: dict[str, Any], event: Event) -> dict[str, Any]:
    """The bucket after ``event`` (``bucket`` is changed in place, a Resync replaces it)."""
    if isinstance(event, Resync):
        return dict(event.bucket)
    bucket.update(event.changed)
    for key in event.removed:
        bucket.pop(key, None)
    return bucket


def _holds(condition: Condition, bucket: dict[str, Any]) -> bool:
    return condition in bucket if isinstance(condition, str) else bool(condition(dict(bucket)))


class Live(ABC):
    """Watching, for every store (see the module's text)."""

    _hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]
    #: Whether this store counts its writes per minute (a store that keeps the counts).
    _counts_writes: bool = False
    _minutes: dict[int, int]
    _sweepers: int

    def _init_live(self) -> None:
        self._hubs = weakref.WeakKeyDictionary()
        self._minutes = {}
        self._sweepers = 0  # how many ``sweep_forever`` loops run on this store object

    def watch(
        self, device: str, *, job: str | None = None, since: int | None = None
    ) -> AsyncGenerator[Event, None]:
        """The bucket's changes as they happen (``BucketChange``: version, time, actor, the keys
        set with their values, the keys removed), for as long as the caller iterates.

        ``since=N`` first gives every version after N, once, in order, from the history; if the
        history no longer keeps them, one ``Resync`` with the whole bucket comes first instead.
        ``since=None`` starts after the current version."""
        device = check_id(device)
        job = None if job is None else check_id(job, "job id")
        if since is not None and (type(since) is not int or not 0 <= since < 2**63):
            raise InvalidValueError("since must be a version: an integer from 0 to 2**63 - 1")
        return self._watch(device, job, since)

    def watch_buckets(self, device: str | None = None) -> AsyncGenerator[Event | Overflow, None]:
        """The changes of every bucket (of ``device``, if given) from now on, as they happen;
        an ``Overflow`` when the watcher fell so far behind that it missed some."""
        return self._watch_buckets(None if device is None else check_id(device))

    async def wait_for(
        self,
        device: str,
        condition: Condition,
        *,
        job: str | None = None,
        timeout: float = 30.0,  # noqa: ASYNC109 - the contract's name
    ) -> Snapshot:
        """The bucket once ``condition`` holds: a key is present (a str), or a predicate on the
        bucket is true. Waits for changes as they happen, never polls; WaitTimeoutError after
        ``timeout`` seconds."""
        if not (isinstance(condition, str) or callable(condition)):
            raise InvalidValueError("wait_for needs a key (str) or a predicate on the bucket")
        if type(timeout) not in (int, float) or not 0 <= timeout <= 86_400:
            raise InvalidValueError("timeout must be a number of seconds from 0 to 86400")
        what = f"key {condition[:100]!r}" if isinstance(condition, str) else "the condition"
        try:
            async with asyncio.timeout(timeout):
                current = await self._get(device, job)
                bucket, version = current.data, current.version
                if _holds(condition, bucket):
                    return current
                async for event in self.watch(device, job=job, since=version):
                    bucket, version = apply_event(bucket, event), event.version
                    if _holds(condition, bucket):
                        return Snapshot(dict(bucket), version)
        except TimeoutError:
            raise WaitTimeoutError(f"{what} did not hold within {timeout:g} s") from None
        raise AssertionError("a watch never ends by itself")  # pragma: no cover

    # --- keys that expire (``core.expiry``) -----------------------------------------------

    async def expiries(self, device: str, *, job: str | None = None) -> dict[str, float]:
        """When the bucket's expiring keys expire (Unix seconds), for those not yet gone."""
        device = check_id(device)
        job = None if job is None else check_id(job, "job id")
        now = time.time()
        return {k: at for k, at in (await self._expiries(device, job)).items() if at > now}

    async def sweep_expired(self, *, limit: int = 500) -> int:
        """Remove the keys whose expiry has come, from up to ``limit`` buckets, each bucket's
        as a version of its own by the actor ``expiry`` (its watchers get it). Readers never
        see an expired key either way; a server sweeps every second. Returns how many
        buckets were due."""
        if type(limit) is not int or not 1 <= limit <= 10_000:
            raise InvalidValueError("limit must be an integer from 1 to 10000")
        return await self._sweep(limit)

    async def sweep_forever(self, every: float = 1.0) -> None:
        """:meth:`sweep_expired` every ``every`` seconds, and :meth:`flush_activity` every
        ten, until cancelled (a store that is away is tried again next time)."""
        flushed = time.monotonic()
        self._sweepers += 1
        try:
            while True:
                with suppress(DeviceBucketError):
                    while await self.sweep_expired() == 500:
                        pass
                    if time.monotonic() - flushed >= 10:
                        flushed = time.monotonic()
                        await self.flush_activity()
                await asyncio.sleep(every)
        finally:
            self._sweepers -= 1

    # --- activity: writes per minute --------------------------------------------------------

    async def activity(self, minutes: int = 60) -> list[tuple[float, int]]:
        """Writes per minute over the last ``minutes`` minutes, oldest first: (the minute's
        start, Unix seconds; how many writes changed a bucket), through every process that
        counts (each adds its counts every ten seconds; this one's are added here)."""
        if type(minutes) is not int or not 1 <= minutes <= 7 * 1440:
            raise InvalidValueError("minutes must be an integer from 1 to 10080")
        now = int(time.time() // 60)
        first = now - minutes + 1
        stored = await self._activity(first)
        mine = dict(self._minutes)
        return [(m * 60.0, stored.get(m, 0) + mine.get(m, 0)) for m in range(first, now + 1)]

    async def flush_activity(self) -> None:
        """Add this process's counts of writes to the store's (a server does it every ten
        seconds, a store as it closes)."""
        counts, self._minutes = self._minutes, {}
        if not counts:
            return
        try:
            await self._add_activity(counts)
        except BaseException:
            for minute, writes in counts.items():  # kept for the next time
                self._minutes[minute] = self._minutes.get(minute, 0) + writes
            raise

    async def latest_changes(self, limit: int = 50) -> list[tuple[str, str | None, Change]]:
        """The latest change of each of the ``limit`` buckets written last, newest first:
        (device, job, change)."""
        if type(limit) is not int or not 1 <= limit <= 1000:
            raise InvalidValueError("limit must be an integer from 1 to 1000")
        return await self._latest_changes(limit)

    # --- how it works, and the hooks ------------------------------------------------------

    def _notify(
        self, device: str, job: str | None, version: int, written: Written | None = None
    ) -> None:
        """A write through this store object put bucket (device, job) at ``version``, doing
        ``written`` (if known: then watchers here need not read it from the history)."""
        if written is not None and self._counts_writes:
            minute = int(written.at // 60)
            self._minutes[minute] = self._minutes.get(minute, 0) + 1
        self._to_hubs(Hub.notify, device, job, version, written)

    def _notify_removed(self, device: str) -> None:
        """Every bucket of ``device`` was removed through this store object."""
        self._to_hubs(Hub.removed, device)

    def _to_hubs(self, tell: Callable[..., None], *args: Any) -> None:
        """Call ``tell(hub, *args)`` on each loop's hub, on that hub's own loop."""
        if not self._hubs:
            return
        here = asyncio.get_running_loop()
        for loop, hub in list(self._hubs.items()):
            if loop is here:
                tell(hub, *args)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(tell, hub, *args)

    def _hub(self) -> Hub:
        loop = asyncio.get_running_loop()
        hub = self._hubs.get(loop)
        if hub is None:
            hub = self._hubs[loop] = Hub(self._changes_after, self._get, self._listener())
        return hub

    async def _watch(
        self, device: str, job: str | None, since: int | None
    ) -> AsyncGenerator[Event, None]:
        async with self._hub().feed(device, job) as feed:
            resets = feed.resets
            last = (await self._get(device, job)).version if since is None else since
            look = since is not None
            while True:
                found, look = await feed.after(last, resets, look=look), False
                for event in found:
                    if isinstance(event, Resync):
                        resets = feed.resets
                    last = event.version
                    yield event

    async def _watch_buckets(self, device: str | None) -> AsyncGenerator[Event | Overflow, None]:
        seen: OrderedDict[tuple[str, str | None], int] = OrderedDict()
        async with self._hub().tap(device) as tap:
            while True:
                if tap.overflowed:
                    tap.overflowed = False
                    yield Overflow(device)
                for d, j, first, last in await tap.next():
                    after = seen.pop((d, j), first - 1)
                    while after < last:
                        changes = None  # the bucket was removed: its versions start again
                        if first != 0:
                            entries = await self._changes_after(d, j, after, BATCH)
                            changes = changes_from_history(d, j, after, entries)
                        if changes is None:  # not kept, or removed
                            snapshot = await self._get(d, j)
                            yield Resync(d, j, snapshot.version, snapshot.data)
                            after = snapshot.version
                            break
                        if not changes:
                            break
                        for change in changes:
                            yield change
                        after = changes[-1].version
                    seen[(d, j)] = after
                    while len(seen) > _SEEN:
                        seen.popitem(last=False)

    def _listener(self) -> Listen | None:
        """What hears of writes made elsewhere (None: only this object writes)."""
        return None

    async def _changes_after(
        self, device: str, job: str | None, after: int, limit: int
    ) -> list[HistoryEntry]:
        """Up to ``limit`` history entries after version ``after``, in version order, each
        with a text that holds the values of the keys its version set, where kept (its delta
        or the whole bucket: ``core.history``). Without a history: none (a watcher then gets
        a Resync for each change)."""
        return []

    async def _sweep(self, limit: int) -> int:
        """Override where a sweep is one request; this finds the buckets due, then writes."""
        due = await self._due(time.time(), limit)
        for device, job in due:
            await self._change(device, job, Merge({}), None, EXPIRY_ACTOR)
        return len(due)

    async def _expiries(self, device: str, job: str | None) -> dict[str, float]:
        """The bucket's expiry instants, as stored ({}: none)."""
        return {}

    async def _activity(self, first: int) -> dict[int, int]:
        """Writes per minute (minutes since the epoch) from minute ``first`` on, as stored."""
        return {}

    async def _add_activity(self, counts: dict[int, int]) -> None:  # noqa: B027
        """Add writes per minute to the stored counts (and drop counts older than a week)."""

    async def _latest_changes(self, limit: int) -> list[tuple[str, str | None, Change]]:
        return []

    async def _due(self, now: float, limit: int) -> list[tuple[str, str | None]]:
        """Up to ``limit`` buckets with a key whose expiry is ``now`` or earlier."""
        return []

    @abstractmethod
    async def _get(self, device: str, job: str | None) -> Snapshot: ...

    @abstractmethod
    async def _change(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str | None,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot: ...
