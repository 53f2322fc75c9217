"""The HTTP server: ``create_app(store)`` returns an ASGI app serving buckets under ``/v1``.

Each route declares who may call it (anyone, admin only, or admin and the token of the
device in the path); the wrapper authenticates, authorizes, maps every expected failure to a
JSON error with the right status, and records metrics labelled by route template (never by
device id, key or value).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from .dashboard import dashboard_routes
from .errors import (
    ConflictError,
    DeviceBucketError,
    InvalidSchemaError,
    InvalidValueError,
    JobConflictError,
    NotFoundError,
    SchemaViolationError,
    StoreUnavailableError,
)
from .exchange import HEADER, RecordParser, dump_record
from .factory import open_store
from .openapi import openapi_document
from .rules import encode, mask_secrets, secret_key_patterns
from .store import Snapshot, Store
from .tokens import Token
from .views import change_json, device_json, job_json, token_json

__all__ = ["ENV_ADMIN", "SESSION_SECRET_ENV", "Api", "HTTPError", "app_from_env", "create_app"]

ADMIN_TOKEN_ENV = "DEVICEBUCKET_ADMIN_TOKEN"
SESSION_SECRET_ENV = "DEVICEBUCKET_SESSION_SECRET"
ENV_ADMIN = Token("env", None, 0.0)


class Access(enum.Enum):
    PUBLIC = "public"
    ADMIN = "admin"
    DEVICE = "device"  # admin, or a token of the device in the path
    ANY_TOKEN = "any token"


class HTTPError(Exception):
    """An error answered as ``{"error": message, "code": code, ...}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra


_ERRORS: list[tuple[type[DeviceBucketError], int, str]] = [
    (SchemaViolationError, 422, "schema_violation"),
    (InvalidSchemaError, 422, "invalid_schema"),
    (InvalidValueError, 422, "invalid_value"),
    (JobConflictError, 409, "job_conflict"),
    (ConflictError, 412, "version_conflict"),
    (NotFoundError, 404, "not_found"),
    (StoreUnavailableError, 503, "store_unavailable"),
]


def _http_error(exc: DeviceBucketError) -> HTTPError:
    for kind, status, code in _ERRORS:
        if isinstance(exc, kind):
            extra: dict[str, Any] = {}
            if isinstance(exc, SchemaViolationError):
                extra = {"path": exc.path, "rule": exc.rule}
            elif isinstance(exc, ConflictError):
                extra = {"version": exc.actual}
            return HTTPError(status, code, str(exc), **extra)
    return HTTPError(422, "invalid", str(exc))


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def _error_response(error: HTTPError) -> Response:
    return _json({"error": str(error), "code": error.code, **error.extra}, error.status)


def _bucket(snapshot: Snapshot) -> Response:
    return _bucket_text(snapshot.text or encode(snapshot.data), snapshot.version)


def _bucket_text(text: str, version: int) -> Response:
    return Response(text.encode(), 200, {"ETag": f'"{version}"'}, media_type="application/json")


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
        raise HTTPError(422, "invalid_value", "limit must be an integer from 1 to 1000")
    return int(raw)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# One decoder for every request: json.loads(..., parse_constant=...) builds a new one per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):
        raise HTTPError(400, "bad_request", 'If-Match must be a version ETag such as "3"')
    return int(tag)


