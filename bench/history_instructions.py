"""The history's cost to a batch of writes, in instructions: 64 writers, history on and off.

    .venv/bin/python bench/history_instructions.py [--batches 40]

Wall-clock ratios of the 64-writer row of ``bench_sqlite.py`` scatter by several hundredths
from run to run; instruction counts do not. This runs the same writes (64 at once, to
random devices among 1,000 with ~1 KB buckets, through the agent API, embedded SQLite)
under ``valgrind --tool=callgrind`` (Debian package ``valgrind``), with the history on
(the default, 20 versions) and off, and reports the instructions per write: the run with
``--batches`` batches less the same run with none (start-up and the first writes),
divided by the writes. ``PYTHONHASHSEED=0`` makes repeated runs agree within about 500.
It takes about a minute and a half.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_sqlite import PAYLOAD

from devicebucket import Agent, Limits, SQLiteStore

WRITERS = 64


async def write(path: Path, history_versions: int, batches: int) -> None:
    store = SQLiteStore(path, limits=Limits(history_versions=history_versions))
    buckets = [Agent(store, f"pixel-{i:05d}").utils.deviceBucket for i in range(1000)]
    for bucket in buckets:
        await bucket.set(PAYLOAD)
    n = 0
    for _ in range(batches):
        await asyncio.gather(
            *(buckets[(n + i * 7919) % 1000].set({"counter": n + i}) for i in range(WRITERS))
        )
        n += WRITERS
    await store.close()


def instructions(history_versions: int, batches: int) -> int:
    """What callgrind counts for a child process doing ``batches`` batches."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    command = [sys.executable, __file__, "--child", str(history_versions), str(batches)]
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    match = re.search(r"Collected : (\d+)", out)
    assert match, out
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory(prefix="devicebucket-instr-") as tmp:
            asyncio.run(write(Path(tmp) / "b.db", *args.child))
        return
    per_write = {}
    for versions in (Limits().history_versions, 0):
        start = instructions(versions, 0)
        per_write[versions] = (instructions(versions, args.batches) - start) / (
            args.batches * WRITERS
        )
    on, off = per_write[Limits().history_versions], per_write[0]
    print("| instructions per write, 64 writers | history on | history off | off / on |")
    print("|---|---:|---:|---:|")
    print(f"| {args.batches} batches | {on:,.0f} | {off:,.0f} | {off / on:.3f} |")


if __name__ == "__main__":
    main()
