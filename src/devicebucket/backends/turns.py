"""The thread big job writes are checked on (``core.ahead``), one device's at a time.

One thread for the whole process: however many checks come at once, the event loop keeps
its share of the interpreter (a thread each would leave it a share each). The checks take
turns by device: a device's next check waits behind every other device's first, so a
device that sends a hundred big writes at once waits for its own, not the others for it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["in_turn"]

T = TypeVar("T")
_Work = tuple[Callable[[], Any], "Future[Any]"]


class _Turns:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.ready = threading.Condition()
        self.queues: OrderedDict[str, deque[_Work]] = OrderedDict()  # devices, in turn
        threading.Thread(target=self._run, name="devicebucket-turns", daemon=True).start()

    def submit(self, device: str, work: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self.ready:
            self.queues.setdefault(device, deque()).append((work, future))
            self.ready.notify()
        return future

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.queues:
                    self.ready.wait()
                device, queue = next(iter(self.queues.items()))
                work, future = queue.popleft()
                if queue:
                    self.queues.move_to_end(device)  # its next behind the others' first
                else:
                    del self.queues[device]
            if not future.set_running_or_notify_cancel():
                continue  # its writer stopped waiting
            try:
                result = work()
            except BaseException as exc:  # the writer's to see, as it would have been
                future.set_exception(exc)
            else:
                future.set_result(result)


_turns: _Turns | None = None
_turns_lock = threading.Lock()


async def in_turn(device: str, work: Callable[[], T]) -> T:
    """``work()`` on the thread for big job writes, in ``device``'s turn."""
    global _turns
    with _turns_lock:
        if _turns is None or _turns.pid != os.getpid():  # a forked child has no thread yet
            _turns = _Turns()
        turns = _turns
    return await asyncio.wrap_future(turns.submit(device, work))
