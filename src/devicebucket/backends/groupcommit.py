"""Group commit for the SQLite store: writers on one event loop share a transaction.

The first writer to arrive leads: it yields to the loop, so every writer that is ready joins
its batch, and yields again while the batch keeps growing (adaptive group commit); then it
commits the batch and answers the others. It yields only while something else is ready to
run: a lone writer commits at once, and a batch whose writers have all joined commits
without a last empty lap of the loop. A lap is never skipped for long, though
(``MAX_SECONDS_WITHOUT_LAP``): a loop of writes with nothing else ready would otherwise never
let the event loop poll for I/O or run its timers. A loop with nothing that a lap could serve
(no timers, no signal handlers, no file watched but its own wake-up pipe: a script's loop of
writes) gets none.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..core.model import Snapshot
from ..core.operations import Operation
from ..core.planner import Checked, StoredBucket

__all__ = ["BucketTurn", "Pending", "ThreadState", "ThreadStates", "answer", "group_commit"]


@dataclass(slots=True)
class Pending:
    device: str
    job: str
    operation: Operation
    expected_version: int | None
    actor: str
    expire_in: Mapping[str, float] | None = None
    checked: Checked | None = None  # its job bucket checked ahead (``core.ahead``)
    future: asyncio.Future[Snapshot] | None = None
    result: Snapshot | BaseException | None = None


@dataclass(slots=True)
class BucketTurn:
    """A bucket's big job writes on one thread, one at a time (``sqliteahead``)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    writers: int = 0  # that hold the lock or wait for it


_CACHE_BYTES = 16 * 1024 * 1024
_MAX_OTHERS = 100_000  # devices whose other buckets' bytes a connection remembers


class ThreadState:
    """One thread's (``ThreadStates``): its connection, its event loop's pending write
    batch, its write cache (the buckets it last wrote, and what their devices' other
    buckets hold)."""

    __slots__ = (
        "bucket_turns",
        "cache",
        "cache_bytes",
        "conn",
        "data_version",
        "history_id",
        "lapped_at",
        "leader_loop",
        "others",
        "pending",
        "pid",
        "schemas",
        "swept",
        "watched_version",
        "young",
        "young_bytes",
    )

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.pid = 0
        self.pending: list[Pending] = []
        # The event loop of the writer leading this thread's batch; None while none leads.
        # A follower runs on the same loop (a thread runs one at a time) and takes it from
        # here: asyncio.get_running_loop() asks the kernel for the process id each call.
        self.leader_loop: asyncio.AbstractEventLoop | None = None
        self.cache: dict[tuple[str, str], StoredBucket] = {}
        self.cache_bytes = 0
        self.schemas: dict[str, str | None] = {}
        # The buckets whose big job writes take turns here (``sqliteahead``).
        self.bucket_turns: dict[tuple[str, str], BucketTurn] = {}
        self.data_version: int | None = None
        self.watched_version: int | None = None  # PRAGMA data_version, as watchers last saw
        self.lapped_at = 0.0  # when a leader last let the loop run (``time.monotonic``)
        self.history_id: int | None = None  # the id of the history row last written
        # The history rows up to this id have had their old contents removed, as far as
        # this connection knows (``sqlitebatch.HistoryRows``); kept when the cache is dropped.
        self.swept: int | None = None
        # This connection's batches whose rows have not come ``forget_lag`` rows behind yet:
        # (the id of the last, the characters of contents they hold), and their sum. Small
        # batches share an entry (``sqlitebatch.YOUNG_SHARE``).
        self.young: deque[tuple[int, int]] = deque()
        self.young_bytes = 0
        # Per device: a job, and the bytes of the device's buckets besides that job's (for
        # its quota), as this connection last read or wrote them.
        self.others: dict[str, tuple[str, int]] = {}

    def drop_cache(self) -> None:
        self.cache.clear()
        self.schemas.clear()
        self.cache_bytes = 0
        self.data_version = None
        self.history_id = None
        self.others.clear()

    def remember_others(self, device: str, job: str, others: int) -> None:
        """Keep the bytes of ``device``'s buckets besides its bucket ``job``."""
        if len(self.others) >= _MAX_OTHERS:
            self.others.clear()
        self.others[device] = (job, others)

    def remember(self, key: tuple[str, str], entry: StoredBucket) -> None:
        """Keep a bucket as this connection last wrote it (its ``data`` is never handed out)."""
        old = self.cache.pop(key, None)
        if old is not None:
            self.cache_bytes -= len(old.text)
        self.cache[key] = entry
        self.cache_bytes += len(entry.text)
        while self.cache_bytes > _CACHE_BYTES and self.cache:
            evicted = self.cache.pop(next(iter(self.cache)))
            self.cache_bytes -= len(evicted.text)


