"""The history's cost to a batch of writes, in instructions: 64 writers or one, on and off.

    .venv/bin/python bench/history_instructions.py [--batches 40] [--writers 64]

Wall-clock ratios of the 64-writer row of ``bench_sqlite.py`` scatter by several hundredths
from run to run; instruction counts do not. This runs the same writes (64 at once, to
random devices among 1,000 with ~1 KB buckets, through the agent API, embedded SQLite)
under ``valgrind --tool=callgrind`` (Debian package ``valgrind``), with the history on
(the default, 20 versions) and off, and reports the instructions per write: the run with
``--batches`` batches less the same run with none (start-up and the first writes),
divided by the writes. ``PYTHONHASHSEED=0`` makes repeated runs agree within about 500.
It takes about a minute and a half.

``--writers 1`` runs the one-writer row instead: one write at a time, each its own batch
(2,560 writes, as many as 40 batches of 64), and beside it bare sqlite3 doing the same
read-merge-write (``bench_sqlite.bare_set``), so the store's ratio to bare is read off the
processor's work alone, with the disk's time left out. A lone writer awaits its write
directly (no task of its own, as in ``bench_sqlite.py``), and what the store does once a
millisecond (``groupcommit.MAX_SECONDS_WITHOUT_LAP``) is left out: every few writes
outside valgrind but every write under it. It is a lap of the event loop (~20k
instructions) where the loop has anything a lap could serve, else a look at the loop that
finds nothing (``groupcommit._idle``, a few thousand): a script's loop of writes, as here.
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

from bench_sqlite import PAYLOAD, bare_connection, bare_set

from devicebucket import Agent, Limits, SQLiteStore
from devicebucket.backends import groupcommit

DEVICES = 1000
BARE = -1  # the child's history versions that stand for bare sqlite3


async def write(path: Path, history_versions: int, batches: int, writers: int) -> None:
    store = SQLiteStore(path, limits=Limits(history_versions=history_versions))
    buckets = [Agent(store, f"pixel-{i:05d}").utils.deviceBucket for i in range(DEVICES)]
    for bucket in buckets:
        await bucket.set(PAYLOAD)
    if writers == 1:
        groupcommit.MAX_SECONDS_WITHOUT_LAP = float("inf")  # see the module's docstring
        for n in range(batches):
            await buckets[n % DEVICES].set({"counter": n})
        await store.close()
        return
    n = 0
    for _ in range(batches):
        await asyncio.gather(
            *(buckets[(n + i * 7919) % DEVICES].set({"counter": n + i}) for i in range(writers))
        )
        n += writers
    await store.close()


def write_bare(path: Path, writes: int) -> None:
    conn = bare_connection(path)
    ids = [f"pixel-{i:05d}" for i in range(DEVICES)]
    for name in ids:
        bare_set(conn, name, PAYLOAD)
    for n in range(writes):
        bare_set(conn, ids[n % DEVICES], {"counter": n})
    conn.close()


def instructions(history_versions: int, batches: int, writers: int) -> int:
    """What callgrind counts for a child process doing ``batches`` batches (bare sqlite3's
    writes one at a time, for ``history_versions`` ``BARE``)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    child = [str(history_versions), str(batches), str(writers)]
    command = [sys.executable, __file__, "--child", *child]
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
    parser.add_argument("--writers", type=int, choices=(1, 64), default=64)
    parser.add_argument(
        "--batches", type=int, help="batches of --writers writes (2,560 writes in all if not given)"
    )
    parser.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        versions, batches, writers = args.child
        with tempfile.TemporaryDirectory(prefix="devicebucket-instr-") as tmp:
            if versions == BARE:
                write_bare(Path(tmp) / "bare.db", batches * writers)
            else:
                asyncio.run(write(Path(tmp) / "b.db", versions, batches, writers))
        return
    writers = args.writers
    batches = args.batches or 2560 // writers
    runs = [Limits().history_versions, 0] + ([BARE] if writers == 1 else [])
    per_write = {}
    for versions in runs:
        start = instructions(versions, 0, writers)
        end = instructions(versions, batches, writers)
        per_write[versions] = (end - start) / (batches * writers)
    on, off = per_write[Limits().history_versions], per_write[0]
    label = f"instructions per write, {writers} writer{'s' if writers > 1 else ''}"
    if writers == 1:
        bare = per_write[BARE]
        print(f"| {label} | history on | history off | bare sqlite3 | off / on | bare / on |")
        print("|---|---:|---:|---:|---:|---:|")
        print(
            f"| {batches} writes | {on:,.0f} | {off:,.0f} | {bare:,.0f}"
            f" | {off / on:.3f} | {bare / on:.3f} |"
        )
        return
    print(f"| {label} | history on | history off | off / on |")
    print("|---|---:|---:|---:|")
    print(f"| {batches} batches | {on:,.0f} | {off:,.0f} | {off / on:.3f} |")


if __name__ == "__main__":
    main()
