"""The route table of the HTTP API: every path, method, who may call it, what it takes and
what it answers.

The server builds its routes from this table (``web.api``), the OpenAPI document builds its
``paths`` from it (``web.openapi``), and the HTTP client store finds its URLs in it
(``backends.http``). A new route is one entry here and one handler on ``web.api.Api``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

__all__ = ["ROUTES", "Access", "Answer", "Endpoint", "endpoint", "url_of"]


class Access(enum.Enum):
    """Who may call a route."""

    PUBLIC = "public"
    ADMIN = "admin"
    DEVICE = "device"  # admin, or a token of the device in the path
    ANY_TOKEN = "any token"


@dataclass(frozen=True, slots=True)
class Answer:
    """A route's successful answer: status, body schema (a component name, or a media type's
    ``kind``) and whether it carries the bucket's ``ETag``."""

    status: int
    schema: str | None
    description: str
    etag: bool = False
    media: str = "application/json"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One operation: ``handler`` names the method of ``web.api.Api`` that serves it."""

    handler: str
    method: str
    path: str  # Starlette's syntax: ``{version:int}``, ``{key:path}``
    access: Access
    summary: str
    ok: Answer
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()  # query parameters taken (component names); others: 400
    headers: tuple[str, ...] = ()  # header parameters (component names)
    body: str | None = None  # a component schema, or a media type for a raw body
    error_schema: str = "Error"  # the body of its error answers

    @property
    def job_bucket(self) -> bool:
        """Whether this is a route of a job bucket (its twin serves the device bucket)."""
        return self.path.startswith(_JOB_SCOPE)

    @property
    def operation_id(self) -> str:
        return f"{self.handler}_of_job" if self.job_bucket else self.handler

    @property
    def doc_path(self) -> str:
        """The path as OpenAPI writes it (no converters)."""
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.path)

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"\{(\w+)", self.path))


_DEVICE_SCOPE: Final = "/v1/devices/{device}"
_JOB_SCOPE: Final = "/v1/devices/{device}/jobs/{job}"
_WRITE_ERRORS: Final = (404, 412, 422, 503)
_READ_ERRORS: Final = (404, 422, 503)


_EVENTS: Final = "text/event-stream"
_EVENTS_TEXT: Final = (
    "A stream of the {what}'s changes. Each `change` event has the version as its `id` and"
    " `{{version, at, actor, changed, removed}}` as its data (`changed`: the keys set, with"
    " their new values; `removed`: key names). With `?since=N` or `Last-Event-ID: N` the"
    " stream starts with every version after N, from the history; if the history no longer"
    " keeps them, one `resync` event (`{{resync: true, version, bucket}}`) comes first."
    " Comment lines keep an idle stream alive."
)
_MANY_TEXT: Final = (
    "A stream of the changes of {what} from now on: `change` and `resync` events as on a"
    " bucket's stream, each with `device` and `job` (null: the device bucket), without ids;"
    " an `overflow` event when the watcher fell so far behind that it missed some."
)


def _bucket_routes(prefix: str, what: str) -> Iterator[Endpoint]:
    """The routes of one bucket: the device bucket's, or a job bucket's."""
    device, admin = Access.DEVICE, Access.ADMIN
    bucket = Answer(200, "Bucket", f"The {what} after the request", etag=True)
    path = f"{prefix}/bucket"
    if_match = ("IfMatch",)
    yield Endpoint(
        "get_bucket",
        "GET",
        path,
        device,
        f"Read the {what}",
        Answer(200, "Bucket", f"The {what}", etag=True),
        _READ_ERRORS,
    )
    yield Endpoint(
        "patch_bucket",
        "PATCH",
        path,
        device,
        f"Merge keys into the {what} (shallow)",
        bucket,
        (*_WRITE_ERRORS, 413),
        query=("expire_in",),
        headers=if_match,
        body="Bucket",
    )
    yield Endpoint(
        "expiries",
        "GET",
        f"{path}/expiries",
        device,
        f"When the {what}'s expiring keys expire",
        Answer(200, "Expiries", "Each expiring key and its expiry time"),
        _READ_ERRORS,
    )
    yield Endpoint(
        "clear_bucket",
        "DELETE",
        path,
        device,
        f"Remove every key of the {what}",
        bucket,
        _WRITE_ERRORS,
        headers=if_match,
    )
    yield Endpoint(
        "delete_key",
        "DELETE",
        f"{path}/keys/{{key:path}}",
        device,
        f"Remove one key of the {what}",
        bucket,
        _WRITE_ERRORS,
        headers=if_match,
    )
    yield Endpoint(
        "delete_keys",
        "POST",
        f"{path}/delete-keys",
        device,
        f"Remove several keys of the {what} at once",
        bucket,
        (*_WRITE_ERRORS, 413),
        headers=if_match,
        body="DeleteKeys",
    )
    yield Endpoint(
        "watch_bucket",
        "GET",
        f"{path}/changes",
        device,
        f"Watch the {what}'s changes as they happen (Server-Sent Events)",
        Answer(200, None, _EVENTS_TEXT.format(what=what), media=_EVENTS),
        (*_READ_ERRORS, 400),
        query=("since",),
        headers=("LastEventID",),
    )
    yield Endpoint(
        "history",
        "GET",
        f"{path}/history",
        admin,
        f"The changes of the {what}, newest first (admin)",
        Answer(200, "ChangeList", "Version, time, actor and the keys each change touched"),
        _READ_ERRORS,
        query=("limit",),
    )
    yield Endpoint(
        "history_version",
        "GET",
        f"{path}/history/{{version:int}}",
        admin,
        f"The {what} as it was at a kept version (admin)",
        Answer(200, "Bucket", f"The {what} at that version", etag=True),
        _READ_ERRORS,
        query=("reveal",),
    )
    yield Endpoint(
        "restore",
        "POST",
        f"{path}/restore",
        admin,
        f"Restore the {what} to a kept version, as a new version (admin)",
        bucket,
        (*_WRITE_ERRORS, 413),
        headers=if_match,
        body="Restore",
    )


_NDJSON: Final = "application/x-ndjson"

ROUTES: Final[tuple[Endpoint, ...]] = (
    *_bucket_routes(_DEVICE_SCOPE, "device bucket"),
    *_bucket_routes(_JOB_SCOPE, "job bucket"),
    Endpoint(
        "list_devices",
        "GET",
        "/v1/devices",
        Access.ADMIN,
        "List devices (admin)",
        Answer(200, "DeviceList", "A page of devices, ordered by id"),
        (422, 503),
        query=("after", "limit"),
    ),
    Endpoint(
        "watch_device",
        "GET",
        f"{_DEVICE_SCOPE}/changes",
        Access.ADMIN,
        "Watch every bucket of a device (admin; Server-Sent Events)",
        Answer(200, None, _MANY_TEXT.format(what="every bucket of the device"), media=_EVENTS),
        (*_READ_ERRORS, 400),
    ),
    Endpoint(
        "watch_fleet",
        "GET",
        "/v1/changes",
        Access.ADMIN,
        "Watch every bucket of every device (admin; Server-Sent Events)",
        Answer(200, None, _MANY_TEXT.format(what="every bucket"), media=_EVENTS),
        (422, 503),
    ),
    Endpoint(
        "delete_device",
        "DELETE",
        _DEVICE_SCOPE,
        Access.ADMIN,
        "Remove every bucket of a device (admin)",
        Answer(200, "DeviceDeleted", "How many buckets were removed"),
        _READ_ERRORS,
    ),
    Endpoint(
        "create_device_token",
        "POST",
        f"{_DEVICE_SCOPE}/tokens",
        Access.ADMIN,
        "Issue a token for a device (admin); the secret is shown once",
        Answer(201, "TokenCreated", "The new token"),
        _READ_ERRORS,
    ),
    Endpoint(
        "sweep",
        "POST",
        "/v1/sweep",
        Access.ADMIN,
        "Remove expired keys now, as the server does every second (admin)",
        Answer(200, "Swept", "How many buckets had keys that expired"),
        (503,),
    ),
    Endpoint(
        "list_jobs",
        "GET",
        "/v1/jobs",
        Access.ADMIN,
        "List jobs (admin)",
        Answer(200, "JobList", "Every registered job"),
        (503,),
    ),
    Endpoint(
        "get_job",
        "GET",
        "/v1/jobs/{job}",
        Access.ANY_TOKEN,
        "Read a job and its bucket schema",
        Answer(200, "Job", "The job"),
        _READ_ERRORS,
    ),
    Endpoint(
        "put_job",
        "PUT",
        "/v1/jobs/{job}",
        Access.ADMIN,
        "Register a job with its bucket schema (admin)",
        Answer(200, "Job", "The job as registered"),
        (404, 409, 413, 422, 503),
        body="JobRegistration",
    ),
    Endpoint(
        "list_tokens",
        "GET",
        "/v1/tokens",
        Access.ADMIN,
        "List tokens (admin)",
        Answer(200, "TokenList", "Every token"),
        (503,),
    ),
    Endpoint(
        "create_token",
        "POST",
        "/v1/tokens",
        Access.ADMIN,
        "Issue a device token, or an admin token with device null (admin)",
        Answer(201, "TokenCreated", "The new token; the secret is shown once"),
        (413, 422, 503),
        body="TokenRequest",
    ),
    Endpoint(
        "revoke_token",
        "DELETE",
        "/v1/tokens/{token}",
        Access.ADMIN,
        "Revoke a token by id (admin)",
        Answer(204, None, "Revoked"),
        (404, 503),
    ),
    Endpoint(
        "whoami",
        "GET",
        "/v1/whoami",
        Access.ANY_TOKEN,
        "The token this request used",
        Answer(200, "Token", "The token"),
    ),
    Endpoint(
        "export",
        "GET",
        "/v1/export",
        Access.ADMIN,
        "Export everything (buckets, versions, jobs, schemas, token hashes) as JSON Lines (admin)",
        Answer(200, None, "The export", media=_NDJSON),
        (400, 503),
        query=("history",),
    ),
    Endpoint(
        "import_",
        "POST",
        "/v1/import",
        Access.ADMIN,
        "Import an export, all or nothing (admin)",
        Answer(200, "Imported", "How many records were written"),
        (413, 422, 503),
        body=_NDJSON,
    ),
    Endpoint(
        "healthz",
        "GET",
        "/healthz",
        Access.PUBLIC,
        "Is the store reachable?",
        Answer(200, "Health", "Reachable"),
        (503,),
        error_schema="Health",
    ),
    Endpoint(
        "metrics",
        "GET",
        "/metrics",
        Access.PUBLIC,
        "Prometheus metrics",
        Answer(200, None, "Metrics", media="text/plain"),
    ),
    Endpoint(
        "openapi",
        "GET",
        "/openapi.json",
        Access.PUBLIC,
        "This document (OpenAPI 3.1)",
        Answer(200, None, "The OpenAPI document"),
    ),
    Endpoint(
        "docs",
        "GET",
        "/docs",
        Access.PUBLIC,
        "The API's documentation, to read in a browser",
        Answer(200, None, "An HTML page", media="text/html"),
    ),
)

_BY_NAME: Final = {(e.handler, e.job_bucket): e for e in ROUTES}


def endpoint(handler: str, **params: str | int | None) -> Endpoint:
    """The route of ``handler``; of a bucket route, the job bucket's twin when ``params``
    name both a device and a job."""
    job_bucket = params.get("device") is not None and params.get("job") is not None
    return _BY_NAME[(handler, job_bucket)]


def url_of(handler: str, **params: str | int | None) -> str:
    """The path of ``handler``'s route (see :func:`endpoint`) with its parameters filled in,
    each quoted whole."""
    route = endpoint(handler, **params)
    return re.sub(
        r"\{(\w+)(?::\w+)?\}", lambda m: quote(str(params[m.group(1)]), safe=""), route.path
    )
