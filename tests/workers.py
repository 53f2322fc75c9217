"""Writer processes for the concurrency and durability tests: ``python tests/workers.py CMD ...``.

Kept as a script so every writer is a real, separate process with its own connections.
"""

from __future__ import annotations

import asyncio
import sys

from devicebucket import Agent, open_store


async def set_distinct(url: str, device: str, prefix: str, count: int, concurrency: int) -> None:
    """``count`` sets of distinct keys, ``concurrency`` at a time."""
    store = open_store(url)
    bucket = Agent(store, device).utils.deviceBucket
    for start in range(0, count, concurrency):
        results = await asyncio.gather(
            *(
                bucket.set({f"{prefix}-{i}": i})
                for i in range(start, min(start + concurrency, count))
            )
        )
        failed = [r for r in results if not r["success"]]
        if failed:
            raise SystemExit(f"write failed: {failed[0]}")
    await store.close()


async def increment(url: str, device: str, count: int) -> None:
    """``count`` concurrent ``update(fn)`` increments of the key ``n``."""
    store = open_store(url)
    bucket = Agent(store, device).utils.deviceBucket
    results = await asyncio.gather(
        *(bucket.update(lambda b: {"n": b.get("n", 0) + 1}) for _ in range(count))
    )
    failed = [r for r in results if not r["success"]]
    if failed:
        raise SystemExit(f"update failed: {failed[0]}")
    await store.close()


async def acknowledge(url: str, device: str) -> None:
    """Write keys one after another forever, printing each key once it is acknowledged."""
    store = open_store(url)
    bucket = Agent(store, device).utils.deviceBucket
    n = 0
    while True:
        result = await bucket.set({f"k{n}": n})
        if not result["success"]:
            raise SystemExit(result["error"])
        print(f"k{n}", flush=True)
        n += 1


async def set_on_go(url: str, device: str, key: str) -> None:
    """Wait for a line on stdin (a start barrier across processes), then open and write."""
    sys.stdin.readline()
    store = open_store(url)
    result = await Agent(store, device).utils.deviceBucket.set({key: True})
    await store.close()
    if not result["success"]:
        raise SystemExit(f"write failed: {result['error']}")


def main(argv: list[str]) -> None:
    command, url, device, *rest = argv
    if command == "set-on-go":
        asyncio.run(set_on_go(url, device, rest[0]))
    elif command == "set-distinct":
        asyncio.run(set_distinct(url, device, rest[0], int(rest[1]), int(rest[2])))
    elif command == "increment":
        asyncio.run(increment(url, device, int(rest[0])))
    elif command == "acknowledge":
        asyncio.run(acknowledge(url, device))
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
