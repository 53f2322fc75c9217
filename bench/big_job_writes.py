"""What a device that writes to a big job bucket costs every other device's writes.

    python bench/big_job_writes.py [--items 150000] [--seconds 6] [--big 1] [--flood 1]
                                   [--no-schema]

``--big`` devices' tokens each fill their job bucket with ``--items`` integers under a job
whose schema says ``{"items": {"type": "array", "items": {"type": "integer"}}}`` (about 1
MB, under the 1 MiB bucket limit), then set one small key of it again and again (each write
checks the whole merged bucket against the schema), while another device's automation sets
a small key of its own device bucket in a loop. Prints that automation's write latencies
and how many writes each side made; ``--no-schema`` registers the job without a schema.
``--flood N``: the first big device sends N writes at once, again and again (the others one
at a time); the big devices' own write latencies are printed too.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import threading
import time

import httpx
from serving import served

ADMIN = "bench-admin-token-0123456789abcdef"
SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=150_000)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--big", type=int, default=1)
    parser.add_argument("--flood", type=int, default=1)
    parser.add_argument("--no-schema", action="store_true")
    args = parser.parse_args()
    with served(ADMIN) as server, httpx.Client(base_url=server.url, timeout=120) as admin:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        job = {} if args.no_schema else {"bucket_schema": SCHEMA}
        admin.put("/v1/jobs/big", json=job, headers=auth).raise_for_status()

        def token(device: str) -> str:
            response = admin.post(f"/v1/devices/{device}/tokens", headers=auth)
            return f"Bearer {response.json()['token']}"

        bigs = [(f"big-{n}", token(f"big-{n}")) for n in range(args.big)]
        other = token("pixel-2")
        for device, big in bigs:
            admin.patch(
                f"/v1/devices/{device}/jobs/big/bucket",
                json={"items": list(range(args.items))},
                headers={"Authorization": big},
            ).raise_for_status()
        stop = threading.Event()
        big_times: list[list[float]] = [[] for _ in range(args.big)]
        values = itertools.count()

        def write_big(n: int) -> None:
            device, big = bigs[n]
            with httpx.Client(base_url=server.url, timeout=120) as client:
                while not stop.is_set():
                    started = time.perf_counter()
                    value = next(values)  # each write its own key and value
                    client.patch(
                        f"/v1/devices/{device}/jobs/big/bucket",
                        json={f"n{value % 64}": value},
                        headers={"Authorization": big},
                    ).raise_for_status()
                    big_times[n].append(time.perf_counter() - started)

        threads = [0] * args.flood + list(range(1, args.big))
        writers = [threading.Thread(target=write_big, args=(n,)) for n in threads]
        for writer in writers:
            writer.start()
        latencies: list[float] = []
        with httpx.Client(base_url=server.url, timeout=120) as client:
            ends = time.perf_counter() + args.seconds
            while time.perf_counter() < ends:
                started = time.perf_counter()
                client.patch(
                    "/v1/devices/pixel-2/bucket",
                    json={"n": len(latencies)},
                    headers={"Authorization": other},
                ).raise_for_status()
                latencies.append(time.perf_counter() - started)
        stop.set()
        for writer in writers:
            writer.join()
    kind = "none" if args.no_schema else "items: integer"
    print(f"schema: {kind}; {args.big} bucket(s) of {args.items:,} items")
    print(f"writes to the big job buckets: {sum(map(len, big_times))} in {args.seconds:.0f} s")
    print(f"another device's small writes: {len(latencies)}")
    print(f"  their latency ms: {_spread(latencies)}")
    if args.flood > 1:
        print(f"big-0, {args.flood} writes at once: {len(big_times[0])}")
        print(f"  their latency ms: {_spread(big_times[0])}")
        rest = [t for times in big_times[1:] for t in times]
        if rest:
            print(f"the other big devices, one at a time: {len(rest)}")
            print(f"  their latency ms: {_spread(rest)}")


def _spread(seconds: list[float]) -> str:
    ms = sorted(x * 1000 for x in seconds)
    return f"p50 {statistics.median(ms):.1f} · p90 {ms[int(len(ms) * 0.9)]:.1f} · max {ms[-1]:.1f}"


if __name__ == "__main__":
    main()
