"""Watches over HTTP against a real server: the event stream as a client sees it, resume with
Last-Event-ID, access, the per-token limit, heartbeats, metrics, and a client that stops
reading."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicebucket import SQLiteStore
from devicebucket.core.limits import Limits
from devicebucket.core.watching import BucketChange
from devicebucket.web.app import create_app
from devicebucket.web.streams import HEARTBEAT_ENV, WATCHERS_ENV

from ..hearing import hearing
from ..servers import ADMIN, ThreadedServer

CHANGES = "/v1/devices/pixel-1/bucket/changes"


class Live:
    def __init__(self, server: ThreadedServer, store: SQLiteStore) -> None:
        self.url, self.store = server.url, store
        self.http = httpx.Client(base_url=server.url, headers=_auth(ADMIN), timeout=10)

    def write(self, data: dict[str, Any], device: str = "pixel-1") -> int:
        response = self.http.patch(f"/v1/devices/{device}/bucket", json=data)
        assert response.status_code == 200, response.text
        return int(response.headers["etag"].strip('"'))

    def token(self, device: str) -> str:
        return str(self.http.post(f"/v1/devices/{device}/tokens").json()["token"])


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv(WATCHERS_ENV, "3")
    monkeypatch.setenv(HEARTBEAT_ENV, "1")
    store = SQLiteStore(tmp_path / "server.db", limits=Limits(history_versions=5))
    with ThreadedServer(create_app(store, admin_token=ADMIN)) as server:
        opened = Live(server, store)
        try:
            yield opened
        finally:
            opened.http.close()


async def events(
    live: Live,
    count: int,
    path: str = CHANGES,
    token: str = ADMIN,
    headers: dict[str, str] | None = None,
    **params: int,
) -> list[tuple[str, str, dict[str, Any]]]:
    """The first ``count`` events of a stream: (event, id, data)."""
    found = []
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=10) as client,
        aconnect_sse(
            client, "GET", path, params=params, headers=_auth(token) | (headers or {})
        ) as source,
    ):
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async with asyncio.timeout(10):
            async for sent in source.aiter_sse():
                found.append((sent.event, sent.id, sent.json()))
                if len(found) == count:
                    break
    return found


async def test_a_stream_gives_each_version_with_its_id_and_change(live: Live) -> None:
    for n in range(1, 4):
        live.write({"n": n})
    got = await events(live, 3, since=0)
    assert [(e, i) for e, i, _ in got] == [("change", "1"), ("change", "2"), ("change", "3")]
    data = got[1][2]
    assert data["version"] == 2
    assert data["changed"] == {"n": 2}
    assert data["removed"] == []
    assert data["actor"].startswith("admin token env via http")
    assert data["at"].endswith("Z")


async def test_resume_after_a_dropped_stream_loses_and_repeats_nothing(live: Live) -> None:
    for n in range(1, 4):
        live.write({"n": n})
    first = await events(live, 2, since=0)  # the client drops the stream after version 2
    assert [i for _, i, _ in first] == ["1", "2"]
    for n in range(4, 7):
        live.write({"n": n})
    # An EventSource reconnects with its original URL and the last id it saw: the id wins.
    rest = await events(live, 4, since=0, headers={"Last-Event-ID": "2"})
    assert [i for _, i, _ in rest] == ["3", "4", "5", "6"]
    assert [d["changed"]["n"] for _, _, d in rest] == [3, 4, 5, 6]


async def test_since_past_the_kept_history_is_one_resync(live: Live) -> None:
    for n in range(1, 21):  # five versions are kept (at least)
        live.write({f"k{n}": n})
    ((event, ident, data),) = await events(live, 1, since=1)
    assert (event, ident) == ("resync", "20")
    assert data == {"resync": True, "version": 20, "bucket": {f"k{n}": n for n in range(1, 21)}}


async def test_a_device_token_watches_its_own_buckets_only(live: Live) -> None:
    own = live.token("pixel-1")
    live.write({"a": 1})
    assert (await events(live, 1, token=own, since=0))[0][1] == "1"
    async with httpx.AsyncClient(base_url=live.url, headers=_auth(own), timeout=10) as client:
        other = await client.get("/v1/devices/pixel-2/bucket/changes")
        fleet = await client.get("/v1/changes")
        device = await client.get("/v1/devices/pixel-1/changes")
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    assert fleet.status_code == device.status_code == 403


async def test_the_fleet_stream_names_each_bucket(live: Live) -> None:
    async with (
        httpx.AsyncClient(base_url=live.url, headers=_auth(ADMIN), timeout=10) as client,
        aconnect_sse(client, "GET", "/v1/changes") as source,
    ):
        stream = aiter(source.aiter_sse())

        async def poke(n: int) -> None:
            await asyncio.to_thread(live.write, {"probe": n}, "probe")

        def is_poke(sent: ServerSentEvent, n: int) -> bool:
            return bool(sent.json()["device"] == "probe" and sent.json()["version"] == n)

        await hearing(stream, poke, is_poke)
        await asyncio.to_thread(live.write, {"a": 1}, "pixel-7")
        await asyncio.to_thread(live.write, {"b": 2}, "pixel-8")
        async with asyncio.timeout(10):
            got = [await anext(stream) for _ in range(2)]
    assert sorted((s.json()["device"], s.json()["job"], s.json()["version"]) for s in got) == [
        ("pixel-7", None, 1),
        ("pixel-8", None, 1),
    ]
    assert all(s.id == "" for s in got)  # no resume across buckets: no ids


@pytest.mark.parametrize(
    "since",
    ["-1", "x", "1.5", "99999999999999999999", "\u0661", ""],
    ids=["negative", "word", "fraction", "huge", "arabic-digit", "empty"],
)
async def test_a_bad_since_is_a_clear_400(live: Live, since: str) -> None:
    async with httpx.AsyncClient(base_url=live.url, headers=_auth(ADMIN)) as client:
        by_query = await client.get(CHANGES, params={"since": since})
        header = (since or "x").encode()  # a header carries bytes: UTF-8 for the odd digit
        by_header = await client.get(CHANGES, headers={b"Last-Event-ID": header})
    for response in (by_query, by_header):
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "bad_request"


async def test_a_token_holds_only_so_many_streams(live: Live) -> None:
    own = live.token("pixel-1")
    async with httpx.AsyncClient(base_url=live.url, headers=_auth(own), timeout=10) as client:
        streams = [client.stream("GET", CHANGES) for _ in range(3)]
        opened = [await s.__aenter__() for s in streams]
        assert all(r.status_code == 200 for r in opened)
        refused = await client.get(CHANGES)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_watchers"
        assert WATCHERS_ENV in refused.json()["error"]
        await streams[0].__aexit__(None, None, None)
        async with asyncio.timeout(10):
            while True:  # the server sees the stream closed, then lets a new one in
                retry = await client.send(client.build_request("GET", CHANGES), stream=True)
                if retry.status_code == 200:
                    await retry.aclose()
                    break
                await retry.aread()
                assert retry.status_code == 429
                await asyncio.sleep(0.05)
        for s in streams[1:]:
            await s.__aexit__(None, None, None)


async def test_an_idle_stream_gets_heartbeats(live: Live) -> None:
    async with (
        httpx.AsyncClient(base_url=live.url, headers=_auth(ADMIN), timeout=10) as client,
        client.stream("GET", CHANGES) as response,
    ):
        async with asyncio.timeout(5):
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    break  # a comment line, from a server with nothing to say


async def test_the_http_store_watch_reads_on_across_heartbeats(live: Live) -> None:
    """A heartbeat (a comment line) that follows an event with an id is not an event: the
    HTTP client store's watch once failed on it, 15 s into any watch that had seen one."""
    from devicebucket import HTTPStore

    live.write({"n": 1})
    store = HTTPStore(live.url, token=ADMIN)
    async with store, aclosing(store.watch("pixel-1", since=0)) as watch:
        first = await anext(watch)
        await asyncio.sleep(2.5)  # the server's heartbeat (1 s here) comes meanwhile
        live.write({"n": 2})
        async with asyncio.timeout(10):
            second = await anext(watch)
    assert (first.version, second.version) == (1, 2)
    assert isinstance(second, BucketChange)
    assert second.changed == {"n": 2}


