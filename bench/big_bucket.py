"""A device page over a huge bucket: how much HTML, how long, and how slow ``/healthz`` gets
meanwhile (a device token filled a job bucket with ~92,000 keys; #11 item 5).

    python bench/big_bucket.py [--keys 90000] [--views 3]

Seeds the bucket over HTTP with a device token, as the finding did, then opens the device
page ``--views`` times while another client polls ``/healthz`` without a pause.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx
from serving import served

ADMIN = "bench-admin-token-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--keys", type=int, default=90_000)
    parser.add_argument("--views", type=int, default=3)
    args = parser.parse_args()
    with served(ADMIN) as server, httpx.Client(base_url=server.url, timeout=120) as admin:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        admin.put("/v1/jobs/big", json={}, headers=auth).raise_for_status()
        token = admin.post("/v1/devices/pixel-1/tokens", headers=auth).json()["token"]
        bucket = {f"k{n:05d}": 0 for n in range(args.keys)}
        admin.patch(
            "/v1/devices/pixel-1/jobs/big/bucket",
            json=bucket,
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()
        admin.post("/ui/login", data={"token": ADMIN})
        sizes: list[int] = []
        times: list[float] = []

        def view() -> None:
            with httpx.Client(base_url=server.url, cookies=admin.cookies, timeout=120) as ui:
                for _ in range(args.views):
                    started = time.perf_counter()
                    page = ui.get("/ui/devices/pixel-1")
                    times.append(time.perf_counter() - started)
                    sizes.append(len(page.content))

        viewer = threading.Thread(target=view)
        viewer.start()
        health: list[float] = []
        with httpx.Client(base_url=server.url, timeout=120) as prober:
            while viewer.is_alive():
                started = time.perf_counter()
                prober.get("/healthz")
                health.append(time.perf_counter() - started)
        viewer.join()
    print(f"keys in the bucket:        {args.keys:,}")
    print(
        f"device page:               {statistics.median(sizes) / 1e6:.2f} MB of HTML,"
        f" {statistics.median(times) * 1000:.0f} ms (median of {args.views})"
    )
    print(
        f"/healthz meanwhile:        p50 {statistics.median(health) * 1000:.1f} ms,"
        f" max {max(health) * 1000:.1f} ms ({len(health)} requests)"
    )


if __name__ == "__main__":
    main()
