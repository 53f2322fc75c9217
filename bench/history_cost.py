"""What the history costs 64 concurrent writers: the same code with it on and off, same run.

    .venv/bin/python bench/history_cost.py [--blocks 16]

Two embedded stores of 1,000 devices with ~1 KB buckets, one with the history on (the
default) and one with ``history_versions=0``. 64 coroutines write ``{"counter": n}`` through
the agent API in blocks of 1,280 writes, the two stores alternating block by block, so both
see the same machine. It prints writes/s and the CPU time of the process per write for
each, and their ratios (on / off). CPU time leaves out the time the machine gave to others,
so on a shared machine it is the steadier of the two figures.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from devicebucket import Agent, DeviceBucketUtils, Limits, SQLiteStore

PAYLOAD = {f"key{i:02d}": "v" * 40 for i in range(20)}  # ~1 KB of JSON
BLOCK = 1280
WRITERS = 64


async def block(buckets: list[DeviceBucketUtils], first: int) -> tuple[float, float]:
    """One block of writes by 64 writers: its wall and CPU seconds."""
    ops = [(buckets[n % len(buckets)], n) for n in range(first, first + BLOCK)]

    async def writer(mine: list[tuple[DeviceBucketUtils, int]]) -> None:
        for bucket, n in mine:
            await bucket.set({"counter": n})

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(writer(ops[i::WRITERS]) for i in range(WRITERS)))
    return time.perf_counter() - wall, time.process_time() - cpu


async def run(blocks: int, workdir: Path) -> None:
    stores = {
        "on": SQLiteStore(workdir / "on.db"),
        "off": SQLiteStore(workdir / "off.db", limits=Limits(history_versions=0)),
    }
    buckets = {
        name: [Agent(store, f"pixel-{i:05d}").utils.deviceBucket for i in range(1000)]
        for name, store in stores.items()
    }
    for name in stores:
        for bucket in buckets[name]:
            await bucket.set(PAYLOAD)
    wall = dict.fromkeys(stores, 0.0)
    cpu = dict.fromkeys(stores, 0.0)
    for b in range(blocks):
        for name in ("on", "off") if b % 2 == 0 else ("off", "on"):
            w, c = await block(buckets[name], b * BLOCK)
            wall[name] += w
            cpu[name] += c
    for store in stores.values():
        await store.close()
    writes = blocks * BLOCK
    print(f"{writes:,} writes each, {WRITERS} writers, 1,000 devices, ~1 KB buckets")
    print()
    print("| history | writes/s | CPU µs per write |")
    print("|---|---:|---:|")
    for name in stores:
        print(f"| {name} | {writes / wall[name]:,.0f} | {cpu[name] / writes * 1e6:.1f} |")
    print(
        f"| on / off | {wall['off'] / wall['on']:.2f}× | {cpu['off'] / cpu['on']:.2f}×"
        " (off's CPU per write / on's) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--blocks", type=int, default=16, help="blocks of 1,280 writes each")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devicebucket-history-") as tmp:
        asyncio.run(run(args.blocks, Path(tmp)))


if __name__ == "__main__":
    main()