async def test_metrics_count_watchers_and_events(live: Live) -> None:
    live.write({"a": 1})
    await events(live, 1, since=0)
    metrics = live.http.get("/metrics").text
    sent = [
        line for line in metrics.splitlines() if line.startswith("devicebucket_events_sent_total")
    ]
    assert sent
    assert float(sent[0].split()[-1]) >= 1
    assert "devicebucket_watchers" in metrics


async def test_a_client_that_stops_reading_is_cut_back_to_a_resync(live: Live) -> None:
    """The client reads nothing while 60 versions of 200 KB are written: the server holds no
    more than its socket buffers, and when the client reads again it gets a resync instead
    of the versions the history no longer keeps."""
    host, port = live.url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    request = f"GET {CHANGES}?since=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN}\r\n"
    sock.sendall(f"{request}\r\n".encode())
    blob = "x" * 200_000
    for n in range(1, 61):
        await asyncio.to_thread(live.write, {"blob": f"{n}{blob}"})
    sock.settimeout(10)
    received = b""
    while b'"version": 60' not in received and b'"version":60' not in received:
        chunk = await asyncio.to_thread(sock.recv, 1 << 20)
        assert chunk, "the server closed the stream"
        received += chunk
    sock.close()
    text = received.decode()
    assert "event: resync" in text
    changes = text.count("event: change")
    assert changes < 60


