"""An idle keep-alive connection: the HTTP client store lets go of it before the server
closes it, so no request is ever sent on a connection in the moment the server closes it."""

from __future__ import annotations

import asyncio
import re
import socket
import time

from devicebucket import HTTPStore
from devicebucket.wire.timing import CLIENT_KEEP_ALIVE_SECONDS, SERVER_KEEP_ALIVE_SECONDS

from ..servers import ADMIN, ServeProcess

#: How long the connections stay idle here: past the client's time, within the server's.
IDLE = CLIENT_KEEP_ALIVE_SECONDS + 0.5


def test_the_server_keeps_an_idle_connection_longer_than_the_client_does() -> None:
    # The margin covers a loaded machine's delay between a response sent and read.
    assert SERVER_KEEP_ALIVE_SECONDS - CLIENT_KEEP_ALIVE_SECONDS >= 2
    assert IDLE < SERVER_KEEP_ALIVE_SECONDS


def client_ports(server: ServeProcess, count: int) -> list[str]:
    """The client ports of the server's first ``count`` access log lines for ``/v1/``,
    once it has written them (it logs each as the response starts)."""
    deadline = time.monotonic() + 10
    while True:
        ports = re.findall(r"127\.0\.0\.1:(\d+) - \"GET /v1/", server.log.read_text())
        if len(ports) >= count or time.monotonic() > deadline:
            return ports
        time.sleep(0.01)


def request(sock: socket.socket) -> bytes:
    """A request on a raw connection kept alive, and the status line of its answer."""
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: devicebucket\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            return b"closed"
        answer += chunk
    return answer.split(b"\r\n", 1)[0]


def test_an_idle_connection_is_let_go_by_the_client_first(db_url: str) -> None:
    with ServeProcess(db_url) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)

        async def run() -> None:
            store = HTTPStore(server.url, token=ADMIN)
            try:
                await store.get("pixel")
                assert request(raw) == b"HTTP/1.1 200 OK"
                await asyncio.sleep(IDLE)  # the idle time is what is tested
                # The server still holds the raw connection, idle as long ...
                assert request(raw) == b"HTTP/1.1 200 OK"
                # ... while the client store has let go of its own and opens another.
                await store.get("pixel")
            finally:
                await store.close()

        try:
            asyncio.run(run())
        finally:
            raw.close()
        first, second = client_ports(server, 2)
        assert first != second
