"""The HTTP store when the server is down, silent, failing, or the answer is lost.

The peers here are real sockets on loopback that play a scripted part: they accept, read
the request, and answer (or do not) as the test says.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from devicebucket import Agent, HTTPStore, StoreUnavailableError

from ..servers import free_port

Reply = Callable[[int, bytes], bytes | None]  # (request number, request) -> raw reply or None


def http_reply(status: int, body: bytes, headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"{headers}\r\n"
    ).encode() + body


class Peer:
    """A loopback server that answers each request with ``reply(n, request)``.

    ``None`` as a reply closes the connection without answering; ``hang`` never answers.
    """

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        self.writers.append(writer)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            request = head + await reader.readexactly(length)
            self.requests.append(request)
            answer = self.reply(len(self.requests), request)
            if answer == b"hang":
                return
            if answer is None:
                writer.close()
                return
            writer.write(answer)
            await writer.drain()
        writer.close()


@asynccontextmanager
async def peer(reply: Reply) -> AsyncIterator[tuple[Peer, str]]:
    scripted = Peer(reply)
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield scripted, f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in scripted.writers:
            writer.close()
        await asyncio.gather(*scripted.tasks, return_exceptions=True)
        for writer in scripted.writers:
            await writer.wait_closed()
        await server.wait_closed()


async def test_server_down_is_a_failure_naming_server_and_cause() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = HTTPStore(url, token="t", retries=2, backoff=0.001)
    for call in (
        Agent(store, "d").utils.deviceBucket.get(),
        Agent(store, "d").utils.deviceBucket.set({"a": 1}),
    ):
        result = await call
        assert result["success"] is False
        assert result["error"] == (
            f"devicebucket server {url}: cannot connect (ConnectError) (after 3 attempts)"
        )
    await store.close()


async def test_a_silent_server_times_out_reads_retried_writes_not() -> None:
    async with peer(lambda n, request: b"hang") as (scripted, url):
        store = HTTPStore(url, token="t", timeout=0.2, retries=2, backoff=0.001)
        got = await Agent(store, "d").utils.deviceBucket.get()
        assert got == {
            "success": False,
            "error": f"devicebucket server {url}: no answer within 0.2s (after 3 attempts)",
        }
        assert len(scripted.requests) == 3
        written = await Agent(store, "d").utils.deviceBucket.set({"a": 1})
        assert written["success"] is False
        assert "the request may or may not have been applied" in written["error"]
        assert len(scripted.requests) == 4  # a plain write is never sent twice
        await store.close()


async def test_503_is_retried_and_500_is_reported() -> None:
    def reply(n: int, request: bytes) -> bytes:
        if n <= 2:
            return http_reply(503, b'{"error": "database is locked", "code": "store_unavailable"}')
        if n == 3:
            return http_reply(200, b'{"a": 1}', 'etag: "4"\r\n')
        return http_reply(500, b"Internal Server Error")

    async with peer(reply) as (scripted, url):
        store = HTTPStore(url, token="t", retries=3, backoff=0.001)
        snapshot = await store.merge("d", {"a": 1})  # 503 twice: not applied, safe to resend
        assert (snapshot.data, snapshot.version) == ({"a": 1}, 4)
        assert len(scripted.requests) == 3
        failed = await Agent(store, "d").utils.deviceBucket.get()
        assert failed == {
            "success": False,
            "error": f"devicebucket server {url}: HTTP 500: HTTP 500",
        }
        await store.close()


async def test_lost_answer_then_conflict_is_outcome_unknown_not_a_retry_loop() -> None:
    def reply(n: int, request: bytes) -> bytes | None:
        if n == 1:
            return None  # the server got it, the answer is lost
        return http_reply(
            412, b'{"error": "version conflict", "code": "version_conflict", "version": 6}'
        )

    async with peer(reply) as (scripted, url):
        store = HTTPStore(url, token="t", retries=3, backoff=0.001)
        with pytest.raises(StoreUnavailableError, match="the write's outcome is unknown"):
            await store.merge("d", {"n": 6}, expected_version=5)
        assert len(scripted.requests) == 2
        assert all(b'if-match: "5"' in r.lower() for r in scripted.requests)
        await store.close()


async def test_lost_answer_of_conditional_write_is_resent_once_safely() -> None:
    def reply(n: int, request: bytes) -> bytes | None:
        if n == 1:
            return None
        return http_reply(200, b'{"n": 6}', 'etag: "6"\r\n')

    async with peer(reply) as (scripted, url):
        store = HTTPStore(url, token="t", retries=3, backoff=0.001)
        assert (await store.merge("d", {"n": 6}, expected_version=5)).version == 6
        assert len(scripted.requests) == 2
        await store.close()


async def test_requests_carry_the_bearer_token_and_reuse_the_connection() -> None:
    def reply(n: int, request: bytes) -> bytes:
        return http_reply(200, b"{}", 'etag: "0"\r\n')

    async with peer(reply) as (scripted, url):
        store = HTTPStore(url, token="secret-token-value")
        for _ in range(5):
            await store.get("d")
        assert all(
            b"authorization: bearer secret-token-value" in r.lower() for r in scripted.requests
        )
        assert all(r.startswith(b"GET /v1/devices/d/bucket ") for r in scripted.requests)
        assert len(scripted.tasks) == 1  # one connection served all five (keep-alive)
        await store.close()


async def test_access_denied_names_the_server() -> None:
    def reply(n: int, request: bytes) -> bytes:
        return http_reply(
            403, b'{"error": "a device token may only use its own device", "code": "forbidden"}'
        )

    async with peer(reply) as (_, url):
        store = HTTPStore(url, token="t")
        result = await Agent(store, "d").utils.deviceBucket.get()
        assert result == {
            "success": False,
            "error": f"devicebucket server {url}: a device token may only use its own device",
        }
        await store.close()
