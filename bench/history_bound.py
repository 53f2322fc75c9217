"""The most a cheaper history row could give 64 writers: the store as it is, and the same
store with its batches' history rows never inserted, each against the history off.

    eatmydata .venv/bin/python bench/history_bound.py [--rounds 16] [--runs 3]

64 writers through the agent API write ``{"counter": n}`` to 1,000 devices with ~1 KB
buckets, as ``bench_sqlite.py``'s 64-writer row does (its ``Timer``, its writes in its
order), on a store with the history (the default, 20 versions) and one without, in turn,
blocks of 1,280 writes, the first store of each round alternating. A run is a fresh process
and fresh files. In the second process of each run ``sqlitebatch.HistoryRows.insert`` only
forgets its rows: every write still plans and queues its history row, and nothing is
inserted. That store's history is then wrong (its buckets point at rows that are not there):
it is measured, never read. ``off / on`` with the rows gone is the ceiling of any layout
that keeps the history's other work (one row a batch, ``docs/history-batches.md``, still
inserts a row and encodes a batch's values).

Under ``eatmydata`` (Debian package ``eatmydata``) every ``fsync`` returns at once, so the
ratio is the processor's; 64 writers are bound by it (``benchmarks.md``, the eighteenth
sitting). Without it the disk's time is in both sides and the ratios scatter more.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_sqlite import PAYLOAD, Timer, setter

from devicebucket import Agent, Limits, SQLiteStore
from devicebucket.backends import sqlitebatch

DEVICES = 1000
WRITERS = 64
BLOCK = 1280  # writes a block: 20 batches of 64


def _forget_rows(self: sqlitebatch.HistoryRows, conn: object) -> None:
    """``HistoryRows.insert`` without the ``INSERT``: the rows are dropped as inserted."""
    self.values.clear()
    self.count = 0


async def measure(rounds: int, workdir: Path) -> tuple[float, float]:
    """(seconds with the history, seconds without) for ``rounds`` blocks each."""
    on = SQLiteStore(workdir / "on.db")
    off = SQLiteStore(workdir / "off.db", limits=Limits(history_versions=0))
    stores = {True: on, False: off}
    buckets = {
        history: [Agent(store, f"pixel-{i:05d}").utils.deviceBucket for i in range(DEVICES)]
        for history, store in stores.items()
    }
    for each in buckets.values():
        for bucket in each:
            await bucket.set(PAYLOAD)
    timers = {history: Timer(f"history {history}") for history in stores}

    for r in range(rounds):
        block = range(r * BLOCK, (r + 1) * BLOCK)
        for history in (True, False) if r % 2 else (False, True):
            writes = [setter(buckets[history][n % DEVICES], -n) for n in block]
            await timers[history].concurrent(writes, WRITERS)
    for store in stores.values():
        await store.close()
    return timers[True].result.seconds, timers[False].result.seconds


def child(rounds: int, rows: bool) -> None:
    if not rows:
        sqlitebatch.HistoryRows.insert = _forget_rows  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="devicebucket-bound-") as tmp:
        on, off = asyncio.run(measure(rounds, Path(tmp)))
    print(f"{on} {off}")


def run(rounds: int, rows: bool) -> tuple[float, float]:
    command = [sys.executable, __file__, "--child", str(rounds), str(int(rows))]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    on, off = map(float, out.split())
    return on, off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=16, help="blocks of 1,280 writes a store")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], bool(args.child[1]))
        return
    writes = args.rounds * BLOCK
    print(f"64 writers, {writes:,} writes a store a run, {DEVICES:,} devices, ~1 KB buckets")
    print()
    print("| run | off / on, as it is | off / on, no rows inserted | µs a write on, as it is |")
    print("|---|---:|---:|---:|")
    for n in range(1, args.runs + 1):
        on, off = run(args.rounds, rows=True)
        bound_on, bound_off = run(args.rounds, rows=False)
        print(f"| {n} | {off / on:.3f} | {bound_off / bound_on:.3f} | {on / writes * 1e6:.1f} |")


if __name__ == "__main__":
    main()
