"""Live changes: what a watcher of a bucket receives, and how one process hands each change to
its watchers.

A change is read from the history (who, when, which keys, and the values of the keys it set,
from the version's delta or whole copy: ``core.history``); a notification only says "bucket B is at
version V now". So whatever path a notification takes (a write in this process, or the
watched store's look for writes made by other processes and servers), and whether it
arrives once, twice or never, a watcher gets every version after the one it saw, once, in
order: a lost notification only delays it until the next one or the periodic check.

A watcher pulls: it asks its bucket's :class:`Feed` for the changes after the version it saw,
and the feed answers from the changes it read last (one history read serves every watcher of
the bucket) or reads the history again. A watcher that stops reading holds nothing but its
version; when it reads again and the history no longer keeps its next version's contents, it
gets one :class:`Resync` with the whole bucket instead (so no watcher can make a process hold
more than the history holds).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from .model import Change, Snapshot, Written
from .values import decode, encode

__all__ = [
    "BATCH",
    "BucketChange",
    "Event",
    "Feed",
    "Hub",
    "Overflow",
    "Resync",
    "Tap",
    "changes_from_history",
]

#: The most changes one history read returns (a watcher far behind reads several times).
BATCH: Final = 256
#: The most bytes of recent changes a feed keeps for its watchers (the contents' text lengths).
RECENT_BYTES: Final = 4 * 1024 * 1024
#: How long a watcher waits for a notification before it looks at its bucket all the same.
CHECK_EVERY: Final = 15.0


@dataclass(frozen=True, slots=True)
class BucketChange:
    """One version of a bucket: who made it and when, the keys it set (with their new values)
    and the keys it removed. ``device`` and ``job`` say which bucket (a fleet watch mixes
    them)."""

    device: str
    job: str | None
    version: int
    at: float
    actor: str
    changed: dict[str, Any]
    removed: tuple[str, ...]
    size: int = field(default=0, compare=False)  # the version's text length (memory bound)


@dataclass(frozen=True, slots=True)
class Resync:
    """The whole bucket at ``version``: what a watcher gets instead of the changes it missed
    when the history no longer keeps them (or the bucket was removed and started again)."""

    device: str
    job: str | None
    version: int
    bucket: dict[str, Any]


Event: TypeAlias = BucketChange | Resync
# A change and a text holding the values of the keys it set (a delta or the whole bucket).
HistoryEntry: TypeAlias = tuple[Change, str | None]
ReadChanges: TypeAlias = Callable[[str, str | None, int, int], Awaitable[list[HistoryEntry]]]
ReadBucket: TypeAlias = Callable[[str, str | None], Awaitable[Snapshot]]


def changes_from_history(
    device: str, job: str | None, after: int, entries: Sequence[HistoryEntry]
) -> list[BucketChange] | None:
    """The changes after version ``after`` from history entries in version order; None when
    the entries do not hold each following version with its contents (then only a resync
    can bring a watcher up to date)."""
    found = []
    for expected, (change, text) in enumerate(entries, after + 1):
        if change.version != expected or text is None:
            return None
        data = decode(text)
        changed = {k: data[k] for k in (*change.added, *change.changed)}
        found.append(
            BucketChange(
                device,
                job,
                change.version,
                change.at,
                change.actor,
                changed,
                change.removed,
                len(text),
            )
        )
    return found


def _change_of(device: str, job: str | None, version: int, written: Written) -> BucketChange:
    """The change a write made, its values copied (the write's dict is the store's own)."""
    changes = written.changes
    text = encode({k: written.data[k] for k in (*changes.added, *changes.changed)})
    return BucketChange(
        device, job, version, written.at, written.actor, decode(text), changes.removed, len(text)
    )


class Feed:
    """The watchers of one bucket on one event loop, and the changes they share."""

    def __init__(self, device: str, job: str | None, read: ReadChanges, get: ReadBucket) -> None:
        self.device, self.job = device, job
        self._read_changes, self._get = read, get
        self.latest = 0  # the highest version a notification announced
        self.resets = 0  # how often the bucket was removed (its versions start again)
        self.watchers = 0
        self._recent: deque[BucketChange] = deque()
        self._recent_bytes = 0
        self._wake = asyncio.Event()
        self._reading = asyncio.Lock()

    def notify(self, version: int, written: Written | None = None) -> None:
        """The bucket is at ``version`` now (0: it was removed), after a write that did
        ``written`` (if known: kept for the watchers when it follows the last change kept)."""
        if version == 0:
            if self.latest == 0 and not self._recent:
                return
            self.resets += 1
            self.latest = 0
            self._recent.clear()
            self._recent_bytes = 0
        else:
            newer = version > self.latest
            recent = self._recent
            if written is not None and (not recent or recent[-1].version == version - 1):
                self._remember([_change_of(self.device, self.job, version, written)])
            if not newer:
                return
            self.latest = max(self.latest, version)
        wake, self._wake = self._wake, asyncio.Event()
        wake.set()

    async def after(
        self, last: int, resets: int, wait: float = CHECK_EVERY, *, look: bool = False
    ) -> list[Event]:
        """The changes after version ``last`` (at most ``BATCH``), waiting up to ``wait``
        seconds for one; [] if none came. ``resets`` is the feed's count of resets when the
        watcher last looked: a reset since then brings a Resync. ``look``: read the history
        even if no notification announced a later version (a watcher's first call)."""
        wake = self._wake  # taken before looking, so a notification in between is not missed
        for attempt in range(2):
            if self.resets == resets and (found := self._from_recent(last)):
                return found
            if self.latest > last or self.resets != resets or look:
                return await self._read(last, resets)
            if attempt == 0:
                try:
                    await asyncio.wait_for(wake.wait(), wait)
                except TimeoutError:  # the periodic look, for a notification that was lost
                    return await self._read(last, resets)
        return []

    def _from_recent(self, last: int) -> list[Event]:
        recent = self._recent
        if not recent or not recent[0].version <= last + 1 <= recent[-1].version:
            return []
        start = last + 1 - recent[0].version
        return list(itertools.islice(recent, start, start + BATCH))

    async def _read(self, last: int, resets: int) -> list[Event]:
        """Read the history after ``last``, once for every watcher waiting on it."""
        async with self._reading:
            if self.resets == resets:
                if found := self._from_recent(last):
                    return found
                if changes := await self._changes(last):
                    return list(changes)
            snapshot = await self._get(self.device, self.job)
            if self.resets == resets:
                if snapshot.version == last:
                    self.latest = last  # announced, but not (or no longer) there
                    return []
                if snapshot.version > last and (changes := await self._changes(last)):
                    return list(changes)  # written between the two reads above
            return [Resync(self.device, self.job, snapshot.version, snapshot.data)]

    async def _changes(self, last: int) -> list[BucketChange] | None:
        entries = await self._read_changes(self.device, self.job, last, BATCH)
        changes = changes_from_history(self.device, self.job, last, entries)
        if changes:
            self._remember(changes)
        return changes

    def _remember(self, changes: list[BucketChange]) -> None:
        recent = self._recent
        if recent and changes[0].version > recent[-1].version + 1:
            recent.clear()
            self._recent_bytes = 0
        for change in changes:
            if recent and change.version <= recent[-1].version:
                continue  # a late reader's older changes: already here, or dropped
            recent.append(change)
            self._recent_bytes += change.size
        while len(recent) > 1 and self._recent_bytes > RECENT_BYTES:
            self._recent_bytes -= recent.popleft().size
        self.latest = max(self.latest, recent[-1].version)


class Tap:
    """A watcher of many buckets (a device's, or every one): the buckets notified that it has
    not read yet, each with the first and last version announced, as many as ``capacity``;
    past that it lost some (``overflowed``)."""

    def __init__(self, device: str | None, capacity: int = 10_000) -> None:
        self.device = device
        self.capacity = capacity
        self.queue: OrderedDict[tuple[str, str | None], tuple[int, int]] = OrderedDict()
        self.overflowed = False
        self._wake = asyncio.Event()

    def offer(self, device: str, job: str | None, version: int) -> None:
        if self.device is not None and device != self.device:
            return
        key = (device, job)
        if key in self.queue:  # one read will serve both
            first, last = self.queue[key]
            self.queue[key] = (min(first, version), max(last, version))
        elif len(self.queue) >= self.capacity:
            self.overflowed = True
        else:
            self.queue[key] = (version, version)
        self._wake.set()

    async def next(self, wait: float = CHECK_EVERY) -> list[tuple[str, str | None, int, int]]:
        """The buckets notified since the last call, with their first and last version
        (waiting up to ``wait`` seconds for one)."""
        if not self.queue and not self.overflowed:
            self._wake.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
        taken = [(d, j, first, last) for (d, j), (first, last) in self.queue.items()]
        self.queue.clear()
        return taken


@dataclass(frozen=True, slots=True)
class Overflow:
    """A watcher of many buckets fell so far behind that it missed changes (it should read
    what it shows again)."""

    device: str | None


Listen: TypeAlias = Callable[["Hub"], Coroutine[Any, Any, None]]


class Hub:
    """A store's watchers on one event loop: a feed per watched bucket, the taps, and the
    task that hears of writes made elsewhere (another process or server) while any watch."""

    def __init__(self, read: ReadChanges, get: ReadBucket, listen: Listen | None) -> None:
        self.feeds: dict[tuple[str, str | None], Feed] = {}
        self.taps: set[Tap] = set()
        self._read, self._get, self._listen = read, get, listen
        self._listener: asyncio.Task[None] | None = None

    def notify(
        self, device: str, job: str | None, version: int, written: Written | None = None
    ) -> None:
        """Bucket (device, job) is at ``version`` now (0: removed), after ``written``."""
        feed = self.feeds.get((device, job))
        if feed is not None:
            feed.notify(version, written)
        for tap in self.taps:
            tap.offer(device, job, version)

    def removed(self, device: str) -> None:
        """Every bucket of ``device`` was removed."""
        for (d, _job), feed in list(self.feeds.items()):
            if d == device:
                feed.notify(0)
        for tap in self.taps:
            tap.offer(device, None, 0)

    @property
    def watching(self) -> bool:
        return bool(self.feeds or self.taps)

    def _started(self) -> None:
        if self._listen is not None and (self._listener is None or self._listener.done()):
            self._listener = asyncio.get_running_loop().create_task(self._listen(self))

    async def _stopped(self) -> None:
        if not self.watching and self._listener is not None:
            listener, self._listener = self._listener, None
            listener.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await listener

    @asynccontextmanager
    async def feed(self, device: str, job: str | None) -> AsyncIterator[Feed]:
        """The feed of one bucket, for as long as the caller watches it."""
        feed = self.feeds.get((device, job))
        if feed is None:
            feed = self.feeds[(device, job)] = Feed(device, job, self._read, self._get)
        feed.watchers += 1
        self._started()
        try:
            yield feed
        finally:
            feed.watchers -= 1
            if feed.watchers == 0 and self.feeds.get((device, job)) is feed:
                del self.feeds[(device, job)]
            await self._stopped()

    @asynccontextmanager
    async def tap(self, device: str | None) -> AsyncIterator[Tap]:
        """A tap on every bucket (of ``device``, if given), for as long as the caller
        watches."""
        tap = Tap(device)
        self.taps.add(tap)
        self._started()
        try:
            yield tap
        finally:
            self.taps.discard(tap)
            await self._stopped()
