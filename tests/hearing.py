"""Until a watch hears: a watch without ``since`` (of one bucket, of a device, of the fleet)
starts at an instant no caller sees, so a test writes probes until the watch gives one, in
place of a sleep before its first write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def hearing(
    events: AsyncIterator[T],
    poke: Callable[[int], Awaitable[object]],
    is_poke: Callable[[T, int], bool],
    seconds: float = 10,
) -> list[T]:
    """Calls ``poke(1)``, ``poke(2)``, ... (each a write the watch is to hear) until the watch
    gives an event, then reads on to the last poke's (``is_poke(event, n)``): from then on
    the watch hears every write. Returns the events read, the first one included."""
    heard: list[T] = []
    first = asyncio.ensure_future(anext(events))
    pokes = 0
    try:
        async with asyncio.timeout(seconds):
            while not first.done():
                pokes += 1
                await poke(pokes)
                await asyncio.wait({first}, timeout=0.05)  # not cancelled: read on below
            heard.append(first.result())
            while not is_poke(heard[-1], pokes):
                heard.append(await anext(events))
    finally:
        first.cancel()
    return heard
