"""The embedded store through the agent API, next to bare sqlite3 doing the same work.

    .venv/bin/python bench/bench_sqlite.py [--devices 1000] [--rounds 3] [--past-versions 0]
        [--staggered]

For 1,000 devices with ~1 KB buckets it reports ops/s and p50/p99 latency of
* get: ``agent.utils.deviceBucket.get()`` vs. bare ``SELECT`` + ``json.loads``, with
  nothing written between reads (the store answers from memory, ``backends.sqlitereads``),
  and each right after a write to another bucket (it reads through SQLite);
* set by one writer: ``set()`` (durable, fsync per commit) vs. bare sqlite3 doing the same
  read-merge-write in a ``BEGIN IMMEDIATE`` transaction with ``synchronous=FULL``;
* set by 64 concurrent writers (group commit), against the single-writer figure and against
  the same code with the history off (``history_versions=0``), in alternate blocks.

The buckets start at version 2-5 when the writes are timed. ``--past-versions 45`` writes
each one 45 times more first, so that the timed writes run where the history forgets the
contents of old versions, as it does on a bucket that has lived a while. ``--staggered``
writes the i-th bucket ``i % 20`` times more again (20, or ``--history-versions``), so the
buckets are spread over the history's cycle of full copies and forgetting, and the timed
writes meet both as often as a fleet's writes would: with ``--past-versions 100``, every
bucket has also come ``forget_lag`` rows behind once, so the rows that have are cleared too.

Then, in the same run, Deno KV (npm ``@deno/kv``, its Node binding, on a local SQLite file)
does the same work: ``bench/denokv/bench.mjs``. It runs when ``node`` and ``npm`` are there
(``npm ci`` in ``bench/denokv`` the first time) and is skipped with a message otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from noderun import node_rates

from devicebucket import Agent, DeviceBucketUtils, Limits, SQLiteStore

PAYLOAD = {f"key{i:02d}": "v" * 40 for i in range(20)}  # ~1 KB of JSON


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6


class Timer:
    """Accumulates the time and per-operation latencies of one implementation."""

    def __init__(self, name: str) -> None:
        self.result = Result(name, 0, 0.0, [])

    def sync(self, ops: Sequence[Callable[[], object]]) -> None:
        start = time.perf_counter()
        for op in ops:
            t = time.perf_counter()
            op()
            self.result.latencies.append(time.perf_counter() - t)
        self.result.seconds += time.perf_counter() - start
        self.result.ops += len(ops)

    async def concurrent(
        self, ops: Sequence[Callable[[], Awaitable[object]]], concurrency: int = 1
    ) -> None:
        async def worker(mine: Sequence[Callable[[], Awaitable[object]]]) -> None:
            for op in mine:
                t = time.perf_counter()
                await op()
                self.result.latencies.append(time.perf_counter() - t)

        start = time.perf_counter()
        await asyncio.gather(*(worker(ops[i::concurrency]) for i in range(concurrency)))
        self.result.seconds += time.perf_counter() - start
        self.result.ops += len(ops)


async def interleaved(
    name: str,
    ours: Sequence[Callable[[], Awaitable[object]]],
    bare: Sequence[Callable[[], object]],
    block: int = 100,
) -> tuple[Result, Result]:
    """Alternate blocks of ours and bare, so both see the same disk and cache conditions."""
    mine, theirs = Timer(name), Timer(name)
    for n, start in enumerate(range(0, len(ours), block)):
        if n % 2:
            theirs.sync(bare[start : start + block])
            await mine.concurrent(ours[start : start + block])
        else:
            await mine.concurrent(ours[start : start + block])
            theirs.sync(bare[start : start + block])
    return mine.result, theirs.result


async def gets_after_writes(
    buckets: Sequence[DeviceBucketUtils], conn: sqlite3.Connection, ids: Sequence[str]
) -> tuple[Result, Result]:
    """A get of each bucket right after a write (not timed) to the next one, ours and bare's
    in turn: a read that the store cannot answer from memory (``backends.sqlitereads``), as
    in a fleet whose buckets change as often as they are read."""
    mine = Result("get, after a write", 0, 0.0, [])
    theirs = Result("get, after a write", 0, 0.0, [])
    for n, (bucket, device) in enumerate(zip(buckets, ids, strict=True)):
        other = (n + 1) % len(ids)
        await buckets[other].set({"written": n})
        start = time.perf_counter()
        await bucket.get()
        mine.latencies.append(time.perf_counter() - start)
        bare_set(conn, ids[other], {"written": n})
        start = time.perf_counter()
        bare_get(conn, device)
        theirs.latencies.append(time.perf_counter() - start)
    for result in (mine, theirs):
        result.ops, result.seconds = len(result.latencies), sum(result.latencies)
    return mine, theirs


def setter(bucket: DeviceBucketUtils, n: int) -> Callable[[], Awaitable[object]]:
    """A timed write: ``{"counter": n}`` merged into ``bucket``."""
    return lambda: bucket.set({"counter": n})


def bare_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS b (device TEXT PRIMARY KEY, data TEXT NOT NULL)")
    return conn


def bare_get(conn: sqlite3.Connection, device: str) -> dict[str, object]:
    row = conn.execute("SELECT data FROM b WHERE device = ?", (device,)).fetchone()
    data: dict[str, object] = json.loads(row[0])
    return data


def bare_set(conn: sqlite3.Connection, device: str, patch: Mapping[str, object]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    row = conn.execute("SELECT data FROM b WHERE device = ?", (device,)).fetchone()
    data = json.loads(row[0]) if row else {}
    data.update(patch)
    conn.execute(
        "INSERT INTO b VALUES (?, ?) ON CONFLICT (device) DO UPDATE SET data = excluded.data",
        (device, json.dumps(data, separators=(",", ":"))),
    )
    conn.execute("COMMIT")


async def write_past(buckets: Sequence[DeviceBucketUtils], past: int, stagger: int) -> None:
    """Write each bucket ``past`` times more, the i-th ``i % stagger`` times more again (with
    a ``stagger``), round by round over the buckets, 64 writes at a time."""
    writes = [
        (bucket, n)
        for n in range(past + stagger)
        for i, bucket in enumerate(buckets)
        if n < past + (i % stagger if stagger else 0)
    ]
    for start in range(0, len(writes), 64):
        await asyncio.gather(*(b.set({"past": n}) for b, n in writes[start : start + 64]))


async def run(
    devices: int,
    rounds: int,
    workdir: Path,
    limits: Limits,
    past_versions: int = 0,
    stagger: int = 0,
) -> list[tuple[Result, Result | None]]:
    ids = [f"pixel-{i:05d}" for i in range(devices)]
    store = SQLiteStore(workdir / "devicebucket.db", limits=limits)
    agents = [Agent(store, d).utils.deviceBucket for d in ids]
    off_store = SQLiteStore(workdir / "nohistory.db", limits=replace(limits, history_versions=0))
    offs = [Agent(off_store, d).utils.deviceBucket for d in ids]
    conn = bare_connection(workdir / "bare.db")
    for device, bucket, off in zip(ids, agents, offs, strict=True):
        await bucket.set(PAYLOAD)
        await off.set(PAYLOAD)
        bare_set(conn, device, PAYLOAD)
    for buckets in (agents, offs):
        await write_past(buckets, past_versions, stagger)

    rows: list[tuple[Result, Result | None]] = []
    gets = [bucket.get for bucket in agents] * rounds
    bare_gets = [partial(bare_get, conn, d) for d in ids] * rounds
    rows.append(await interleaved("get", gets, bare_gets))
    rows.append(await gets_after_writes(agents, conn, ids))

    # Every set writes a new value, so every one is a real, durable change.
    count = devices * rounds
    sets = [setter(agents[n % devices], n) for n in range(count)]
    bare_sets = [partial(bare_set, conn, ids[n % devices], {"counter": n}) for n in range(count)]
    rows.append(await interleaved("set, 1 writer", sets, bare_sets))
    # 64 writers with the history on and, in alternate blocks, the same code with it off.
    many, plain = Timer("set, 64 writers"), Timer("set, 64 writers, history off")
    for start in range(0, count * 4, 64 * 20):
        block = range(start, min(start + 64 * 20, count * 4))
        await many.concurrent([setter(agents[n % devices], -n) for n in block], 64)
        await plain.concurrent([setter(offs[n % devices], -n) for n in block], 64)
    rows.append((many.result, None))
    rows.append((plain.result, None))
    conn.close()
    await store.close()
    await off_store.close()
    return rows


def report(rows: list[tuple[Result, Result | None]], devices: int) -> str:
    single = next(r for r, _ in rows if r.name == "set, 1 writer")
    off = next(r for r, _ in rows if r.name == "set, 64 writers, history off")
    lines = [
        f"{devices:,} devices, ~{len(json.dumps(PAYLOAD)):,}-byte buckets, synchronous=FULL",
        "",
        "| operation | devicebucket ops/s | p50 µs | p99 µs | bare sqlite3 ops/s"
        " | p50 µs | p99 µs | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ours, bare in rows:
        if bare is not None:
            ratio = f"{ours.rate / bare.rate:.2f}× bare"
            bare_cols = (
                f"{bare.rate:,.0f} | {bare.percentile(0.5):.0f} | {bare.percentile(0.99):.0f}"
            )
        elif ours is off:
            ratio = f"{off.rate / single.rate:.1f}× 1 writer"
        else:
            ratio = f"{ours.rate / single.rate:.1f}× 1 writer, {ours.rate / off.rate:.2f}× off"
            bare_cols = "– | – | –"
        lines.append(
            f"| {ours.name} | {ours.rate:,.0f} | {ours.percentile(0.5):.0f}"
            f" | {ours.percentile(0.99):.0f} | {bare_cols} | {ratio} |"
        )
    return "\n".join(lines)


DENOKV = Path(__file__).resolve().parent / "denokv"


def deno_kv(devices: int, rounds: int, workdir: Path) -> dict[str, float] | str:
    """Deno KV's ops/s for the same rows, or why it was skipped."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Deno KV skipped: node and npm are needed (apt-get install nodejs npm)"
    if not (DENOKV / "node_modules" / "@deno" / "kv").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=DENOKV, check=True, capture_output=True
        )
    return node_rates(DENOKV / "bench.mjs", workdir / "denokv.sqlite", devices, rounds)


