"""Slow and idle clients: ``serve`` closes a connection whose request does not arrive in time
(``web.connections``), and other clients are served meanwhile."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from ..servers import ADMIN, ServeProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    db = tmp_path_factory.mktemp("slow") / "slow.db"
    env = {"DEVICEBUCKET_READ_TIMEOUT_SECONDS": "1"}
    with ServeProcess(f"sqlite:///{db}", env=env) as running:
        yield running


def connect(server: ServeProcess) -> socket.socket:
    address = urlsplit(server.url)
    sock = socket.create_connection((address.hostname, address.port), timeout=10)
    return sock


def closed_after(sock: socket.socket) -> tuple[float, bytes]:
    """Read until the server closes the connection: how long that took, and what it sent."""
    started, received = time.monotonic(), b""
    while chunk := sock.recv(4096):
        received += chunk
    return time.monotonic() - started, received


def test_a_connection_that_sends_nothing_is_closed(server: ServeProcess) -> None:
    with connect(server) as sock:
        waited, answer = closed_after(sock)
    assert waited < 4
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_many_slow_headers_are_cut_off_and_others_are_served_meanwhile(
    server: ServeProcess,
) -> None:
    slow = [connect(server) for _ in range(50)]
    try:
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        outcomes = [closed_after(sock) for sock in slow]
    finally:
        for sock in slow:
            sock.close()
    assert all(waited < 4 for waited, _ in outcomes), [w for w, _ in outcomes]
    assert all(answer.startswith(b"HTTP/1.1 408 ") for _, answer in outcomes)


def test_a_body_that_trickles_in_is_cut_off_and_writes_nothing(
    server: ServeProcess, tmp_path: Path
) -> None:
    headers = (
        "PATCH /v1/devices/slow-1/bucket HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100000\r\n\r\n"
    )
    started = time.monotonic()
    with connect(server) as sock:
        sock.sendall(headers.encode() + b'{"a": "')
        try:
            while time.monotonic() - started < 10:  # a client sending 40 bytes a second
                sock.sendall(b"x" * 4)
                time.sleep(0.1)
        except OSError:  # the server closed the connection
            pass
    assert time.monotonic() - started < 5
    bucket = httpx.get(
        f"{server.url}/v1/devices/slow-1/bucket", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert bucket.json() == {}


def test_a_prompt_client_on_a_kept_alive_connection_is_served(server: ServeProcess) -> None:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=server.url, headers=auth) as client:
        for n in range(5):
            response = client.patch(
                "/v1/devices/fast-1/bucket", json={"n": n, "pad": "x" * 100_000}
            )
            assert response.status_code == 200
        assert client.get("/v1/devices/fast-1/bucket").json()["n"] == 4
