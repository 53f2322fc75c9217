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
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx

from .errors import (
    AccessDeniedError,
    ConflictError,
    InvalidSchemaError,
    InvalidValueError,
    JobConflictError,
    NotFoundError,
    SchemaViolationError,
    StoreUnavailableError,
)
from .exchange import HEADER, RecordParser, dump_record
from .rules import Clear, Delete, Limits, Merge, Operation
from .store import (
    BucketRecord,
    Change,
    DeviceInfo,
    Job,
    Record,
    Snapshot,
    Store,
    TokenRecord,
)
from .tokens import Token
from .urls import redact_url
from .views import change_from_json

__all__ = ["HTTPStore"]

_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_UNKNOWN_FATE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") for part in parts)


def _bucket_path(device: str, job: str | None) -> str:
    if job is None:
        return f"/v1/devices/{_path(device)}/bucket"
    return f"/v1/devices/{_path(device)}/jobs/{_path(job)}/bucket"


ACTOR_HEADER = "X-Devicebucket-Actor"


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
        body["created_at"],
        body["updated_at"],
    )


def _token(body: dict[str, Any]) -> Token:
    return Token(body["id"], body["device"], body["created_at"])


class HTTPStore(Store):
    """A store on a devicebucket server, reached with a bearer token.

    One connection pool (HTTP keep-alive) per event loop that uses the store.
    """

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
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        # A CA file (a self-signed server certificate, a private CA) or a ready context.
        self._verify = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self.timeout,
                verify=self._verify,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
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
        status = response.status_code
        if status < 400:
            return
        message = self._message(response)
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("code") if isinstance(body, dict) else None
        if status in (401, 403):
            raise AccessDeniedError(f"devicebucket server {self.url}: {message}")
        if status == 412:
            actual = body.get("version", -1) if isinstance(body, dict) else -1
            raise ConflictError(-1, actual, message)
        if status == 409:
            raise JobConflictError(message)
        if status == 404:
            raise NotFoundError(message)
        if code == "schema_violation":
            raise SchemaViolationError(message, body.get("path", ""), body.get("rule", ""))
        if code == "invalid_schema":
            raise InvalidSchemaError(message)
        if status in (400, 413, 422):
            raise InvalidValueError(message)
        raise self._unavailable(f"HTTP {status}: {message}")

    # --- buckets -------------------------------------------------------------------------

    async def _get(self, device: str, job: str | None) -> Snapshot:
        response = await self._request("GET", _bucket_path(device, job), retry_unknown=True)
        return Snapshot(response.json(), _version(response))

    async def _write(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str,
    ) -> Snapshot:
        path = _bucket_path(device, job)
        headers = _write_headers(expected_version, actor)
        conditional = expected_version is not None
        if isinstance(operation, Merge):
            response = await self._request(
                "PATCH", path, retry_unknown=conditional, headers=headers, json=operation.patch
            )
        elif isinstance(operation, Delete):
            response = await self._request(
                "POST",
                f"{path}/delete-keys",
                retry_unknown=conditional,
                headers=headers,
                json={"keys": list(operation.keys)},
            )
        elif isinstance(operation, Clear):
            response = await self._request(
                "DELETE", path, retry_unknown=conditional, headers=headers
            )
        else:  # Replace comes only from restore(), which _restore sends as one request
            raise TypeError(f"the HTTP store does not send {type(operation).__name__} writes")
        return Snapshot(response.json(), _version(response))

    async def _restore(
        self, device: str, job: str | None, version: int, expected_version: int | None, actor: str
    ) -> Snapshot:
        response = await self._request(
            "POST",
            f"{_bucket_path(device, job)}/restore",
            retry_unknown=expected_version is not None,
            headers=_write_headers(expected_version, actor),
            json={"version": version},
        )
        return Snapshot(response.json(), _version(response))

    async def _history(self, device: str, job: str | None, limit: int) -> list[Change]:
        response = await self._request(
            "GET",
            f"{_bucket_path(device, job)}/history",
            retry_unknown=True,
            params={"limit": min(limit, 1000)},
        )
        return [change_from_json(c) for c in response.json()["changes"]]

    async def _history_text(
        self, device: str, job: str | None, version: int
    ) -> tuple[str, float] | None:
        try:
            response = await self._request(
                "GET",
                f"{_bucket_path(device, job)}/history/{version}",
                retry_unknown=True,
                params={"reveal": "true"},  # the store hands out values; callers mask
            )
        except NotFoundError:
            return None
        at = float(response.headers.get("x-devicebucket-version-time", "0"))
        return response.text, at

    # --- devices, jobs, tokens -----------------------------------------------------------

    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]:
        params: dict[str, str | int] = {"limit": min(limit, 1000)}
        if after is not None:
            params["after"] = after
        response = await self._request("GET", "/v1/devices", retry_unknown=True, params=params)
        return [
            DeviceInfo(d["device"], d["keys"], d["size"], d["updated_at"], tuple(d["jobs"]))
            for d in response.json()["devices"]
        ]

    async def _delete_device(self, device: str) -> int:
        response = await self._request("DELETE", f"/v1/devices/{_path(device)}", retry_unknown=True)
        return int(response.json()["deleted_buckets"])

    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job:
        body = {
            "automation": automation,
            "bucket_schema": None if schema is None else json.loads(schema),
            "replace_schema": replace_schema,
        }
        response = await self._request(
            "PUT", f"/v1/jobs/{_path(job)}", retry_unknown=True, json=body
        )
        return _job(response.json())

    async def _get_job(self, job: str) -> Job | None:
        try:
            response = await self._request("GET", f"/v1/jobs/{_path(job)}", retry_unknown=True)
        except NotFoundError:
            return None
        return _job(response.json())

    async def _jobs(self) -> list[Job]:
        response = await self._request("GET", "/v1/jobs", retry_unknown=True)
        return [_job(j) for j in response.json()["jobs"]]

    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        response = await self._request(
            "POST", "/v1/tokens", retry_unknown=False, json={"device": device}
        )
        body = response.json()
        return _token(body), str(body["token"])

    async def _tokens(self) -> list[Token]:
        response = await self._request("GET", "/v1/tokens", retry_unknown=True)
        return [_token(t) for t in response.json()["tokens"]]

    async def _delete_token(self, ident: str) -> bool:
        try:
            await self._request("DELETE", f"/v1/tokens/{_path(ident)}", retry_unknown=True)
        except NotFoundError:
            return False
        return True

    async def _authenticate(self, presented: str) -> Token | None:
        """Ask the server who ``presented`` is (token hashes never leave the server)."""
        try:
            response = await self._request(
                "GET",
                "/v1/whoami",
                retry_unknown=True,
                headers={"Authorization": f"Bearer {presented}"},
            )
        except AccessDeniedError:
            return None
        return _token(response.json())

    # --- export and import ---------------------------------------------------------------

    async def _export(self) -> AsyncIterator[Record]:
        parser = RecordParser()
        try:
            async with self._client().stream("GET", "/v1/export") as response:
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

    async def _import(
        self, jobs: list[Job], buckets: list[BucketRecord], tokens: list[TokenRecord]
    ) -> None:
        records: list[Record] = [*jobs, *tokens, *buckets]
        lines = [json.dumps(HEADER)] + [dump_record(r) for r in records]
        await self._request(
            "POST",
            "/v1/import",
            retry_unknown=False,
            content="\n".join(lines).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
