"""What a device that writes to a big job bucket costs every other device's writes.

    python bench/big_job_writes.py [--items 150000] [--seconds 6] [--big 1] [--no-schema]

``--big`` devices' tokens each fill their job bucket with ``--items`` integers under a job
whose schema says ``{"items": {"type": "array", "items": {"type": "integer"}}}`` (about 1
MB, under the 1 MiB bucket limit), then set one small key of it again and again (each write
checks the whole merged bucket against the schema), while another device's automation sets
a small key of its own device bucket in a loop. Prints that automation's write latencies
and how many writes each side made; ``--no-schema`` registers the job without a schema.
"""

from __future__ import annotations

import argparse
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
        big_writes = [0] * args.big

        def write_big(n: int) -> None:
            device, big = bigs[n]
            with httpx.Client(base_url=server.url, timeout=120) as client:
                while not stop.is_set():
                    client.patch(
                        f"/v1/devices/{device}/jobs/big/bucket",
                        json={"n": big_writes[n]},
                        headers={"Authorization": big},
                    ).raise_for_status()
                    big_writes[n] += 1

        writers = [threading.Thread(target=write_big, args=(n,)) for n in range(args.big)]
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
    ms = sorted(x * 1000 for x in latencies)
    kind = "none" if args.no_schema else "items: integer"
    print(f"schema: {kind}; {args.big} bucket(s) of {args.items:,} items")
    print(f"writes to the big job buckets: {sum(big_writes)} in {args.seconds:.0f} s")
    print(f"another device's small writes: {len(ms)}")
    print(
        f"  their latency ms: p50 {statistics.median(ms):.1f}"
        f" · p90 {ms[int(len(ms) * 0.9)]:.1f} · max {ms[-1]:.1f}"
    )


if __name__ == "__main__":
    main()
