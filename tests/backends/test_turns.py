"""The thread big job writes are checked on (``backends.turns``): one device's at a time, its
next behind every other device's first; a failure reaches its writer; a writer that stops
waiting has its check skipped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from devicebucket.backends.turns import in_turn


def recorder(done: list[str], name: str, gate: threading.Event | None = None) -> Callable[[], str]:
    def work() -> str:
        if gate is not None:
            assert gate.wait(10)
        done.append(name)
        return name

    return work


async def holding(done: list[str]) -> tuple[asyncio.Task[str], threading.Event]:
    """Device "a"'s check "a1", running: it holds the thread until the gate returned opens."""
    started, gate = threading.Event(), threading.Event()

    def first() -> str:
        started.set()
        return recorder(done, "a1", gate)()

    a1 = asyncio.create_task(in_turn("a", first))
    assert await asyncio.to_thread(started.wait, 10)
    assert not a1.done()
    return a1, gate


async def test_a_device_with_many_checks_waits_for_its_own_not_others_for_it() -> None:
    done: list[str] = []
    a1, gate = await holding(done)
    a_rest = [asyncio.create_task(in_turn("a", recorder(done, f"a{n}"))) for n in (2, 3, 4)]
    await asyncio.sleep(0)  # each task has put its work in line
    b1 = asyncio.create_task(in_turn("b", recorder(done, "b1")))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(a1, *a_rest, b1) == ["a1", "a2", "a3", "a4", "b1"]
    # a2 was in line before b1 came; b1 then went before a3 and a4.
    assert done == ["a1", "a2", "b1", "a3", "a4"]


async def test_a_failed_check_raises_in_its_writer_and_the_next_runs() -> None:
    def fails() -> str:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await in_turn("a", fails)
    assert await in_turn("a", lambda: "next") == "next"


async def test_a_writer_that_stops_waiting_has_its_check_skipped() -> None:
    done: list[str] = []
    a1, gate = await holding(done)
    gone = asyncio.create_task(in_turn("b", recorder(done, "b1")))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    gate.set()
    assert await a1 == "a1"
    assert await in_turn("c", recorder(done, "c1")) == "c1"
    assert done == ["a1", "c1"]
