"""How fast the dashboard's device list is with many devices.

    .venv/bin/python bench/bench_dashboard.py --devices 100000 [--db postgresql://...]

Fills a fresh store with ``--devices`` devices (~1 KB device buckets, one in ten with a job
bucket), then times whole dashboard pages (store query + HTML rendering, in process through
ASGI) for each sort, a search and a late page, and prints p50/p99 per page. The last row
writes to 100 random devices before each page (the writes are not timed): a sorted page
then first brings its totals up to date.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from devicebucket import BucketRecord, Store, open_store
from devicebucket.web.app import create_app

ADMIN = "bench-admin-token-0123456789abcdef"

PAGES = {
    "devices by id": "/ui/devices",
    "by keys, descending": "/ui/devices?sort=keys&order=desc",
    "by size, descending": "/ui/devices?sort=size&order=desc",
    "by last update": "/ui/devices?sort=updated_at&order=desc",
    "search 'pixel-4242'": "/ui/devices?q=pixel-4242",
    "page 1000 by id": "/ui/devices?page=1000",
    "one device": "/ui/devices/pixel-004242",
    "job with its devices": "/ui/jobs/signup",
}
#: Pages timed after this many writes to random devices each (not timed themselves).
WRITTEN_BEFORE = {
    "by last update, 100 writes before each": ("/ui/devices?sort=updated_at&order=desc", 100)
}


async def fill(store: Store, devices: int) -> None:
    now = time.time()
    records = []
    for n in range(devices):
        data = {f"k{i}": "v" * 40 + str(n) for i in range(n % 7 + 14)}
        records.append(BucketRecord(f"pixel-{n:06}", None, data, 1 + n % 5, now - n))
        if n % 10 == 0:
            records.append(BucketRecord(f"pixel-{n:06}", "signup", {"step": n}, 1, now - n))
        if len(records) >= 20_000:
            await store.import_records(records)
            records = []
    await store.import_records(records)
    await store.register_job("signup", automation="signup.py", schema={"type": "object"})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--db", help="store URL (default: a new SQLite file)")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'dashboard.db'}"
        store = open_store(url)
        started = time.perf_counter()
        await fill(store, args.devices)
        print(
            f"{args.devices:,} devices in {url.split('://')[0]}, filled in "
            f"{time.perf_counter() - started:.1f}s\n"
        )
        app = create_app(store, admin_token=ADMIN)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            signed_in = await client.post("/ui/login", data={"token": ADMIN})
            assert signed_in.status_code == 303
            print("| page | p50 ms | p99 ms |")
            print("|---|---:|---:|")
            pages = {name: (path, 0) for name, path in PAGES.items()} | WRITTEN_BEFORE
            for name, (path, writes) in pages.items():
                times = []
                for round_ in range(args.rounds):
                    for n in range(writes):
                        device = f"pixel-{(round_ * 7919 + n * 104729) % args.devices:06}"
                        await store.merge(device, {"written": n})
                    t0 = time.perf_counter()
                    response = await client.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                times.sort()
                p99 = times[min(len(times) - 1, round(0.99 * len(times)))]
                print(f"| {name} | {statistics.median(times):.1f} | {p99:.1f} |")
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