class ThreadStates(threading.local):
    """Each thread's ThreadState, made on its first use there. A plain object, held here:
    an attribute of a ``threading.local`` takes ~28 ns to read against ~6 ns for a plain
    object's, and a lone write reads the state's some forty times."""

    def __init__(self) -> None:
        self.state = ThreadState()


async def group_commit(
    state: ThreadState, mine: Pending, max_batch: int, commit: Callable[[list[Pending]], None]
) -> Snapshot:
    """Queue ``mine`` on this thread's batch; lead the batch (calling ``commit`` on up to
    ``max_batch`` writes at a time) or wait for its leader's answer."""
    state.pending.append(mine)
    if state.leader_loop is not None:
        # Another writer on this loop leads the batch; it will answer us.
        mine.future = state.leader_loop.create_future()
        return await mine.future
    loop = state.leader_loop = asyncio.get_running_loop()
    try:
        joined = 0
        while joined < len(state.pending) < max_batch and _lap_due(loop, state):
            joined = len(state.pending)
            state.lapped_at = time.monotonic()
            await asyncio.sleep(0)
    finally:
        try:
            while state.pending:
                commit(state.pending[:max_batch])
                del state.pending[:max_batch]
        finally:
            state.leader_loop = None
    if isinstance(mine.result, BaseException):
        raise mine.result
    assert mine.result is not None
    return mine.result


#: The longest a thread's writers go without a lap of the event loop: its timers and I/O wait
#: no longer than this behind a loop of writes that nothing else interleaves.
MAX_SECONDS_WITHOUT_LAP: Final = 0.001


def _lap_due(loop: asyncio.AbstractEventLoop, state: ThreadState) -> bool:
    """Whether the leader should let the loop run before it commits: something else is
    ready to run (a writer that could join; told by CPython's queue of callbacks due now,
    ``_ready``, and assumed on a loop without one, such as uvloop), or the thread's writers
    have not let the loop poll for I/O and timers for ``MAX_SECONDS_WITHOUT_LAP`` and it
    has some to poll or run."""
    ready = getattr(loop, "_ready", None)
    if ready is None or len(ready) > 0:
        return True
    now = time.monotonic()
    if now - state.lapped_at < MAX_SECONDS_WITHOUT_LAP:
        return False
    if _idle(loop):  # a lap would have found nothing: as good as one
        state.lapped_at = now
        return False
    return True


def _idle(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether a lap of ``loop`` could only find its own wake-ups: no timer is scheduled, no
    signal handler set, no file watched but the pipe that wakes it (CPython's selector
    loops; any other loop is assumed busy). Whatever another thread or a signal asks of it
    (``call_soon_threadsafe``) comes through ``_ready``, which the leader reads first."""
    scheduled = getattr(loop, "_scheduled", None)
    handlers = getattr(loop, "_signal_handlers", None)
    selector = getattr(loop, "_selector", None)
    if scheduled is None or handlers is None or selector is None:
        return False
    return not scheduled and not handlers and len(selector.get_map()) <= 1


def answer(batch: Sequence[Pending], results: Sequence[Snapshot | BaseException]) -> None:
    """Give each writer of a committed batch its result."""
    for pending, result in zip(batch, results, strict=True):
        pending.result = result
        future = pending.future
        if future is None or future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
