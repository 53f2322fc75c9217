"""Hostile clients against a real ``devicebucket serve``: what they cost the server.

    .venv/bin/python bench/hostile.py [--mb 200]

Starts ``serve`` on a loopback port over a new SQLite file, then:
* sends three ``--mb`` MB bodies to ``/ui/login`` (urlencoded with a Content-Length,
  urlencoded chunked, multipart) and reports the server's peak RSS before and after and the
  most its TMPDIR held meanwhile;
* runs the storm of lone UTF-16 surrogates: 16 clients PATCH dev-b 60 times each while 2
  send lone surrogates to dev-a, and counts the answers of each side by status.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import select
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
from serving import served

ADMIN = "bench-admin-token-0123456789abcdef"
MB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the peak resident memory so far
            return int(line.split()[1]) / 1024
    return float("nan")


def largest_spool(pid: int, spool: Path, stop: threading.Event, found: list[int]) -> None:
    """Sample the bytes of the files under ``spool`` that process ``pid`` holds open (unnamed
    temporary files included) until ``stop``; keep the largest in ``found``."""
    while not stop.is_set():
        size = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(spool)):
                        size += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        found[0] = max(found[0], size)
        time.sleep(0.01)


def _piece(n: int, multipart: bool) -> bytes:
    """The n-th MB of a hostile body: urlencoded fields just under Starlette's 1 MB part
    limit (so they are all kept), or one multipart file (which Starlette spools to disk)."""
    if multipart:
        head = b'--b\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n'
        return (head if n == 0 else b"") + b"x" * (MB - (len(head) if n == 0 else 0))
    field = f"f{n}=".encode()
    return field + b"x" * (MB - len(field) - 1) + b"&"


def send(port: int, headers: dict[str, str], total: int) -> str:
    chunked = "Content-Length" not in headers
    if chunked:
        headers = {**headers, "Transfer-Encoding": "chunked"}
    head = "POST /ui/login HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    multipart = "multipart" in headers.get("Content-Type", "")
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head.encode() + b"\r\n")
        sent = 0
        while sent < total and not select.select([sock], [], [], 0)[0]:
            piece = _piece(sent // MB, multipart)
            if chunked:
                piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += MB
        if chunked and sent >= total:
            sock.sendall(b"0\r\n\r\n")
        try:
            return sock.recv(64).split(b"\r\n")[0].decode()
        except OSError as exc:
            return type(exc).__name__


async def storm(url: str) -> tuple[collections.Counter[str], collections.Counter[str]]:
    good: collections.Counter[str] = collections.Counter()
    bad: collections.Counter[str] = collections.Counter()
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        async def call(counter: collections.Counter[str], path: str, body: str) -> None:
            try:
                counter[str((await client.patch(path, content=body)).status_code)] += 1
            except httpx.HTTPError as exc:
                counter[type(exc).__name__] += 1

        async def writer(n: int) -> None:
            for i in range(60):
                await call(good, "/v1/devices/dev-b/bucket", f'{{"k{n}": {i}}}')

        async def breaker() -> None:
            for _ in range(60):
                await call(bad, "/v1/devices/dev-a/bucket", '{"a": "\\ud800"}')

        await asyncio.gather(*(writer(n) for n in range(16)), breaker(), breaker())
    return good, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spool = Path(tmp)
        with served(ADMIN, TMPDIR=tmp) as server:
            url, port = server.url, server.port
            httpx.get(f"{url}/ui/login")
            before = rss_mb(server.pid)
            stop, spooled_max = threading.Event(), [0]
            sampler = threading.Thread(
                target=largest_spool, args=(server.pid, spool, stop, spooled_max)
            )
            sampler.start()
            form = "application/x-www-form-urlencoded"
            total = args.mb * MB
            answers = [
                send(port, {"Content-Type": form, "Content-Length": str(total)}, total),
                send(port, {"Content-Type": form}, total),
                send(
                    port,
                    {
                        "Content-Type": "multipart/form-data; boundary=b",
                        "Content-Length": str(total),
                    },
                    total,
                ),
            ]
            after = rss_mb(server.pid)
            stop.set()
            sampler.join()
            spooled = spooled_max[0]
            good, bad = asyncio.run(storm(url))
            fives = [
                line
                for line in httpx.get(f"{url}/metrics").text.splitlines()
                if 'status="5' in line and line.startswith("devicebucket_requests_total")
            ]
            admin = {"Authorization": f"Bearer {ADMIN}"}
            dev_b = httpx.get(f"{url}/v1/devices/dev-b/bucket", headers=admin).json()
            dev_a = httpx.get(f"{url}/v1/devices/dev-a/bucket", headers=admin)
    report = {
        "answers": answers,
        "peak_rss_mb": [round(before), round(after)],
        "spooled_mb": round(spooled / MB),
        "dev_b": dict(good),
        "dev_a": dict(bad),
        "dev_b_has_every_write": dev_b == {f"k{n}": 59 for n in range(16)},
        "dev_a_version": dev_a.headers.get("etag"),
        "server_errors_in_metrics": fives,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(f"{args.mb} MB sign-in bodies: answers {answers}")
    print(
        f"server peak RSS {before:.0f} MB before, {after:.0f} MB after; at most"
        f" {spooled / MB:.0f} MB in files it held open in its TMPDIR"
    )
    print(f"storm: dev-b {dict(good)}, dev-a {dict(bad)}; 5xx in /metrics: {fives or 'none'}")


if __name__ == "__main__":
    main()
