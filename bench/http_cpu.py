"""The Python work of one HTTP GET and PATCH through the app, without a network or a server.

    eatmydata .venv/bin/python bench/http_cpu.py [--requests 5000] [--repeats 7]

The ASGI app is called directly (no uvicorn, no sockets), with the same requests
``bench_http.py`` sends: a bearer token, random devices among 1,000 with ~1 KB buckets, and
``{"counter": n}`` as the PATCH body. It reports the best µs per request of ``--repeats``
blocks, for devicebucket's app (embedded SQLite store, history on) and for the bare
Starlette app of ``bench_http.py`` (``bare_app.py``). Run it under ``eatmydata`` so that a
PATCH's fsync is left out: what remains is the work the server process does for a request
besides HTTP parsing, and it repeats to a microsecond on a quiet machine, where the wrk
figures move by ±10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import bare_app
from bench_http import PAYLOAD, TOKEN
from write_cpu import timed

from devicebucket import SQLiteStore
from devicebucket.web.app import create_app

App = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]


async def call(app: App, method: str, path: str, body: bytes = b"") -> int:
    """One request; its status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def measure(app: App, requests: int, repeats: int) -> tuple[float, float]:
    """Best µs per GET and per PATCH (``write_cpu.timed``'s blocks)."""
    payload = json.dumps(PAYLOAD).encode()
    for device in range(1000):
        assert await call(app, "PATCH", f"/v1/devices/pixel-{device}/bucket", payload) == 200

    async def patch_one(n: int) -> int:
        body = b'{"counter": %d}' % n
        return await call(app, "PATCH", f"/v1/devices/pixel-{n % 1000}/bucket", body)

    async def get_one(n: int) -> int:
        return await call(app, "GET", f"/v1/devices/pixel-{n % 1000}/bucket")

    patches, gets = await timed(patch_one, get_one, requests, repeats)
    assert await call(app, "GET", "/v1/devices/pixel-0/bucket") == 200
    return gets, patches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devicebucket-httpcpu-") as tmp:
        ours = create_app(SQLiteStore(Path(tmp) / "b.db"), admin_token=TOKEN)
        mine = asyncio.run(measure(ours, args.requests, args.repeats))
    bare = asyncio.run(measure(bare_app.app, args.requests, args.repeats))
    print("| app | GET, µs | PATCH, µs |")
    print("|---|---:|---:|")
    print(f"| devicebucket | {mine[0]:.1f} | {mine[1]:.1f} |")
    print(f"| bare Starlette | {bare[0]:.1f} | {bare[1]:.1f} |")


if __name__ == "__main__":
    main()