class Metrics:
    """Prometheus metrics of one app (its own registry, so apps never share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "devicebucket_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "devicebucket_request_duration_seconds",
            "Request latency by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.store_errors = Counter(
            "devicebucket_store_errors",
            "Requests that failed because the store was unavailable, by route template",
            ["route"],
            registry=self.registry,
        )

        # Labelled children, looked up once: labels() takes a lock and builds tuples.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._children.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        if status == 503:
            self.store_errors.labels(route).inc()


Handler = Callable[[Request, Token | None], Awaitable[Response]]


class Api:
    """The routes of one app over one store."""

    def __init__(
        self,
        store: Store,
        admin_token: str | None,
        max_import_bytes: int,
        secret_keys: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.secret_keys = secret_keys
        self.admin_hash = None if not admin_token else hashlib.sha256(admin_token.encode()).digest()
        self.max_body_bytes = store.limits.max_bucket_bytes + 64 * 1024
        self.max_import_bytes = max_import_bytes
        self.metrics = Metrics()

    # --- plumbing ------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise HTTPError(401, "unauthorized", "a bearer token is required")
        token = await self.check_token(presented.strip())
        if token is None:
            raise HTTPError(401, "unauthorized", "the bearer token is not valid or was revoked")
        return token

    async def check_token(self, presented: str) -> Token | None:
        """The token a presented secret belongs to (the configured admin token included)."""
        if self.admin_hash is not None and hmac.compare_digest(
            hashlib.sha256(presented.encode()).digest(), self.admin_hash
        ):
            return ENV_ADMIN
        return await self.store.authenticate(presented)

    async def token_by_id(self, ident: str) -> Token | None:
        """A token that is still valid, by id (``ENV_ADMIN.id`` for the configured one)."""
        if ident == ENV_ADMIN.id:
            return ENV_ADMIN if self.admin_hash is not None else None
        return await self.store.token(ident)

    @staticmethod
    def authorize(access: Access, token: Token | None, request: Request) -> None:
        if access in (Access.PUBLIC, Access.ANY_TOKEN) or token is None or token.is_admin:
            return
        if access is Access.ADMIN:
            raise HTTPError(403, "forbidden", "this route needs an admin token")
        if request.path_params.get("device") != token.device:
            raise HTTPError(
                403, "forbidden", "a device token may only use its own device's buckets"
            )

    def route(
        self,
        path: str,
        handlers: dict[str, tuple[Handler, Access]],
        query: frozenset[str] = frozenset(),
    ) -> Route:
        """One Route a path, so a wrong method gets 405 with the right Allow header.

        A query parameter the route does not take is refused (a typo should not be ignored).
        """
        if "GET" in handlers:
            handlers = {**handlers, "HEAD": handlers["GET"]}

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            handler, access = handlers[request.method]
            try:
                unknown = set(request.query_params) - query if request.scope["query_string"] else ()
                if unknown:
                    name = sorted(unknown)[0][:64]
                    raise HTTPError(400, "bad_request", f"unknown query parameter {name!r}")
                token = None if access is Access.PUBLIC else await self.authenticate(request)
                self.authorize(access, token, request)
                response = await handler(request, token)
            except HTTPError as exc:
                response = _error_response(exc)
            except DeviceBucketError as exc:
                response = _error_response(_http_error(exc))
            self.metrics.observe(
                path, request.method, response.status_code, time.perf_counter() - started
            )
            return response

        return Route(path, endpoint, methods=list(handlers))

    async def body(self, request: Request, limit: int) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise HTTPError(413, "too_large", f"request body is over the limit of {limit:,} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPError(
                    413, "too_large", f"request body is over the limit of {limit:,} bytes"
                )
        return bytes(body)

    async def json_object(self, request: Request) -> dict[str, Any]:
        body = await self.body(request, self.max_body_bytes)
        try:
            value = _DECODER.decode(body.decode())
        except (ValueError, RecursionError):
            raise HTTPError(400, "bad_request", "request body is not valid JSON") from None
        if not isinstance(value, dict):
            raise HTTPError(400, "bad_request", "request body must be a JSON object")
        return value

    @staticmethod
    def actor(request: Request, token: Token | None) -> str:
        """Who wrote, for the history: the token (never its secret) and what the client says
        it is (``X-Devicebucket-Actor``, e.g. the automation)."""
        if token is None or token is ENV_ADMIN:
            who = "admin"
        else:
            who = f"{'admin' if token.is_admin else 'device'} token {token.id}"
        via = request.headers.get("x-devicebucket-actor")
        return f"{who} via {via[:200]}" if via else who

    # --- buckets -------------------------------------------------------------------------

    async def get_bucket(self, request: Request, token: Token | None) -> Response:
        params = request.path_params
        return _bucket_text(*await self.store.get_json(params["device"], job=params.get("job")))

    async def patch_bucket(self, request: Request, token: Token | None) -> Response:
        params, expected = request.path_params, _if_match(request)
        data = await self.json_object(request)
        snapshot = await self.store.merge(
            params["device"],
            data,
            job=params.get("job"),
            expected_version=expected,
            actor=self.actor(request, token),
        )
        return _bucket(snapshot)

    async def clear_bucket(self, request: Request, token: Token | None) -> Response:
        params, expected = request.path_params, _if_match(request)
        snapshot = await self.store.clear(
            params["device"],
            job=params.get("job"),
            expected_version=expected,
            actor=self.actor(request, token),
        )
        return _bucket(snapshot)

    async def delete_key(self, request: Request, token: Token | None) -> Response:
        params, expected = request.path_params, _if_match(request)
        snapshot = await self.store.delete(
            params["device"],
            [params["key"]],
            job=params.get("job"),
            expected_version=expected,
            actor=self.actor(request, token),
        )
        return _bucket(snapshot)

    async def delete_keys(self, request: Request, token: Token | None) -> Response:
        params, expected = request.path_params, _if_match(request)
        keys = (await self.json_object(request)).get("keys")
        if not isinstance(keys, list):
            raise HTTPError(422, "invalid_value", 'body must be {"keys": [...]} with a list of str')
        snapshot = await self.store.delete(
            params["device"],
            keys,
            job=params.get("job"),
            expected_version=expected,
            actor=self.actor(request, token),
        )
        return _bucket(snapshot)

    # --- history -------------------------------------------------------------------------

    async def history(self, request: Request, token: Token | None) -> Response:
        params = request.path_params
        changes = await self.store.history(
            params["device"], job=params.get("job"), limit=_limit(request)
        )
        return _json({"changes": [change_json(c) for c in changes]})

    async def history_version(self, request: Request, token: Token | None) -> Response:
        """A kept version; values of secret-looking keys masked unless ``?reveal=true``."""
        params = request.path_params
        reveal = request.query_params.get("reveal", "false")
        if reveal not in ("true", "false"):
            raise HTTPError(400, "bad_request", "reveal must be true or false")
        snapshot = await self.store.at_version(
            params["device"], params["version"], job=params.get("job")
        )
        if reveal == "true":
            response = _bucket(snapshot)
        else:
            masked = mask_secrets(snapshot.data, self.secret_keys)
            response = _bucket_text(encode(masked), snapshot.version)
        response.headers["X-Devicebucket-Version-Time"] = repr(snapshot.updated_at or 0.0)
        return response

    async def restore(self, request: Request, token: Token | None) -> Response:
        params, expected = request.path_params, _if_match(request)
        version = (await self.json_object(request)).get("version")
        if type(version) is not int:
            raise HTTPError(422, "invalid_value", 'body must be {"version": N}')
        snapshot = await self.store.restore(
            params["device"],
            version,
            job=params.get("job"),
            expected_version=expected,
            actor=self.actor(request, token),
        )
        return _bucket(snapshot)

    # --- devices, jobs, tokens -----------------------------------------------------------

    async def list_devices(self, request: Request, token: Token | None) -> Response:
        limit = _limit(request)
        found = await self.store.devices(after=request.query_params.get("after"), limit=limit)
        following = found[-1].device if len(found) == limit else None
        return _json({"devices": [device_json(d) for d in found], "next": following})

    async def delete_device(self, request: Request, token: Token | None) -> Response:
        device = request.path_params["device"]
        removed = await self.store.delete_device(device)
        return _json({"device": device, "deleted_buckets": removed})

    async def list_jobs(self, request: Request, token: Token | None) -> Response:
        return _json({"jobs": [job_json(job) for job in await self.store.jobs()]})

    async def get_job(self, request: Request, token: Token | None) -> Response:
        job = await self.store.get_job(request.path_params["job"])
        if job is None:
            raise HTTPError(404, "not_found", "no such job")
        return _json(job_json(job))

    async def put_job(self, request: Request, token: Token | None) -> Response:
        body = await self.json_object(request)
        automation, replace = body.get("automation"), body.get("replace_schema", False)
        if automation is not None and not isinstance(automation, str):
            raise HTTPError(422, "invalid_value", "automation must be a string or null")
        if not isinstance(replace, bool):
            raise HTTPError(422, "invalid_value", "replace_schema must be true or false")
        job = await self.store.register_job(
            request.path_params["job"],
            automation=automation,
            schema=body.get("bucket_schema"),
            replace_schema=replace,
        )
        return _json(job_json(job))

    async def create_token(self, request: Request, token: Token | None) -> Response:
        if "device" in request.path_params:
            device = request.path_params["device"]
        else:
            device = (await self.json_object(request)).get("device")
            if device is not None and not isinstance(device, str):
                raise HTTPError(422, "invalid_value", "device must be a device id or null")
        created, secret = await self.store.create_token(device)
        return _json({**token_json(created), "token": secret}, 201)

    async def list_tokens(self, request: Request, token: Token | None) -> Response:
        return _json({"tokens": [token_json(t) for t in await self.store.tokens()]})

    async def revoke_token(self, request: Request, token: Token | None) -> Response:
        await self.store.revoke_token(request.path_params["token"])
        return Response(status_code=204)

    async def whoami(self, request: Request, token: Token | None) -> Response:
        assert token is not None
        return _json(token_json(token))

    # --- export, import, health, metrics, docs -------------------------------------------

    async def export(self, request: Request, token: Token | None) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            yield (json.dumps(HEADER) + "\n").encode()
            async for record in self.store.export():
                yield (dump_record(record) + "\n").encode()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    async def import_(self, request: Request, token: Token | None) -> Response:
        body = await self.body(request, self.max_import_bytes)
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise HTTPError(400, "bad_request", "import body is not UTF-8 text") from None
        parser = RecordParser()
        records = [r for line in text.splitlines() if (r := parser.feed(line)) is not None]
        parser.finish()
        return _json({"imported": await self.store.import_records(records)})

    async def healthz(self, request: Request, token: Token | None) -> Response:
        try:
            await self.store.ping()
        except StoreUnavailableError as exc:
            return _json({"status": "unavailable", "error": str(exc)}, 503)
        return _json({"status": "ok"})

    async def metrics_page(self, request: Request, token: Token | None) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request, token: Token | None) -> Response:
        return _json(openapi_document())

    async def docs(self, request: Request, token: Token | None) -> Response:
        return HTMLResponse(_DOCS_PAGE)

    def routes(self) -> list[Route]:
        public, admin, device = Access.PUBLIC, Access.ADMIN, Access.DEVICE
        routes = []
        for prefix in ("/v1/devices/{device}", "/v1/devices/{device}/jobs/{job}"):
            routes += [
                self.route(
                    f"{prefix}/bucket",
                    {
                        "GET": (self.get_bucket, device),
                        "PATCH": (self.patch_bucket, device),
                        "DELETE": (self.clear_bucket, device),
                    },
                ),
                self.route(
                    f"{prefix}/bucket/keys/{{key:path}}", {"DELETE": (self.delete_key, device)}
                ),
                self.route(f"{prefix}/bucket/delete-keys", {"POST": (self.delete_keys, device)}),
                self.route(
                    f"{prefix}/bucket/history",
                    {"GET": (self.history, admin)},
                    frozenset({"limit"}),
                ),
                self.route(
                    f"{prefix}/bucket/history/{{version:int}}",
                    {"GET": (self.history_version, admin)},
                    frozenset({"reveal"}),
                ),
                self.route(f"{prefix}/bucket/restore", {"POST": (self.restore, admin)}),
            ]
        return [
            *routes,
            self.route(
                "/v1/devices",
                {"GET": (self.list_devices, admin)},
                frozenset({"after", "limit"}),
            ),
            self.route("/v1/devices/{device}", {"DELETE": (self.delete_device, admin)}),
            self.route("/v1/devices/{device}/tokens", {"POST": (self.create_token, admin)}),
            self.route("/v1/jobs", {"GET": (self.list_jobs, admin)}),
            self.route(
                "/v1/jobs/{job}",
                {"GET": (self.get_job, Access.ANY_TOKEN), "PUT": (self.put_job, admin)},
            ),
            self.route(
                "/v1/tokens",
                {"GET": (self.list_tokens, admin), "POST": (self.create_token, admin)},
            ),
            self.route("/v1/tokens/{token}", {"DELETE": (self.revoke_token, admin)}),
            self.route("/v1/whoami", {"GET": (self.whoami, Access.ANY_TOKEN)}),
            self.route("/v1/export", {"GET": (self.export, admin)}),
            self.route("/v1/import", {"POST": (self.import_, admin)}),
            self.route("/healthz", {"GET": (self.healthz, public)}),
            self.route("/metrics", {"GET": (self.metrics_page, public)}),
            self.route("/openapi.json", {"GET": (self.openapi, public)}),
            self.route("/docs", {"GET": (self.docs, public)}),
        ]


_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devicebucket API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


def create_app(
    store: Store,
    *,
    admin_token: str | None = None,
    max_import_bytes: int = 256 * 1024 * 1024,
    close_store: bool = True,
    session_secret: str | bytes | None = None,
    secret_keys: tuple[str, ...] | None = None,
) -> Starlette:
    """The ASGI app serving ``store``: the API under ``/v1`` and the dashboard under ``/ui``.

    ``admin_token`` is accepted besides stored admin tokens. ``session_secret`` signs dashboard
    sessions (give every worker the same one; default: random, so sessions end with the
    process). ``secret_keys`` are the words that make a key's value masked in the dashboard
    (default: ``DEVICEBUCKET_SECRET_KEYS`` or ``rules.SECRET_KEY_PATTERNS``).
    """
    secret_keys = secret_key_patterns() if secret_keys is None else secret_keys
    api = Api(store, admin_token, max_import_bytes, secret_keys)
    if session_secret is None:
        session_secret = secrets.token_bytes(32)
    ui = dashboard_routes(
        api,
        session_secret.encode() if isinstance(session_secret, str) else session_secret,
        secret_keys,
    )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        error = HTTPError(
            status, "not_found" if status == 404 else "http_error", _status_text(status)
        )
        response = _error_response(error)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        api.metrics.observe("unmatched", request.method, status, 0.0)
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if close_store:
            await store.close()

    app = Starlette(
        routes=[*api.routes(), *ui],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    app.state.api = api
    return app


def _status_text(status: int) -> str:
    return {404: "no such route", 405: "method not allowed on this route"}.get(status, "HTTP error")


def app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory`` workers: ``DEVICEBUCKET_URL`` and the admin token."""
    return create_app(
        open_store(os.environ.get("DEVICEBUCKET_URL")),
        admin_token=os.environ.get(ADMIN_TOKEN_ENV),
        session_secret=os.environ.get(SESSION_SECRET_ENV),
    )
