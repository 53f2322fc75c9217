"""``create_app(store)``: the ASGI app serving a store — the API under ``/v1`` (routes from
``wire.routes``), the dashboard under ``/ui``, health, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from ..backends.factory import open_store
from ..core.masking import secret_key_patterns
from ..core.schema import load_jsonschema
from ..core.store import Store
from ..core.tokens import Token
from .api import Api
from .auth import ADMIN_TOKEN_ENV, TokenAuth
from .dashboard import Dashboard
from .ratelimit import AUTH_FAILURES_ENV, DEFAULT_PER_MINUTE, FailureLimit
from .responses import HTTPError, error_response
from .streams import heartbeat_seconds, watchers_per_token

__all__ = [
    "ADMIN_TOKEN_ENV",
    "SESSION_SECRET_ENV",
    "app_from_env",
    "check_server_settings",
    "create_app",
]

SESSION_SECRET_ENV: Final = "DEVICEBUCKET_SESSION_SECRET"
BEHIND_TLS_ENV: Final = "DEVICEBUCKET_BEHIND_TLS"
SESSION_IDLE_ENV: Final = "DEVICEBUCKET_SESSION_IDLE_MINUTES"
SESSION_HOURS_ENV: Final = "DEVICEBUCKET_SESSION_HOURS"
#: A server process collects its young objects once this many more are alive than after the
#: last collection (CPython's default, 700 up to 3.13, is crossed by the objects of the
#: requests in flight alone: they were collected, and promoted, hundreds of times a second).
YOUNG_OBJECTS: Final = 5_000
#: How long a thread of a server's process keeps the interpreter while another waits for it
#: (CPython's default: 5 ms). A big job write is checked on a thread of its own
#: (``core.ahead``, ``backends.turns``); the event loop took the interpreter back up to 5 ms
#: late each time it waited for it, and another device's write took ~22 ms meanwhile
#: instead of ~3.
SWITCH_SECONDS: Final = 0.0005


def _setting(name: str, default: int, least: int = 1) -> int:
    """A whole number from the environment; ValueError (naming it) otherwise."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and least <= int(raw) < 10**6):
        raise ValueError(f"{name} must be a whole number from {least} to 999999, not {raw[:40]!r}")
    return int(raw)


def check_server_settings() -> None:
    """Refuse (ValueError, naming the setting) a server setting of the environment that is
    not valid, before any worker starts."""
    _setting(SESSION_IDLE_ENV, 30)
    _setting(SESSION_HOURS_ENV, 12)
    _setting(AUTH_FAILURES_ENV, DEFAULT_PER_MINUTE, least=0)
    watchers_per_token()
    heartbeat_seconds()


