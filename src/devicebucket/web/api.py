"""The API's handlers: one method per ``handler`` of the route table (``wire.routes``).

:meth:`Api.routes` builds the Starlette routes from that table. Each route's wrapper
authenticates and authorizes the caller (``web.auth``), refuses query parameters the route
does not take, answers every expected failure from the error table (``wire.errors``), and
records metrics labelled by route template.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Route

from ..core.actors import LOCAL, actor, token_credential
from ..core.errors import DeviceBucketError, StoreUnavailableError
from ..core.limits import MAX_PAGE
from ..core.masking import mask_secrets
from ..core.store import Store
from ..core.tokens import Token
from ..core.values import encode
from ..wire.exchange import HEADER, RecordParser, dump_record
from ..wire.routes import ROUTES, Access, Endpoint
from ..wire.shapes import change_json, device_json, job_json, rfc3339, token_json
from .auth import ENV_ADMIN_ID, TokenAuth
from .forms import read_bounded
from .headers import header
from .metrics import Metrics
from .openapi import openapi_document
from .responses import (
    HTTPError,
    bucket_response,
    bucket_text_response,
    error_response,
    json_response,
)
from .streams import Watches, heartbeat_seconds, since_of, watchers_per_token

__all__ = ["Api"]

Handler = Callable[[Request, Token | None], Awaitable[Response]]


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit", "100")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_PAGE):
        raise HTTPError(422, "invalid_value", f"limit must be an integer from 1 to {MAX_PAGE}")
    return int(raw)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# One decoder for every request: json.loads(..., parse_constant=...) builds a new one per call.
_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _if_match(request: Request) -> int | None:
    raw = header(request, b"if-match")
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 18):
        raise HTTPError(400, "bad_request", 'If-Match must be a version ETag such as "3"')
    return int(tag)


_log: Final = logging.getLogger("devicebucket.web")


def _unexpected(exc: Exception, method: str, path: str) -> Response:
    """A 500 for a failure no rule foresaw. The log names the exception's type and where it
    was raised, never its message (which could quote a stored value)."""
    where = "".join(traceback.format_tb(exc.__traceback__))
    _log.error("%s %s failed with %s:\n%s", method, path, type(exc).__name__, where)
    return error_response(HTTPError(500, "internal", "the server failed; see its log"))


def _who(token: Token | None) -> str:
    """Whose watches a stream counts among (the environment's admin token has no id)."""
    return ENV_ADMIN_ID if token is None else token.id


class Api:
    """The routes of one app over one store."""

    def __init__(
        self,
        store: Store,
        auth: TokenAuth,
        max_import_bytes: int,
        secret_keys: tuple[str, ...] = (),
    ) -> None:
        self.store = store
        self.auth = auth
        self.secret_keys = secret_keys
        self.max_body_bytes = store.limits.max_bucket_bytes + 64 * 1024
        self.max_import_bytes = max_import_bytes
        self.meter = Metrics()
        self.watches = Watches(self.meter, watchers_per_token(), heartbeat_seconds())
        self.registered: set[str] = set()  # jobs known to be registered

    # --- plumbing ------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """One Route a path of the route table, so a wrong method gets 405 with the right
        Allow header."""
        by_path: dict[str, list[Endpoint]] = {}
        for entry in ROUTES:
            by_path.setdefault(entry.path, []).append(entry)
        return [self.route(path, entries) for path, entries in by_path.items()]

    def route(self, path: str, entries: list[Endpoint]) -> Route:
        """A query parameter the route does not take is refused (a typo should not be ignored)."""
        handlers: dict[str, tuple[Handler, Access]] = {
            e.method: (getattr(self, e.handler), e.access) for e in entries
        }
        query = {name: frozenset(e.query) for name, e in ((e.method, e) for e in entries)}
        if "GET" in handlers:
            handlers["HEAD"], query["HEAD"] = handlers["GET"], query["GET"]
        auth, meter = self.auth, self.meter

        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            method = request.method
            handler, access = handlers[method]
            try:
                if request.scope["query_string"]:
                    unknown = set(request.query_params) - query[method]
                    if unknown:
                        name = sorted(unknown)[0][:64]
                        raise HTTPError(400, "bad_request", f"unknown query parameter {name!r}")
                token = None if access is Access.PUBLIC else await auth.caller(request)
                params = request.path_params
                auth.authorize(access, token, params.get("device"), params.get("job"))
                response = await handler(request, token)
            except HTTPError as exc:
                response = error_response(exc)
            except DeviceBucketError as exc:
                response = error_response(HTTPError.of(exc))
            except Exception as exc:
                response = _unexpected(exc, method, path)
            meter.observe(path, method, response.status_code, time.perf_counter() - started)
            return response

        return Route(path, endpoint, methods=list(handlers))

    async def body(self, request: Request, limit: int) -> bytes:
        body = await read_bounded(request, limit)
        if body is None:
            raise HTTPError(413, "too_large", f"request body is over the limit of {limit:,} bytes")
        return body

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
        """Who wrote, for the history (``core.actors``): the token (never its secret) via
        the surface the client names (``X-Devicebucket-Actor``: ``cli``, an automation),
        else ``http``."""
        if token is None:  # only public routes go without one; none of them writes
            credential = token_credential(ENV_ADMIN_ID, admin=True)
        elif token.run:  # the runner's own server: the runner opened the store directly
            credential = LOCAL
        else:
            credential = token_credential(token.id, token.is_admin)
        return actor(credential, (header(request, b"x-devicebucket-actor") or "")[:200] or "http")

    # --- buckets -------------------------------------------------------------------------

    async def get_bucket(self, request: Request, token: Token | None) -> Response:
        params = request.path_params
        return bucket_text_response(
            *await self.store.get_json(params["device"], job=params.get("job"))
        )

    async def write_args(self, request: Request, token: Token | None) -> dict[str, Any]:
        """What every bucket write passes on: the job, the If-Match version, the actor.
        A device token writes job buckets only of registered jobs."""
        job = request.path_params.get("job")
        if job is not None and token is not None and not token.is_admin:
            await self.check_registered(job)
        return {
            "job": job,
            "expected_version": _if_match(request),
            "actor": self.actor(request, token),
        }

    async def check_registered(self, job: str) -> None:
        """403 unless ``job`` is registered (jobs are never unregistered: a yes is kept)."""
        if job in self.registered:
            return
        if await self.store.get_job(job) is None:
            raise HTTPError(
                403,
                "forbidden",
                f"job {job!r} is not registered, and a device token writes only the buckets of"
                f" registered jobs; an admin registers it: devicebucket job register --job {job}"
                " [FILE]",
            )
        if len(self.registered) < 100_000:
            self.registered.add(job)

    async def patch_bucket(self, request: Request, token: Token | None) -> Response:
        args = await self.write_args(request, token)
        data = await self.json_object(request)
        # (the query string parsed only when there is one: a write's is mostly empty)
        raw = request.query_params.get("expire_in") if request.scope["query_string"] else None
        if raw is not None:
            try:
                args["expire_in"] = _DECODER.decode(raw)
            except (ValueError, RecursionError):
                raise HTTPError(400, "bad_request", "expire_in is not valid JSON") from None
        return bucket_response(await self.store.merge(request.path_params["device"], data, **args))

    async def expiries(self, request: Request, token: Token | None) -> Response:
        params = request.path_params
        found = await self.store.expiries(params["device"], job=params.get("job"))
        return json_response({"expires": {k: rfc3339(at) for k, at in sorted(found.items())}})

    async def clear_bucket(self, request: Request, token: Token | None) -> Response:
        args = await self.write_args(request, token)
        return bucket_response(await self.store.clear(request.path_params["device"], **args))

    async def delete_key(self, request: Request, token: Token | None) -> Response:
        args, params = await self.write_args(request, token), request.path_params
        return bucket_response(await self.store.delete(params["device"], [params["key"]], **args))

    async def delete_keys(self, request: Request, token: Token | None) -> Response:
        args = await self.write_args(request, token)
        keys = (await self.json_object(request)).get("keys")
        if not isinstance(keys, list):
            raise HTTPError(422, "invalid_value", 'body must be {"keys": [...]} with a list of str')
        return bucket_response(await self.store.delete(request.path_params["device"], keys, **args))

    # --- watches -------------------------------------------------------------------------

    async def watch_bucket(self, request: Request, token: Token | None) -> Response:
        params = request.path_params
        events = self.store.watch(params["device"], job=params.get("job"), since=since_of(request))
        return self.watches.stream(_who(token), events, many=False)

    async def watch_device(self, request: Request, token: Token | None) -> Response:
        events = self.store.watch_buckets(request.path_params["device"])
        return self.watches.stream(_who(token), events, many=True)

    async def watch_fleet(self, request: Request, token: Token | None) -> Response:
        return self.watches.stream(_who(token), self.store.watch_buckets(), many=True)

    # --- history -------------------------------------------------------------------------

    async def history(self, request: Request, token: Token | None) -> Response:
        params = request.path_params
        changes = await self.store.history(
            params["device"], job=params.get("job"), limit=_limit(request)
        )
        return json_response({"changes": [change_json(c) for c in changes]})

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
            response = bucket_response(snapshot)
        else:
            masked = mask_secrets(snapshot.data, self.secret_keys)
            response = bucket_text_response(encode(masked), snapshot.version)
        response.headers["X-Devicebucket-Version-Time"] = rfc3339(snapshot.updated_at or 0.0)
        return response

    async def restore(self, request: Request, token: Token | None) -> Response:
        args = await self.write_args(request, token)
        version = (await self.json_object(request)).get("version")
        if type(version) is not int:
            raise HTTPError(422, "invalid_value", 'body must be {"version": N}')
        snapshot = await self.store.restore(request.path_params["device"], version, **args)
        return bucket_response(snapshot)

    # --- devices, jobs, tokens -----------------------------------------------------------

    async def list_devices(self, request: Request, token: Token | None) -> Response:
        limit = _limit(request)
        found = await self.store.devices(after=request.query_params.get("after"), limit=limit)
        following = None
        if len(found) == limit and await self.store.devices(after=found[-1].device, limit=1):
            following = found[-1].device  # null on the last page
        return json_response({"devices": [device_json(d) for d in found], "next": following})

    async def delete_device(self, request: Request, token: Token | None) -> Response:
        device = request.path_params["device"]
        removed = await self.store.delete_device(device)
        return json_response({"device": device, "deleted_buckets": removed})

    async def sweep(self, request: Request, token: Token | None) -> Response:
        return json_response({"swept": await self.store.sweep_expired()})

    async def list_jobs(self, request: Request, token: Token | None) -> Response:
        return json_response({"jobs": [job_json(job) for job in await self.store.jobs()]})

    async def get_job(self, request: Request, token: Token | None) -> Response:
        job = await self.store.get_job(request.path_params["job"])
        if job is None:
            raise HTTPError(404, "not_found", "no such job")
        return json_response(job_json(job))

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
        return json_response(job_json(job))

    async def create_device_token(self, request: Request, token: Token | None) -> Response:
        return await self.create_token(request, token)

    async def create_token(self, request: Request, token: Token | None) -> Response:
        if "device" in request.path_params:
            device = request.path_params["device"]
        else:
            device = (await self.json_object(request)).get("device")
            if device is not None and not isinstance(device, str):
                raise HTTPError(422, "invalid_value", "device must be a device id or null")
        created, secret = await self.store.create_token(device)
        return json_response({**token_json(created), "token": secret}, 201)

    async def list_tokens(self, request: Request, token: Token | None) -> Response:
        return json_response({"tokens": [token_json(t) for t in await self.store.tokens()]})

    async def revoke_token(self, request: Request, token: Token | None) -> Response:
        await self.store.revoke_token(request.path_params["token"])
        return Response(status_code=204)

    async def whoami(self, request: Request, token: Token | None) -> Response:
        assert token is not None
        return json_response(token_json(token))

    # --- export, import, health, metrics, docs -------------------------------------------

    async def export(self, request: Request, token: Token | None) -> Response:
        history = request.query_params.get("history", "true")
        if history not in ("true", "false"):
            raise HTTPError(400, "bad_request", "history must be true or false")

        async def lines() -> AsyncIterator[bytes]:
            yield (json.dumps(HEADER) + "\n").encode()
            async for record in self.store.export(history=history == "true"):
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
        return json_response({"imported": await self.store.import_records(records)})

    async def healthz(self, request: Request, token: Token | None) -> Response:
        try:
            await self.store.ping()
        except StoreUnavailableError as exc:
            return json_response({"status": "unavailable", "error": str(exc)}, 503)
        return json_response({"status": "ok"})

    async def metrics(self, request: Request, token: Token | None) -> Response:
        return Response(self.meter.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request, token: Token | None) -> Response:
        return json_response(openapi_document())

    async def docs(self, request: Request, token: Token | None) -> Response:
        return HTMLResponse(
            DOCS_PAGE,
            headers={"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff"},
        )


# Swagger UI comes from the installed ``swagger-ui-py`` package (served at /docs/assets), its
# start from our own static files: the page loads nothing from another origin.
DOCS_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devicebucket API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/ui/static/docs.js"></script>
</body></html>
"""
#: Swagger UI styles its elements inline; scripts, fonts and pictures come only from here.
DOCS_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none';"
    " form-action 'self'"
)