def report_peer(rows: list[tuple[Result, Result | None]], peer: dict[str, float] | str) -> str:
    if isinstance(peer, str):
        return peer
    lines = [
        "| operation | devicebucket ops/s | Deno KV ops/s | devicebucket / Deno KV |",
        "|---|---:|---:|---:|",
    ]
    for ours, _ in rows:
        if ours.name not in peer:
            continue
        theirs = peer[ours.name]
        lines.append(
            f"| {ours.name} | {ours.rate:,.0f} | {theirs:,.0f} | {ours.rate / theirs:.1f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="passes of get over all devices")
    parser.add_argument(
        "--history-versions",
        type=int,
        default=Limits().history_versions,
        help="restorable versions per bucket (0: history off)",
    )
    parser.add_argument(
        "--past-versions",
        type=int,
        default=0,
        help="write each bucket this many times more before the timed rows (at 45, they run"
        " where the history forgets old contents on every 20th version of a bucket)",
    )
    parser.add_argument(
        "--staggered",
        action="store_true",
        help="spread the buckets over the history's cycle (bucket i: i %% 20 versions more)",
    )
    args = parser.parse_args()
    limits = Limits(history_versions=args.history_versions)
    stagger = (args.history_versions or Limits().history_versions) if args.staggered else 0
    with tempfile.TemporaryDirectory(prefix="devicebucket-bench-") as tmp:
        rows = asyncio.run(
            run(args.devices, args.rounds, Path(tmp), limits, args.past_versions, stagger)
        )
        peer = deno_kv(args.devices, args.rounds, Path(tmp))
    print(f"history: {args.history_versions or 'off'}", end="")
    print(f", {args.past_versions} past versions{' (staggered)' if stagger else ''}")
    print(report(rows, args.devices))
    print()
    print(report_peer(rows, peer))


if __name__ == "__main__":
    main()