def create_app(
    store: Store,
    *,
    admin_token: str | None = None,
    max_import_bytes: int = 256 * 1024 * 1024,
    close_store: bool = True,
    session_secret: str | bytes | None = None,
    secret_keys: tuple[str, ...] | None = None,
    behind_tls: bool | None = None,
    auth_failures_per_minute: int | None = None,
    session_idle_minutes: int | None = None,
    session_hours: int | None = None,
    run_tokens: Mapping[str, Token] | None = None,
) -> Starlette:
    """The ASGI app serving ``store``: the API under ``/v1`` and the dashboard under ``/ui``.

    ``admin_token`` is accepted besides stored admin tokens. ``session_secret`` signs dashboard
    sessions (give every worker the same one; default: random, so sessions end with the
    process). ``secret_keys`` are the words that make a key's value masked in the dashboard
    (default: ``masking.SECRET_KEY_PATTERNS`` and the words of ``DEVICEBUCKET_SECRET_KEYS``).
    ``behind_tls`` says clients reach the server only over HTTPS, through a TLS proxy:
    session cookies are then always ``Secure`` and pages send HSTS (default:
    ``DEVICEBUCKET_BEHIND_TLS=1``). ``auth_failures_per_minute`` is how many failed
    sign-ins one client address may make a minute before it is refused for a while (default:
    ``DEVICEBUCKET_AUTH_FAILURES_PER_MINUTE``, else 30; 0 turns the limit off). A dashboard
    session ends after ``session_idle_minutes`` unused (``DEVICEBUCKET_SESSION_IDLE_MINUTES``,
    else 30) and ``session_hours`` after sign-in (``DEVICEBUCKET_SESSION_HOURS``, else 12).
    ``run_tokens`` are tokens kept only in this app's memory, by the SHA-256 of their secret
    (``devicebucket run`` gives its JavaScript automations one).
    """
    load_jsonschema()
    secret_keys = secret_key_patterns() if secret_keys is None else secret_keys
    if auth_failures_per_minute is None:
        auth_failures_per_minute = _setting(AUTH_FAILURES_ENV, DEFAULT_PER_MINUTE, least=0)
    limit = FailureLimit(auth_failures_per_minute) if auth_failures_per_minute else None
    auth = TokenAuth(store, admin_token, limit, run_tokens)
    api = Api(store, auth, max_import_bytes, secret_keys)
    if session_secret is None:
        session_secret = secrets.token_bytes(32)
    signing = session_secret.encode() if isinstance(session_secret, str) else session_secret
    if behind_tls is None:
        behind_tls = os.environ.get(BEHIND_TLS_ENV) == "1"
    idle = session_idle_minutes or _setting(SESSION_IDLE_ENV, 30)
    hours = session_hours or _setting(SESSION_HOURS_ENV, 12)
    ui = Dashboard(
        store,
        auth,
        signing,
        secret_keys,
        behind_tls=behind_tls,
        idle_seconds=idle * 60,
        lifetime_seconds=hours * 3600,
        watches=api.watches,
    )

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        error = HTTPError(
            status, "not_found" if status == 404 else "http_error", _status_text(status)
        )
        response = error_response(error)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        api.meter.observe("unmatched", request.method, status, 0.0)
        return response

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Expired keys leave every read at once; the sweep records their removal (actor
        # ``expiry``) for the history and the watchers, every second.
        sweeping = asyncio.get_running_loop().create_task(store.sweep_forever())
        try:
            yield
        finally:
            sweeping.cancel()
            with suppress(asyncio.CancelledError):
                await sweeping
            if close_store:
                await store.close()

    app = Starlette(
        routes=[
            *api.routes(),
            *ui.routes(),
            Mount("/docs/assets", StaticFiles(packages=[("swagger_ui", "static")])),
        ],
        exception_handlers={HTTPException: not_found},
        lifespan=lifespan,
    )
    # Starlette's slash redirect builds its Location from the request's Host header: a
    # client could make the server redirect to any site. Paths are exact instead.
    app.router.redirect_slashes = False
    app.state.api = api
    return app


def _status_text(status: int) -> str:
    return {404: "no such route", 405: "method not allowed on this route"}.get(status, "HTTP error")


class RedactRefusedQueries(logging.Filter):
    """Uvicorn's access log line without the query string of a refused request (status 400
    or more): a client that puts a token in the URL (``?token=…``) must not find it in the
    log. Accepted requests keep theirs (``?limit=``, ``?after=``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, version, status = args
            if isinstance(status, int) and status >= 400 and isinstance(path, str) and "?" in path:
                record.args = (client, method, path.split("?", 1)[0] + "?…", version, status)
        return True


def settle_heap() -> None:
    """Tune the garbage collector of a server's process, once its app is built.

    What is alive then (modules, the app, its routes) stays for the life of the process: it
    is frozen, so full collections no longer walk it (each walked ~50,000 objects, 25 ms,
    about once every 200 ms under load). Young objects are collected at ``YOUNG_OBJECTS``
    rather than CPython's 700. Together they took the time a worker spent collecting under 64
    connections of PATCH from ~20 % to ~1 % (docs/benchmarks-log.md). Threads hand the
    interpreter over every ``SWITCH_SECONDS``. Only the server's own processes call this: a
    library does not set its host's collector or interpreter."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, middle, oldest)
    sys.setswitchinterval(SWITCH_SECONDS)


def app_from_env() -> Starlette:
    """App factory for ``uvicorn --factory`` workers: ``DEVICEBUCKET_URL`` and the admin token.
    Also keeps the query strings of refused requests out of the access log, and settles the
    worker's heap (:func:`settle_heap`)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactRefusedQueries) for f in access.filters):
        access.addFilter(RedactRefusedQueries())
    app = create_app(
        open_store(os.environ.get("DEVICEBUCKET_URL")),
        admin_token=os.environ.get(ADMIN_TOKEN_ENV),
        session_secret=os.environ.get(SESSION_SECRET_ENV),
    )
    settle_heap()
    return app