HOSTILE_EXPIRE_IN = [
    '{"otp": 1e400}',
    '{"otp": -1e400}',
    '{"otp": ' + "9" * 5000 + "}",
    '{"\\ud800": 10}',
    '{"otp": "\\u0000"}',
    '{"otp": NaN}',
    '{"otp": ' + "[" * 5000 + "]" * 5000 + "}",
    "[" * 20_000,  # as deep as a URL httpx sends may hold
    '{"otp": 10, "otp": -1}',
    "not json",
    "",
    '{"otp": null}',
    '{"otp": {"seconds": 10}}',
]


@pytest.mark.parametrize("raw", HOSTILE_EXPIRE_IN, ids=range(len(HOSTILE_EXPIRE_IN)))
def test_a_hostile_expire_in_is_a_clear_refusal_that_writes_nothing(live: Live, raw: str) -> None:
    response = live.http.patch(
        "/v1/devices/pixel-9/bucket", params={"expire_in": raw}, json={"otp": "1"}
    )
    assert response.status_code in (400, 414, 422), response.text
    if response.status_code != 414:
        assert response.json()["code"] in ("bad_request", "invalid_value")
    assert live.http.get("/v1/devices/pixel-9/bucket").headers["etag"] == '"0"'


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    since=st.text(st.characters(exclude_categories=()), max_size=30)
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
)
def test_any_since_is_a_stream_or_a_clear_400(live: Live, since: str) -> None:
    try:
        with live.http.stream("GET", CHANGES, params={"since": since}, timeout=5) as response:
            status = response.status_code
            if status != 200:
                response.read()
                assert response.json()["code"] == "bad_request"
    except UnicodeEncodeError:
        return  # not a request a client can send
    assert status in (200, 400)
    if status == 200:
        assert since.isascii()
        assert since.isdigit()
        assert int(since) < 2**63


class CuttableProxy:
    """A loopback TCP proxy to the server whose open connections can be cut at once."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    async def close(self) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


async def test_the_http_store_resumes_a_cut_stream_losing_and_repeating_nothing(
    live: Live,
) -> None:
    from devicebucket import HTTPStore

    proxy = CuttableProxy(int(live.url.rsplit(":", 1)[1]))
    await proxy.start()
    store = HTTPStore(proxy.url, token=ADMIN, retries=5, backoff=0.05)
    try:
        got: list[int] = []
        async with asyncio.timeout(30):
            watch = store.watch("pixel-1", since=0)
            await asyncio.to_thread(live.write, {"n": 1})
            async for event in watch:
                got.append(event.version)
                if event.version == 1:
                    proxy.cut()  # the stream drops; these writes land while it is down
                    for n in (2, 3):
                        await asyncio.to_thread(live.write, {"n": n})
                if event.version == 3:
                    break
            await watch.aclose()
        assert got == [1, 2, 3]
    finally:
        await store.close()
        await proxy.close()
