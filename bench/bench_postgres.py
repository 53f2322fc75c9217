"""The PostgreSQL store next to bare asyncpg running the same statements, in the same run.

    .venv/bin/python bench/bench_postgres.py [--url postgresql://postgres@127.0.0.1/test]
        [--seconds 3] [--skip-million]

1. Concurrency: get and set ops/s and p50/p99 at 1, 8 and 64 concurrent clients on 1,000
   devices with ~1 KB buckets. Bare asyncpg runs the same statements: a ``SELECT`` for get;
   ``BEGIN``, ``SELECT … FOR UPDATE``, merge in Python, ``UPDATE``, ``COMMIT`` for set.
   The two alternate in slices of half a second (at ``--seconds 3``), so both see the
   same machine.
2. Scale: get and set through the store at 8 clients with 1,000 / 100,000 / 1,000,000
   devices of ~1 KB, and 1,000 devices of ~100 KB.

Each run uses a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from devicebucket.backends.postgres import PostgresStore
from devicebucket.core.values import encode

# Connections per side. Both pools together stay under PostgreSQL's default
# max_connections (100); 64 clients queue for 40 connections, as a server's requests would.
POOL = 40


def payload(size: int) -> dict[str, str]:
    keys = max(1, size // 53)
    return {f"key{i:05d}": "v" * 40 for i in range(keys)}


@dataclass
class Result:
    ops: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


async def drive(
    op: Callable[[int], Awaitable[object]],
    clients: int,
    seconds: float,
    devices: int,
    result: Result | None = None,
) -> Result:
    """``clients`` concurrent clients doing ``op`` for ``seconds``, added to ``result``."""
    result = Result() if result is None else result
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            device = random.randrange(devices)
            started = time.perf_counter()
            await op(device)
            result.latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds += time.perf_counter() - started
    result.ops = len(result.latencies)
    return result


#: Slices each side of a concurrency row runs in, alternating: both see the same machine.
SLICES = 6


async def drive_pair(
    ours: Callable[[int], Awaitable[object]],
    bare: Callable[[int], Awaitable[object]],
    clients: int,
    seconds: float,
) -> tuple[Result, Result]:
    """Ours and bare for ``seconds`` each, in alternate slices (ours first, then bare first),
    so a disk or CPU that changes speed during the run slows both alike."""
    mine, theirs = Result(), Result()
    for n in range(SLICES):
        first, second = (
            ((ours, mine), (bare, theirs)) if n % 2 == 0 else ((bare, theirs), (ours, mine))
        )
        for op, result in (first, second):
            await drive(op, clients, seconds / SLICES, 1000, result)
    return mine, theirs


async def load(url: str, schema: str, devices: int, size: int) -> None:
    """Fill the buckets table with COPY (the store has created it)."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.execute("TRUNCATE buckets")
        data = payload(size)
        text = encode(data)
        now = time.time()
        chunk = 50_000
        for start in range(0, devices, chunk):
            rows = [
                (f"pixel-{d:07d}", "", text, 1, len(data), len(text), now)
                for d in range(start, min(devices, start + chunk))
            ]
            await conn.copy_records_to_table(
                "buckets",
                records=rows,
                columns=["device", "job", "data", "version", "keys", "size", "updated_at"],
            )
        await conn.execute("ANALYZE buckets")
    finally:
        await conn.close()


def row(label: str, ours: Result, bare: Result | None) -> str:
    if bare is None:
        bare_cols = "– | – | – | –"
    else:
        bare_cols = f"{bare.rate:,.0f} | {bare.pct(0.5):.2f} | {bare.pct(0.99):.2f}"
        bare_cols += f" | {ours.rate / bare.rate:.2f}×"
    return (
        f"| {label} | {ours.rate:,.0f} | {ours.pct(0.5):.2f} | {ours.pct(0.99):.2f} | {bare_cols} |"
    )


async def main(url: str, seconds: float, million: bool) -> None:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(f"{url}?schema={schema}", max_pool=POOL)
    pool = await asyncpg.create_pool(
        url, min_size=8, max_size=POOL, server_settings={"search_path": schema}
    )
    counter = 0
    try:
        await store.migrate()  # creates the schema and tables (a read creates nothing)
        await load(url, schema, 1000, 1024)

        async def ours_get(d: int) -> object:
            return await store.get(f"pixel-{d:07d}")

        async def ours_set(d: int) -> object:
            nonlocal counter
            counter += 1
            return await store.merge(f"pixel-{d:07d}", {"counter": counter})

        async def bare_get(d: int) -> object:
            row = await pool.fetchrow(
                "SELECT data, version, updated_at FROM buckets WHERE device = $1 AND job = $2",
                f"pixel-{d:07d}",
                "",
            )
            assert row is not None
            return json.loads(row["data"])

        async def bare_set(d: int) -> object:
            nonlocal counter
            counter += 1
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT data, version, updated_at FROM buckets"
                    " WHERE device = $1 AND job = $2 FOR UPDATE",
                    f"pixel-{d:07d}",
                    "",
                )
                assert row is not None
                data = json.loads(row["data"])
                data["counter"] = counter
                text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
                await conn.execute(
                    "UPDATE buckets SET data = $3, version = $4, keys = $5, size = $6,"
                    " updated_at = $7 WHERE device = $1 AND job = $2",
                    f"pixel-{d:07d}",
                    "",
                    text,
                    row["version"] + 1,
                    len(data),
                    len(text),
                    time.time(),
                )
            return data

        print("## Concurrency: 1,000 devices, ~1 KB buckets\n")
        print(
            "| operation | store ops/s | p50 ms | p99 ms"
            " | bare asyncpg ops/s | p50 ms | p99 ms | ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for clients in (1, 8, 64):
            for name, ours, bare in (("get", ours_get, bare_get), ("set", ours_set, bare_set)):
                mine, theirs = await drive_pair(ours, bare, clients, seconds)
                print(row(f"{name}, {clients} clients", mine, theirs), flush=True)

        print("\n## Scale: the store at 8 clients\n")
        print("| devices × bucket | get ops/s | p50 ms | p99 ms | set ops/s | p50 ms | p99 ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        sizes = [(1000, 1024), (100_000, 1024)]
        if million:
            sizes.append((1_000_000, 1024))
        sizes.append((1000, 100 * 1024))
        for devices, size in sizes:
            await load(url, schema, devices, size)
            got = await drive(ours_get, 8, seconds, devices)
            put = await drive(ours_set, 8, seconds, devices)
            print(
                f"| {devices:,} × {size // 1024} KB"
                f" | {got.rate:,.0f} | {got.pct(0.5):.2f} | {got.pct(0.99):.2f}"
                f" | {put.rate:,.0f} | {put.pct(0.5):.2f} | {put.pct(0.99):.2f} |",
                flush=True,
            )
    finally:
        await pool.close()
        await store.close()
        conn = await asyncpg.connect(url)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--skip-million", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.seconds, not args.skip_million))
