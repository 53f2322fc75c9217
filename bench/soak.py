"""Soak: mixed traffic against `devicebucket serve` for a bounded time; memory and p99 over time.

    .venv/bin/python bench/soak.py --seconds 900            # the 15-minute run
    .venv/bin/python bench/soak.py --seconds 60 --json      # what tests/test_soak.py runs

Starts `devicebucket serve` on a fresh SQLite file, then `--clients` connections send a mix
for `--seconds` (and never more than `--max-requests`): 60 % GET, 25 % PATCH, 10 % conditional
PATCH (If-Match, 412 retried by reading again), 5 % history reads. Every `--window` seconds it
records the server's resident memory (VmRSS) and the window's request count and p99. At the
end it prints a table and checks that memory stayed flat (the last window within
`--max-growth-mb` of the first) and that p99 stayed within 2x of the first window's. It exits
1 if either check fails, if any request failed, or if any bucket lost an acknowledged write.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from serving import served

ADMIN = "soak-admin-token-0123456789abcdef"


@dataclass
class Window:
    started: float
    latencies: list[float] = field(default_factory=list)
    rss_mb: float = 0.0

    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000 if ordered else 0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def client(
    http: httpx.AsyncClient,
    devices: int,
    deadline: float,
    budget: list[int],
    windows: list[Window],
    counters: dict[str, int],
    acked: dict[str, int],
) -> None:
    rng = random.Random()
    while time.monotonic() < deadline and budget[0] > 0:
        budget[0] -= 1
        device = f"soak-{rng.randrange(devices):05d}"
        path = f"/v1/devices/{device}/bucket"
        roll = rng.random()
        started = time.perf_counter()
        if roll < 0.60:
            response = await http.get(path)
        elif roll < 0.85:
            value = rng.randrange(1 << 30)
            response = await http.patch(path, json={"last": value, "pad": "x" * 200})
        elif roll < 0.95:
            current = await http.get(path)
            etag = current.headers["etag"]
            seen = current.json().get("count", 0)
            response = await http.patch(path, json={"count": seen + 1}, headers={"If-Match": etag})
            if response.status_code == 200:
                acked[device] = acked.get(device, 0) + 1
        else:
            response = await http.get(f"{path}/history", params={"limit": 20})
        windows[-1].latencies.append(time.perf_counter() - started)
        status = response.status_code
        counters["requests"] += 1
        if status >= 500 or status in (400, 401, 403, 404, 413, 422):
            counters["failed"] += 1
        elif status == 412:
            counters["conflicts"] += 1


async def soak(args: argparse.Namespace, url: str, pid: int) -> dict[str, object]:
    windows = [Window(time.monotonic())]
    counters = {"requests": 0, "failed": 0, "conflicts": 0}
    acked: dict[str, int] = {}
    budget = [args.max_requests]
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as http:
        deadline = time.monotonic() + args.seconds

        async def sample() -> None:
            while time.monotonic() < deadline and budget[0] > 0:
                await asyncio.sleep(args.window)
                windows[-1].rss_mb = rss_mb(pid)
                windows.append(Window(time.monotonic()))

        tasks = [
            client(http, args.devices, deadline, budget, windows, counters, acked)
            for _ in range(args.clients)
        ]
        await asyncio.gather(sample(), *tasks)
        windows[-1].rss_mb = rss_mb(pid)
        lost = 0
        for device, count in acked.items():
            stored = (await http.get(f"/v1/devices/{device}/bucket")).json().get("count", 0)
            lost += stored != count
    full = [w for w in windows if len(w.latencies) >= 100]
    first, last = full[0], full[-1]
    return {
        "seconds": args.seconds,
        "clients": args.clients,
        **counters,
        "buckets_with_lost_increments": lost,
        "windows": [
            {
                "at_s": round(w.started - windows[0].started),
                "requests": len(w.latencies),
                "p99_ms": round(w.p99_ms(), 2),
                "rss_mb": round(w.rss_mb, 1),
            }
            for w in full
        ],
        "rss_growth_mb": round(last.rss_mb - first.rss_mb, 1),
        "p99_ratio": round(last.p99_ms() / first.p99_ms(), 2) if first.p99_ms() else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--max-requests", type=int, default=20_000_000)
    parser.add_argument("--max-growth-mb", type=float, default=20)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    with served(ADMIN) as server:
        result = asyncio.run(soak(args, server.url, server.pid))
    windows = result["windows"]
    assert isinstance(windows, list)
    ok = (
        result["failed"] == 0
        and result["buckets_with_lost_increments"] == 0
        and float(str(result["rss_growth_mb"])) <= args.max_growth_mb
        and float(str(result["p99_ratio"])) <= 2.0
    )
    result["ok"] = ok
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['requests']:,} requests in {args.seconds:.0f} s from {args.clients} clients;"
            f" failed {result['failed']}, 412 conflicts {result['conflicts']},"
            f" buckets with lost increments {result['buckets_with_lost_increments']}\n"
        )
        print("| from s | requests | p99 ms | server RSS MB |")
        print("|---:|---:|---:|---:|")
        for w in windows:
            print(f"| {w['at_s']} | {w['requests']:,} | {w['p99_ms']} | {w['rss_mb']} |")
        print(
            f"\nRSS growth first→last window: {result['rss_growth_mb']} MB;"
            f" p99 last/first: {result['p99_ratio']}×; {'OK' if ok else 'FAILED'}"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
