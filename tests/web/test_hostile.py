"""Hostile clients against a real ``serve``: huge forms, broken Unicode, a failing writer.
None of them may cost the server memory or disk, or fail another client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
from pathlib import Path

import httpx
import pytest

from ..servers import ADMIN, ServeProcess

MB = 1024 * 1024


def rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def largest_open_file(pid: int, under: Path, stop: threading.Event, found: list[int]) -> None:
    """Until ``stop``: the largest total size of files under ``under`` that ``pid`` holds
    open (unnamed temporary files included, which no directory listing shows)."""
    while not stop.is_set():
        size = 0
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(str(under)):
                        size += os.stat(f"/proc/{pid}/fd/{fd}").st_size
        found[0] = max(found[0], size)
        stop.wait(0.01)


def _piece(n: int, multipart: bool) -> bytes:
    """The n-th MB of a hostile body: urlencoded fields just under Starlette's 1 MB part
    limit (so they are all kept), or one multipart file (which Starlette spools to disk)."""
    if multipart:
        head = b'--b\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n'
        return (head if n == 0 else b"") + b"x" * (MB - (len(head) if n == 0 else 0))
    field = f"f{n}=".encode()
    return field + b"x" * (MB - len(field) - 1) + b"&"


def send_huge(port: int, path: str, headers: dict[str, str], total: int) -> bytes:
    """Send ``total`` bytes of body (chunked if no Content-Length is given) and stop as soon
    as the server answers; return the answer's first bytes."""
    chunked = "Content-Length" not in headers
    if chunked:
        headers = {**headers, "Transfer-Encoding": "chunked"}
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    multipart = "multipart" in headers.get("Content-Type", "")
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode() + b"\r\n")
        sent = 0
        while sent < total:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered: it is not reading the rest
            piece = _piece(sent // MB, multipart)
            if chunked:
                piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += MB
        return sock.recv(64)


@pytest.mark.slow
def test_a_200_mb_sign_in_costs_no_memory_and_no_disk(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    with ServeProcess(db_url) as server:
        httpx.get(f"{server.url}/ui/login")  # warm up: templates loaded, buffers sized
        before = rss(server.process.pid)
        stop, spooled = threading.Event(), [0]
        sampler = threading.Thread(
            target=largest_open_file, args=(server.process.pid, spool, stop, spooled)
        )
        sampler.start()
        form = "application/x-www-form-urlencoded"
        answers = [
            send_huge(
                server.port,
                "/ui/login",
                {"Content-Type": form, "Content-Length": str(200 * MB)},
                200 * MB,
            ),
            send_huge(server.port, "/ui/login", {"Content-Type": form}, 200 * MB),
            send_huge(
                server.port,
                "/ui/login",
                {
                    "Content-Type": "multipart/form-data; boundary=b",
                    "Content-Length": str(200 * MB),
                },
                200 * MB,
            ),
        ]
        after = rss(server.process.pid)
        stop.set()
        sampler.join()
        healthy = httpx.get(f"{server.url}/healthz")
    assert [a.split(b"\r\n")[0] for a in answers] == [
        b"HTTP/1.1 413 Request Entity Too Large",
        b"HTTP/1.1 413 Request Entity Too Large",
        b"HTTP/1.1 415 Unsupported Media Type",
    ]
    assert after - before < 20 * MB, (before, after)
    assert healthy.status_code == 200
    assert spooled == [0]  # nothing spooled to disk, not even an unnamed temporary file
    assert list(spool.iterdir()) == []


@pytest.mark.slow
def test_broken_unicode_from_one_device_never_fails_another(db_url: str) -> None:
    """The storm of the issue: 16 clients write dev-b while 2 send lone surrogates to dev-a."""
    admin = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}

    async def storm(url: str) -> tuple[list[int], list[int]]:
        good: list[int] = []
        bad: list[int] = []
        async with httpx.AsyncClient(base_url=url, headers=admin, timeout=30) as client:

            async def writer(n: int) -> None:
                for i in range(60):
                    response = await client.patch(
                        "/v1/devices/dev-b/bucket", content=f'{{"k{n}": {i}}}'
                    )
                    good.append(response.status_code)

            async def breaker() -> None:
                for i in range(60):
                    body = '{"a": "\\ud800"}' if i % 2 else '{"\\udfff": {"x": [1, "\\ud83d"]}}'
                    response = await client.patch("/v1/devices/dev-a/bucket", content=body)
                    bad.append(response.status_code)

            await asyncio.gather(*(writer(n) for n in range(16)), breaker(), breaker())
        return good, bad

    with ServeProcess(db_url, "--no-access-log") as server:
        good, bad = asyncio.run(storm(server.url))
        metrics = httpx.get(f"{server.url}/metrics").text
        stored = httpx.get(f"{server.url}/v1/devices/dev-b/bucket", headers=admin).json()
        untouched = httpx.get(f"{server.url}/v1/devices/dev-a/bucket", headers=admin)
    assert good == [200] * (16 * 60)
    assert bad == [422] * 120
    assert stored == {f"k{n}": 59 for n in range(16)}
    assert untouched.json() == {}
    assert untouched.headers["etag"] == '"0"'
    assert 'status="500"' not in metrics
