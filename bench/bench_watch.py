"""Watches: how long a write takes to reach a watcher, and how many events a server sends to
1,000 watchers of one bucket.

    .venv/bin/python bench/bench_watch.py [--writes 300] [--watchers 1000] [--pg URL]

* Latency, write to event, p50 and p99, on SQLite and PostgreSQL: the writer in the
  watcher's process (the change is handed over in memory), and in another process (the
  watcher's store hears of it by looking every 20 ms). Each write carries its wall-clock
  time; the watcher subtracts it from the time it receives the change.
* Fan-out: ``--watchers`` event streams of one bucket open on one ``devicebucket serve``
  (SQLite), then ``--writes`` writes; events received per second by all of them together,
  counted until every stream has the last version (or 60 s pass).
PostgreSQL runs when ``--pg`` (default ``postgresql://postgres@127.0.0.1/test``) answers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import aclosing, suppress
from pathlib import Path

from serving import served

from devicebucket import Store, open_store

ADMIN = "bench-admin-token-0123456789abcdef"
WRITER = """
import asyncio, sys, time
from devicebucket import open_store
async def main():
    store = open_store(sys.argv[1])
    for n in range(int(sys.argv[2])):
        await store.merge("pixel-1", {"sent": time.time(), "n": n})
        await asyncio.sleep(0.002)
    await store.close()
asyncio.run(main())
"""


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


async def latency(url: str, writes: int, elsewhere: bool) -> tuple[float, float]:
    """p50 and p99 in ms from a write to its event, the writer here or in another process."""
    store: Store = open_store(url)
    await store.merge("pixel-1", {"sent": time.time(), "n": -1})  # the tables exist
    samples: list[float] = []
    try:
        async with aclosing(store.watch("pixel-1")) as events:

            async def receive() -> None:
                async for event in events:
                    changed = getattr(event, "changed", {})
                    if "sent" in changed:
                        samples.append((time.time() - changed["sent"]) * 1000)
                    if changed.get("n") == writes - 1:
                        return

            receiving = asyncio.create_task(receive())
            await asyncio.sleep(0.1)
            if elsewhere:
                writer = await asyncio.create_subprocess_exec(
                    sys.executable, "-c", WRITER, url, str(writes)
                )
                await writer.wait()
            else:
                for n in range(writes):
                    await store.merge("pixel-1", {"sent": time.time(), "n": n})
                    await asyncio.sleep(0.002)
            await asyncio.wait_for(receiving, 60)
    finally:
        await store.close()
    return quantiles(samples)


async def fan_out(watchers: int, writes: int) -> tuple[float, int, float]:
    """Events per second received by ``watchers`` streams of one bucket, how many were
    received, and the seconds from the first write to the last event."""
    with served(ADMIN, DEVICEBUCKET_WATCHERS_PER_TOKEN=str(watchers + 10)) as server:
        host, port = "127.0.0.1", server.port
        request = (
            f"GET /v1/devices/pixel-1/bucket/changes HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {ADMIN}\r\n\r\n"
        ).encode()
        last = f"id: {writes}".encode()
        received = 0
        done = 0
        finished = asyncio.Event()

        async def watch() -> None:
            nonlocal received, done
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        return
                    if line.startswith(b"id: "):
                        received += 1
                        if line.strip() == last:
                            done += 1
                            if done == watchers:
                                finished.set()
                            return
            finally:
                writer.close()

        tasks = [asyncio.create_task(watch()) for _ in range(watchers)]
        await asyncio.sleep(2 + watchers / 500)  # every stream open
        store = open_store(server.url, token=ADMIN)
        started = time.perf_counter()
        for n in range(writes):
            await store.merge("pixel-1", {"n": n})
        with suppress(TimeoutError):
            await asyncio.wait_for(finished.wait(), 60)
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.close()
    return received / elapsed, received, elapsed


async def drop(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def pg_reachable(url: str) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stores = [("SQLite", f"sqlite:///{Path(tmp) / 'w.db'}")]
        schema = f"bench_watch_{uuid.uuid4().hex[:8]}"
        if await pg_reachable(args.pg):
            stores.append(("PostgreSQL", f"{args.pg}?schema={schema}"))
        else:
            print(f"PostgreSQL is not reachable at {args.pg}: its rows are left out")
        print("| store | writer | p50 ms | p99 ms |")
        print("|---|---|---:|---:|")
        for name, url in stores:
            for elsewhere in (False, True):
                p50, p99 = await latency(url, args.writes, elsewhere)
                where = "another process" if elsewhere else "same process"
                print(f"| {name} | {where} | {p50:.2f} | {p99:.2f} |")
        if len(stores) > 1:
            await drop(args.pg, schema)
    rate, received, elapsed = await fan_out(args.watchers, args.writes)
    print()
    print(
        f"fan-out: {args.watchers:,} streams x {args.writes} writes: {received:,} events in"
        f" {elapsed:.2f} s = {rate:,.0f} events/s"
    )


if __name__ == "__main__":
    asyncio.run(main())
