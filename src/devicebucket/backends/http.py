"""The HTTP store: a devicebucket server, used like any other store.

Retries follow what is safe. A request that never reached the server (connection refused,
connect timeout) or that the server answered with 503 (the store did not apply it) is
retried with backoff, reads and writes alike. A request whose fate is unknown (a timeout
or a dropped connection after it was sent) is retried only if it is a read or a conditional
write; if such a retry then meets a version conflict, the first attempt may have been
applied, so the write fails as "outcome unknown" rather than as a conflict that
``update(fn)`` would retry and apply twice.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from ..core.errors import AccessDeniedError, NotFoundError, StoreUnavailableError
from ..core.importing import Checked
from ..core.limits import Limits
from ..core.model import Change, DeviceInfo, Job, Record, Snapshot
from ..core.operations import Clear, Delete, Merge, Operation
from ..core.store import Store
from ..core.tokens import Token
from ..core.urls import redact_url
from ..core.watching import Event, Overflow
from ..wire.errors import error_from_answer
from ..wire.exchange import HEADER, RecordParser, dump_record
from ..wire.routes import endpoint, url_of
from ..wire.shapes import change_from_json, event_from_json, seconds_of
from ..wire.timing import CLIENT_KEEP_ALIVE_SECONDS
from .listing import PagedListings

__all__ = ["HTTPStore"]

_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_UNKNOWN_FATE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


ACTOR_HEADER = "X-Devicebucket-Actor"
#: Seconds a watch stream may stay silent (the server sends a heartbeat every 15) before the
#: client takes it for dead and opens it again.
_STREAM_SILENCE = 45.0


def _write_headers(expected_version: int | None, actor: str) -> dict[str, str]:
    headers = {ACTOR_HEADER: actor.encode("ascii", "backslashreplace").decode()}
    if expected_version is not None:
        headers["If-Match"] = f'"{expected_version}"'
    return headers


def _version(response: httpx.Response) -> int:
    return int(response.headers.get("etag", '"0"').removeprefix("W/").strip('"'))


def _job(body: dict[str, Any]) -> Job:
    return Job(
        body["job"],
        body["automation"],
        body["bucket_schema"],
        seconds_of(body["created_at"]),
        seconds_of(body["updated_at"]),
    )


def _token(body: dict[str, Any]) -> Token:
    return Token(body["id"], body["device"], seconds_of(body["created_at"]))


class HTTPStore(PagedListings, Store):
    """A store on a devicebucket server, reached with a bearer token.

    One connection pool (HTTP keep-alive) per event loop that uses the store.
    """

    credential = None  # the server names the token; the client says only the surface

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.1,
        limits: Limits | None = None,
        verify: str | bool | ssl.SSLContext = True,
    ) -> None:
        super().__init__(limits=limits)
        self.base_url = url.rstrip("/")
        self.url = redact_url(self.base_url)
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._bearer = token
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        # A CA file (a self-signed server certificate, a private CA) or a ready context.
        self._verify = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def bearer(self) -> str | None:
        """The bearer token this store presents (``devicebucket run`` hands it to the
        JavaScript automations it runs on this server)."""
        return self._bearer

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self.timeout,
                verify=self._verify,
                limits=httpx.Limits(
                    max_connections=64,
                    max_keepalive_connections=32,
                    keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS,  # before the server's (wire)
                ),
            )
            self._clients[loop] = client
        return client

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    def _unavailable(self, cause: str) -> StoreUnavailableError:
        return StoreUnavailableError(f"devicebucket server {self.url}: {cause}")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        retry_unknown: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send, retrying where safe; raise the store error an error response stands for."""
        unknown_fate = False
        cause = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
            try:
                response = await self._client().request(method, path, headers=headers, **kwargs)
            except _NEVER_SENT as exc:
                cause = f"cannot connect ({type(exc).__name__})"
                continue
            except _UNKNOWN_FATE as exc:
                unknown_fate = True
                cause = (
                    f"no answer within {self.timeout:g}s"
                    if isinstance(exc, httpx.TimeoutException)
                    else f"connection lost ({type(exc).__name__})"
                )
                if retry_unknown:
                    continue
                raise self._unavailable(
                    f"{cause}; the request may or may not have been applied"
                ) from None
            if response.status_code == 503:
                cause = f"store unavailable: {self._message(response)}"
                continue
            if response.status_code == 412 and unknown_fate:
                raise self._unavailable(
                    f"{cause} on an earlier attempt, then a version conflict: the write's"
                    " outcome is unknown (it may have been applied)"
                )
            self._raise_for(response)
            return response
        raise self._unavailable(f"{cause} (after {self.retries + 1} attempts)")

    async def _call(
        self,
        handler: str,
        where: dict[str, str | int | None] | None = None,
        *,
        retry_unknown: bool,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send the request of a route of the route table (by its handler's name)."""
        where = where or {}
        method = endpoint(handler, **where).method
        url = url_of(handler, **where)
        return await self._request(method, url, retry_unknown=retry_unknown, **kwargs)

    @staticmethod
    def _message(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return f"HTTP {response.status_code}"
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return str(body["error"])
        return f"HTTP {response.status_code}"

    def _raise_for(self, response: httpx.Response) -> None:
        """Raise the store error an error answer stands for (the contract's error table)."""
        if response.status_code < 400:
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        error = error_from_answer(response.status_code, body, self._message(response))
        if isinstance(error, (AccessDeniedError, StoreUnavailableError)):
            raise type(error)(f"devicebucket server {self.url}: {error}")
        raise error

    # --- buckets -------------------------------------------------------------------------

    async def _get(self, device: str, job: str | None) -> Snapshot:
        response = await self._call(
            "get_bucket", {"device": device, "job": job}, retry_unknown=True
        )
        return Snapshot(response.json(), _version(response))

    async def _write(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot:
        body: dict[str, Any] | None = None
        if isinstance(operation, Merge):
            handler, body = "patch_bucket", operation.patch
        elif isinstance(operation, Delete):
            handler, body = "delete_keys", {"keys": list(operation.keys)}
        elif isinstance(operation, Clear):
            handler = "clear_bucket"
        else:  # Replace comes only from restore(), which _restore sends as one request
            raise TypeError(f"the HTTP store does not send {type(operation).__name__} writes")
        response = await self._call(
            handler,
            {"device": device, "job": job},
            retry_unknown=expected_version is not None,
            headers=_write_headers(expected_version, actor),
            json=body,
            params={"expire_in": json.dumps(dict(expire_in))} if expire_in else None,
        )
        return Snapshot(response.json(), _version(response))

    async def _sweep(self, limit: int) -> int:
        response = await self._call("sweep", retry_unknown=True)
        return int(response.json()["swept"])

    async def _expiries(self, device: str, job: str | None) -> dict[str, float]:
        response = await self._call("expiries", {"device": device, "job": job}, retry_unknown=True)
        return {k: seconds_of(at) for k, at in response.json()["expires"].items()}

    async def _restore(
        self, device: str, job: str | None, version: int, expected_version: int | None, actor: str
    ) -> Snapshot:
        response = await self._call(
            "restore",
            {"device": device, "job": job},
            retry_unknown=expected_version is not None,
            headers=_write_headers(expected_version, actor),
            json={"version": version},
        )
        return Snapshot(response.json(), _version(response))

    async def _history(self, device: str, job: str | None, limit: int) -> list[Change]:
        response = await self._call(
            "history",
            {"device": device, "job": job},
            retry_unknown=True,
            params={"limit": limit},
        )
        return [change_from_json(c) for c in response.json()["changes"]]

    async def _history_text(
        self, device: str, job: str | None, version: int
    ) -> tuple[str, float] | None:
        try:
            response = await self._call(
                "history_version",
                {"device": device, "job": job, "version": version},
                retry_unknown=True,
                params={"reveal": "true"},  # the store hands out values; callers mask
            )
        except NotFoundError:
            return None
        at = seconds_of(response.headers["x-devicebucket-version-time"])
        return response.text, at

    # --- watches -------------------------------------------------------------------------

    async def _watch(
        self, device: str, job: str | None, since: int | None
    ) -> AsyncGenerator[Event, None]:
        """The server's event stream of the bucket. A dropped stream is opened again after
        the last version received, so nothing is lost or repeated."""
        last = (await self._get(device, job)).version if since is None else since
        path = url_of("watch_bucket", device=device, job=job)
        failures = 0
        while True:
            try:
                async for _, data in self._events(path, {"since": last}):
                    event = event_from_json(data, device, job)
                    last, failures = event.version, 0
                    yield event
            except (httpx.HTTPError, SSEError) as exc:
                failures = await self._pause(failures, exc)

    async def _watch_buckets(self, device: str | None) -> AsyncGenerator[Event | Overflow, None]:
        """The server's event stream of many buckets; after a dropped stream, an Overflow
        (changes made meanwhile are not replayed), then the new stream."""
        path = url_of("watch_fleet") if device is None else url_of("watch_device", device=device)
        failures = 0
        while True:
            try:
                async for name, data in self._events(path, {}):
                    failures = 0
                    if name == "overflow":
                        yield Overflow(device)
                    else:
                        yield event_from_json(data, data["device"], data["job"])
            except (httpx.HTTPError, SSEError) as exc:
                failures = await self._pause(failures, exc)
                yield Overflow(device)

    async def _events(
        self, path: str, params: dict[str, int]
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The events of one stream (name, data). The server sends a heartbeat every 15
        seconds: a stream silent for three of them is taken for dead."""
        timeout = httpx.Timeout(self.timeout, read=_STREAM_SILENCE)
        stream = aconnect_sse(self._client(), "GET", path, params=params, timeout=timeout)
        async with stream as source:
            if source.response.status_code >= 400:
                await source.response.aread()
                self._raise_for(source.response)
            async for sent in source.aiter_sse():
                if not sent.data:
                    # Not an event (the SSE spec dispatches none without data): httpx-sse
                    # yields one for the blank line after a heartbeat once an id was seen.
                    continue
                data = sent.json()
                if sent.event == "error":
                    raise self._unavailable(str(data.get("error", "")))
                yield sent.event, data

    async def _pause(self, failures: int, exc: Exception) -> int:
        """Wait before a stream is opened again; give up after ``retries`` in a row."""
        failures += 1
        if failures > self.retries:
            raise self._unavailable(
                f"watch interrupted ({type(exc).__name__}, {failures} times in a row)"
            ) from None
        await asyncio.sleep(self.backoff * 2 ** (failures - 1) * random.uniform(0.5, 1.5))
        return failures

    # --- devices, jobs, tokens -----------------------------------------------------------

    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]:
        params: dict[str, str | int] = {"limit": limit}
        if after is not None:
            params["after"] = after
        response = await self._call("list_devices", retry_unknown=True, params=params)
        return [
            DeviceInfo(
                d["device"], d["keys"], d["size"], seconds_of(d["updated_at"]), tuple(d["jobs"])
            )
            for d in response.json()["devices"]
        ]

    async def _delete_device(self, device: str) -> int:
        response = await self._call("delete_device", {"device": device}, retry_unknown=True)
        return int(response.json()["deleted_buckets"])

    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job:
        body = {
            "automation": automation,
            "bucket_schema": None if schema is None else json.loads(schema),
            "replace_schema": replace_schema,
        }
        response = await self._call("put_job", {"job": job}, retry_unknown=True, json=body)
        return _job(response.json())

    async def _get_job(self, job: str) -> Job | None:
        try:
            response = await self._call("get_job", {"job": job}, retry_unknown=True)
        except NotFoundError:
            return None
        return _job(response.json())

    async def _jobs(self) -> list[Job]:
        response = await self._call("list_jobs", retry_unknown=True)
        return [_job(j) for j in response.json()["jobs"]]

    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        response = await self._call("create_token", retry_unknown=False, json={"device": device})
        body = response.json()
        return _token(body), str(body["token"])

    async def _tokens(self) -> list[Token]:
        response = await self._call("list_tokens", retry_unknown=True)
        return [_token(t) for t in response.json()["tokens"]]

    async def _delete_token(self, ident: str) -> bool:
        try:
            await self._call("revoke_token", {"token": ident}, retry_unknown=True)
        except NotFoundError:
            return False
        return True

    async def _authenticate(self, presented: str) -> Token | None:
        """Ask the server who ``presented`` is (token hashes never leave the server)."""
        try:
            response = await self._call(
                "whoami",
                retry_unknown=True,
                headers={"Authorization": f"Bearer {presented}"},
            )
        except AccessDeniedError:
            return None
        return _token(response.json())

    # --- export and import ---------------------------------------------------------------

    async def _export(self, history: bool) -> AsyncIterator[Record]:
        parser = RecordParser()
        params = {} if history else {"history": "false"}
        try:
            route = endpoint("export")
            stream = self._client().stream(route.method, route.path, params=params)
            async with stream as response:
                if response.status_code >= 400:
                    await response.aread()
                    self._raise_for(response)
                async for line in response.aiter_lines():
                    record = parser.feed(line)
                    if record is not None:
                        yield record
        except httpx.HTTPError as exc:
            raise self._unavailable(f"export interrupted ({type(exc).__name__})") from None
        parser.finish()

    async def _import(self, checked: Checked) -> None:
        records: list[Record] = [*checked.jobs, *checked.tokens, *checked.buckets]
        records += checked.history
        lines = [json.dumps(HEADER)] + [dump_record(r) for r in records]
        await self._call(
            "import_",
            retry_unknown=False,
            content="\n".join(lines).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
