"""The Python work of one embedded ``set`` and ``get``, history on and off, without the disk.

    eatmydata .venv/bin/python bench/write_cpu.py [--writes 3000] [--repeats 7]

Run it under ``eatmydata`` (Debian package ``eatmydata``): it turns ``fsync`` into a no-op,
so what is left of a durable ``set`` is the work the process does: on a quiet machine the
same from run to run within a microsecond or two, where ``bench_sqlite.py`` moves by ±10 %
with the disk (a busy one shows in the history-off and bare rows moving too). One
writer through the agent API, 1,000 devices with ~1 KB buckets, as ``bench_sqlite.py``;
each figure is the best of ``--repeats`` blocks of ``--writes`` operations. Bare sqlite3
doing the same read-merge-write (``bench_sqlite.bare_set``) is the last row. Without
``eatmydata`` it measures the durable write, fsync included.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench_sqlite import PAYLOAD, bare_connection, bare_get, bare_set

from devicebucket import Agent, Limits, SQLiteStore


async def timed(
    set_one: Callable[[int], Awaitable[object]],
    get_one: Callable[[int], Awaitable[object]],
    writes: int,
    repeats: int,
) -> list[float]:
    """Best µs per set and per get over ``repeats`` blocks (sets on devices ``n % 1000``)."""
    sets: list[float] = []
    gets: list[float] = []
    n = 0
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(writes):
            await set_one(n)
            n += 1
        sets.append((time.perf_counter() - start) / writes * 1e6)
        start = time.perf_counter()
        for i in range(writes):
            await get_one(i)
        gets.append((time.perf_counter() - start) / writes * 1e6)
    return [min(sets), min(gets)]


async def measure(path: Path, history_versions: int, writes: int, repeats: int) -> list[float]:
    store = SQLiteStore(path, limits=Limits(history_versions=history_versions))
    buckets = [Agent(store, f"pixel-{i:05d}").utils.deviceBucket for i in range(1000)]
    for bucket in buckets:
        await bucket.set(PAYLOAD)

    async def set_one(n: int) -> object:
        return await buckets[n % 1000].set({"counter": n})

    async def get_one(n: int) -> object:
        return await buckets[n % 1000].get()

    try:
        return await timed(set_one, get_one, writes, repeats)
    finally:
        await store.close()


async def measure_bare(path: Path, writes: int, repeats: int) -> list[float]:
    """The same for bare sqlite3 doing the read-merge-write (``bench_sqlite.bare_set``),
    called through the same harness."""
    conn = bare_connection(path)
    ids = [f"pixel-{i:05d}" for i in range(1000)]
    for device in ids:
        bare_set(conn, device, PAYLOAD)

    async def set_one(n: int) -> object:
        bare_set(conn, ids[n % 1000], {"counter": n})
        return None

    async def get_one(n: int) -> object:
        return bare_get(conn, ids[n % 1000])

    try:
        return await timed(set_one, get_one, writes, repeats)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print("| devicebucket, history | set, µs | get, µs |")
    print("|---|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="devicebucket-cpu-") as tmp:
        for versions in (Limits().history_versions, 0):
            path = Path(tmp) / f"h{versions}.db"
            best = asyncio.run(measure(path, versions, args.writes, args.repeats))
            label = f"on ({versions} versions)" if versions else "off"
            print(f"| {label} | {best[0]:.1f} | {best[1]:.1f} |")
        bare = asyncio.run(measure_bare(Path(tmp) / "bare.db", args.writes, args.repeats))
        print(f"| bare sqlite3 (none) | {bare[0]:.1f} | {bare[1]:.1f} |")


if __name__ == "__main__":
    main()
