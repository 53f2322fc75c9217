"""Where a lone durable ``set`` spends its time, phase by phase, next to bare sqlite3.

    .venv/bin/python bench/lone_write.py [--blocks 40]

One writer through the agent API (``deviceBucket.set``, as ``bench_sqlite.py``'s one-writer
row), with the history on and off, and bare sqlite3 doing the same read-merge-write
(``bench_sqlite.bare_set``), 1,000 devices with ~1 KB buckets, each file written 4,000 times
first so that its WAL is at its working size. Blocks of 100 writes to random devices take
turns in a shuffled order. Each write's wall time is cut at four instants: the start of
``BEGIN IMMEDIATE``, the start of ``COMMIT``, and the end of ``COMMIT`` (the store's
transaction is replaced by a subclass that reads the clock around its statements; bare
sqlite3's statements are seen through a trace callback and it returns right after its
``COMMIT``), giving

* before: the call down to the transaction (validation, the group commit's entry);
* body: ``BEGIN`` to ``COMMIT`` (the read, the plan, the statements);
* commit: the ``COMMIT`` (the WAL's write and its ``fdatasync``);
* after: back up to the caller (answers, watchers, the result).

It prints each phase's median µs and the mean of the whole, and the ratio of the means to
bare sqlite3 (the target's ratio, as ``bench_sqlite.py`` computes it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path
from types import TracebackType

from bench_sqlite import bare_connection, bare_set

from devicebucket import Agent, Limits, SQLiteStore
from devicebucket.backends import sqlitebatch, sqlitefile

PHASES = ("before", "body", "commit", "after")
_clock = time.perf_counter
_marks: dict[str, float] = {}


class _TimedTransaction(sqlitefile.transaction):
    """The store's write transaction, reading the clock at ``BEGIN`` and around ``COMMIT``."""

    __slots__ = ()

    def __enter__(self) -> None:
        _marks["begin"] = _clock()
        super().__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        _marks["commit"] = _clock()
        super().__exit__(kind, exc, tb)
        _marks["committed"] = _clock()


def _trace(statement: str) -> None:
    """Bare sqlite3's statements as they start."""
    if statement == "BEGIN IMMEDIATE":
        _marks["begin"] = _clock()
    elif statement == "COMMIT":
        _marks["commit"] = _clock()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--blocks", type=int, default=40, help="blocks of 100 writes per cell")
    args = parser.parse_args()
    sqlitebatch.transaction = _TimedTransaction  # type: ignore[attr-defined]
    ids = [f"pixel-{i:05d}" for i in range(1000)]
    with tempfile.TemporaryDirectory(prefix="devicebucket-lone-") as tmp:
        on = SQLiteStore(Path(tmp) / "on.db")
        off = SQLiteStore(Path(tmp) / "off.db", limits=Limits(history_versions=0))
        conn = bare_connection(Path(tmp) / "bare.db")
        conn.set_trace_callback(_trace)
        stores = {"history on": on, "history off": off}
        buckets = {
            name: [Agent(s, d).utils.deviceBucket for d in ids] for name, s in stores.items()
        }

        async def write(name: str, device: int, n: int) -> None:
            if name == "bare sqlite3":
                bare_set(conn, ids[device], {"counter": n})
                _marks["committed"] = _clock()
            else:
                await buckets[name][device].set({"counter": n})

        names = [*stores, "bare sqlite3"]
        for n in range(5000):  # every bucket, then the WALs to their working size
            for name in names:
                await write(name, n % 1000, n)
        times: dict[str, list[list[float]]] = {name: [[] for _ in PHASES] for name in names}
        totals = dict.fromkeys(names, 0.0)
        for block in range(args.blocks):
            random.shuffle(names)
            for name in names:
                for i in range(100):
                    start = _clock()
                    await write(name, random.randrange(1000), block * 100 + i)
                    end = _clock()
                    cuts = (start, _marks["begin"], _marks["commit"], _marks["committed"], end)
                    for phase, (a, b) in enumerate(itertools.pairwise(cuts)):
                        times[name][phase].append(b - a)
                    totals[name] += end - start
        conn.close()
        await on.close()
        await off.close()
    bare = totals["bare sqlite3"]
    print(f"{args.blocks * 100:,} lone durable writes a cell, 1,000 devices, ~1 KB buckets")
    print()
    print("| µs a write | " + " | ".join(PHASES) + " | mean, whole | bare / it |")
    print("|---|" + "---:|" * (len(PHASES) + 2))
    for name in ("history on", "history off", "bare sqlite3"):
        phases = " | ".join(f"{statistics.median(xs) * 1e6:.1f}" for xs in times[name])
        mean = totals[name] / len(times[name][0]) * 1e6
        print(f"| {name} | {phases} | {mean:.1f} | {bare / totals[name]:.3f} |")


if __name__ == "__main__":
    asyncio.run(main())
