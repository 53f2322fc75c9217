"""Writes to buckets that have lived past ``history_entries`` versions, where the history
drops each one's oldest entries every 100 versions, next to the same with no drops.

    .venv/bin/python bench/old_buckets.py [--past-versions 1000] [--rounds 3]

1,000 devices with ~1 KB buckets (embedded SQLite, durable, history on) are first written
``--past-versions`` times more, the i-th ``i % 100`` times more again, so the timed writes
cross the versions where entries are dropped as often as a fleet's writes would. Then
``--rounds`` blocks of 12,800 writes by 64 writers and 3,000 by one writer are timed. It
runs twice, each in a new file: with the default ``history_entries`` (1,000; the first
drops come at version 1,100) and with a limit no bucket reaches (no drops), and prints
writes/s of each.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench_sqlite import PAYLOAD, write_past

from devicebucket import Agent, Limits, SQLiteStore

DEVICES = 1000
SPREAD = 100  # the versions between drops of a bucket's entries


async def measure(path: Path, entries: int, past: int, rounds: int) -> tuple[list[float], float]:
    """Writes/s of each round of 64 writers, and of one writer."""
    store = SQLiteStore(path, limits=Limits(history_entries=entries))
    buckets = [Agent(store, f"pixel-{i:05d}").utils.deviceBucket for i in range(DEVICES)]
    for bucket in buckets:
        await bucket.set(PAYLOAD)
    await write_past(buckets, past, SPREAD)

    async def writer(ops: range) -> None:
        for n in ops:
            await buckets[n % DEVICES].set({"counter": -n})

    many = []
    n = 0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(10):
            await asyncio.gather(*(writer(range(n + w, n + 1280, 64)) for w in range(64)))
            n += 1280
        many.append(12_800 / (time.perf_counter() - start))
    start = time.perf_counter()
    for k in range(3000):
        await buckets[(k * 7) % DEVICES].set({"one": k})
    one = 3000 / (time.perf_counter() - start)
    await store.close()
    return many, one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--past-versions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"{DEVICES:,} devices, {args.past_versions:,} past versions (+ i % {SPREAD})")
    print()
    print("| history_entries | 64 writers, writes/s per round | 1 writer, writes/s |")
    print("|---|---|---:|")
    for entries in (Limits().history_entries, 10**9):
        with tempfile.TemporaryDirectory(prefix="devicebucket-old-") as tmp:
            many, one = asyncio.run(
                measure(Path(tmp) / "b.db", entries, args.past_versions, args.rounds)
            )
        label = f"{entries:,}" if entries < 10**9 else "no drops"
        print(f"| {label} | {' · '.join(f'{r:,.0f}' for r in many)} | {one:,.0f} |")


if __name__ == "__main__":
    main()
