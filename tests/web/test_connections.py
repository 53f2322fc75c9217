"""Slow and idle clients: ``serve`` closes a connection whose request does not arrive in time
(``web.connections``), and other clients are served meanwhile."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from devicebucket.web.connections import OneWrite

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


# --- one write a response ----------------------------------------------------------------


def exchange(server: ServeProcess, request: bytes, until: bytes) -> bytes:
    """Send raw ``request`` on a new connection; what arrives until ``until`` has."""
    received = b""
    with connect(server) as sock:
        sock.sendall(request)
        while until not in received:
            chunk = sock.recv(65536)
            assert chunk, received
            received += chunk
    return received


def test_pipelined_requests_are_answered_whole_and_in_order(server: ServeProcess) -> None:
    auth = f"Authorization: Bearer {ADMIN}\r\nHost: x\r\n"
    body = b'{"n": 1}'
    request = (
        f"PATCH /v1/devices/pipe-1/bucket HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    request += f"GET /v1/devices/pipe-1/bucket HTTP/1.1\r\n{auth}\r\n".encode()
    request += (
        f"HEAD /v1/devices/pipe-1/bucket HTTP/1.1\r\n{auth}Connection: close\r\n\r\n"
    ).encode()
    answers = exchange(server, request, b"connection: close\r\n\r\n").split(b"HTTP/1.1 ")[1:]
    assert [a[:3] for a in answers] == [b"200"] * 3
    assert answers[0].endswith(b'\r\n\r\n{"n":1}')
    assert b'etag: "1"' in answers[0]
    assert answers[1].endswith(b'\r\n\r\n{"n":1}')
    assert answers[2].endswith(b"\r\n\r\n")  # HEAD: the headers, which no body follows


def test_a_client_that_expects_100_continue_gets_it_then_the_answer(
    server: ServeProcess,
) -> None:
    body = b'{"c": 2}'
    head = (
        "PATCH /v1/devices/pipe-2/bucket HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head.encode())
        assert sock.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        received = b""
        while not received.endswith(b'{"c":2}'):
            chunk = sock.recv(4096)
            assert chunk, received
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 ")


def test_an_event_stream_sends_its_headers_before_any_event(server: ServeProcess) -> None:
    request = (
        f"GET /v1/devices/pipe-3/bucket/changes HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {ADMIN}\r\nAccept: text/event-stream\r\n\r\n"
    )
    # Nothing is written to the bucket: no event comes, only the headers (within the
    # socket's timeout, far below the stream's first heartbeat).
    answer = exchange(server, request.encode(), b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert b"text/event-stream" in answer


async def one_write_pair() -> tuple[OneWrite, asyncio.Transport, socket.socket]:
    """A OneWrite over a real transport on one end of a socket pair; the other end."""
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    transport, _ = await asyncio.get_running_loop().create_connection(asyncio.Protocol, sock=ours)
    return OneWrite(transport, asyncio.get_running_loop()), transport, theirs


def pending(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except BlockingIOError:
        return b""


def test_one_write_sends_a_write_with_the_next_and_alone_when_the_loop_runs() -> None:
    async def scenario() -> list[bytes]:
        writer, transport, peer = await one_write_pair()
        seen = []
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        seen.append(pending(peer))  # held
        writer.write(b"body")
        seen.append(pending(peer))  # both, together
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await asyncio.sleep(0)  # the loop runs: what was held leaves alone
        seen.append(pending(peer))
        writer.write(b"held, then the connection closes")
        writer.close()
        await asyncio.sleep(0)
        seen.append(pending(peer))
        assert transport.is_closing()
        peer.close()
        return seen

    assert asyncio.run(scenario()) == [
        b"",
        b"HTTP/1.1 200 OK\r\n\r\nbody",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"held, then the connection closes",
    ]


def test_one_write_drops_what_waits_when_the_peer_has_gone() -> None:
    async def scenario() -> bytes:
        writer, transport, peer = await one_write_pair()
        writer.write(b"headers")
        transport.abort()  # the connection is lost before the loop runs
        await asyncio.sleep(0)
        received = pending(peer)
        peer.close()
        return received

    assert asyncio.run(scenario()) == b""
