"""The web dashboard at ``/ui``: browse devices and jobs, edit buckets, sign in with an admin token.

Server-rendered (Jinja2) over the same store as the API. A session is kept by the server
(``core.sessions``; in the store's table, shared by every worker) and its cookie (HttpOnly,
SameSite=Strict, Secure under TLS) carries only a random secret. Signing out ends it; so do
revoking the admin token it was opened with, configuring another admin token, and its idle
and absolute lifetimes. Every change is a POST carrying the session's CSRF
token and the version of the bucket the operator saw: a write is conditional on it, so two
operators never silently overwrite each other.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from anyio.to_thread import run_sync
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..core.errors import ConflictError, DeviceBucketError, StoreUnavailableError
from ..core.ids import check_id
from ..core.masking import mask_secrets
from ..core.model import DEVICE_SORTS
from ..core.store import Store
from ..core.tokens import Token
from .auth import TokenAuth
from .bucketview import bucket_view, entry
from .forms import SIGN_IN_BYTES, FormRefusedError, edit_form_bytes, read_form
from .historypages import HistoryPages
from .livepages import LivePages
from .metrics import Metrics
from .pagekit import (
    actor,
    back_to_bucket,
    kind,
    next_page,
    page_number,
    parse_value,
    pretty,
    size,
    when,
)
from .responses import HTTPError
from .signin import SESSION_COOKIE, SessionKeeper
from .streams import Watches, heartbeat_seconds, watchers_per_token

__all__ = ["SESSION_COOKIE", "Dashboard"]

_log = logging.getLogger("devicebucket.web")
PAGE_SIZE = 50
JOB_BUCKETS_SHOWN = 20
_FAVICON = (files("devicebucket.web") / "static" / "favicon.svg").read_bytes()
_CACHED = {"Cache-Control": "public, max-age=86400"}

Page = Callable[[Request, dict[str, Any]], Awaitable[Response]]


class Dashboard:
    """The pages of one app: sessions, devices, a device's buckets, jobs."""

    def __init__(
        self,
        store: Store,
        auth: TokenAuth,
        session_secret: bytes,
        secret_keys: tuple[str, ...],
        *,
        behind_tls: bool = False,
        idle_seconds: float = 30 * 60,
        lifetime_seconds: float = 12 * 3600,
        watches: Watches | None = None,
    ) -> None:
        """``behind_tls``: the server is reached only through HTTPS (a TLS proxy in front of
        plain HTTP), so cookies are always ``Secure`` and pages send HSTS. A session ends
        after ``idle_seconds`` unused, and ``lifetime_seconds`` after sign-in in any case."""
        self.store = store
        self.behind_tls = behind_tls
        self.auth = auth
        self.keeper = SessionKeeper(
            store,
            auth,
            session_secret,
            idle_seconds=idle_seconds,
            lifetime_seconds=lifetime_seconds,
            behind_tls=behind_tls,
        )
        self.edit_form_bytes = edit_form_bytes(store.limits.max_bucket_bytes)
        self.changes = HistoryPages(self)
        self.watches = watches or Watches(Metrics(), watchers_per_token(), heartbeat_seconds())
        self.live = LivePages(self)
        self.secret_keys = secret_keys
        self.env = Environment(
            loader=PackageLoader("devicebucket.web", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(when=when, size=size, kind=kind, pretty=pretty)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        headers = {
            "Cache-Control": "no-store",
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
        }
        if self.behind_tls:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        return HTMLResponse(html, status, headers=headers)

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """A page that needs a session: GETs go to the sign-in form without one, POSTs are
        refused; POSTs must carry the session's CSRF token. A POST's form is read (bounded)
        here, before the handler runs, and kept as ``request.state.form``."""

        async def endpoint(request: Request) -> Response:
            try:
                return await guarded(request)
            except StoreUnavailableError as exc:
                return self.unavailable(exc)

        async def guarded(request: Request) -> Response:
            session = await self.keeper.current(request)
            if session is None:
                if request.method != "GET":
                    return self.render("error.html", 403, message="Your session has ended.")
                return RedirectResponse("/ui/login?" + urlencode({"next": request.url.path}), 303)
            if request.method == "POST":
                try:
                    form = await read_form(request, self.edit_form_bytes)
                except FormRefusedError as exc:
                    return self.render("error.html", exc.status, session=session, message=str(exc))
                # As bytes: compare_digest refuses str with non-ASCII characters (TypeError),
                # and a hostile form may send any text.
                given = str(form.get("csrf", "")).encode("utf-8", "surrogatepass")
                if not hmac.compare_digest(given, session["csrf"].encode()):
                    return self.render(
                        "error.html", 403, message="This form has expired; reload the page."
                    )
                request.state.form = form
            try:
                return await handler(request, session)
            except StoreUnavailableError:
                raise  # answered by ``unavailable``, without the store's details
            except DeviceBucketError as exc:
                return self.render("error.html", 400, session=session, message=str(exc))

        return endpoint

    async def login_form(self, request: Request) -> Response:
        return self.render("login.html", next=next_page(request.query_params.get("next")))

    def unavailable(self, exc: StoreUnavailableError) -> HTMLResponse:
        """The store failed: the page gives a request id, the log the store's own words
        (which name the store and its driver's error)."""
        request_id = secrets.token_hex(6)
        _log.error("dashboard request %s: %s", request_id, exc)
        message = (
            f"The store is unavailable right now (request {request_id}). Try again in a"
            " moment; the server's log has the details."
        )
        return self.render("error.html", 503, message=message)

    async def login(self, request: Request) -> Response:
        try:
            return await self._login(request)
        except StoreUnavailableError as exc:
            return self.unavailable(exc)

    async def _login(self, request: Request) -> Response:
        try:
            form = await read_form(request, SIGN_IN_BYTES)
        except FormRefusedError as exc:
            return self.render("error.html", exc.status, message=str(exc))
        try:
            self.auth.refuse_if_limited(request)
        except HTTPError as exc:
            page = self.render("error.html", 429, message=str(exc).capitalize() + ".")
            page.headers.update(exc.headers or {})
            return page
        presented = str(form.get("token", "")).strip()
        token: Token | None = await self.auth.check_token(presented) if presented else None
        if token is None or not token.is_admin:
            self.auth.failed(request)
            return self.render(
                "login.html",
                401,
                next=next_page(str(form.get("next", ""))),
                error="That is not a valid admin token.",
            )
        response = RedirectResponse(next_page(str(form.get("next", ""))), 303)
        await self.keeper.open(request, token, response)
        return response

    async def logout(self, request: Request, session: dict[str, str]) -> Response:
        """End the session on the server (its cookie no longer opens anything), then drop
        the cookie."""
        response = RedirectResponse("/ui/login", 303)
        await self.keeper.end(session, response)
        return response

    # --- devices -------------------------------------------------------------------------

    async def devices(self, request: Request, session: dict[str, str]) -> Response:
        query = request.query_params
        search = query.get("q", "")[:256]
        sort = query.get("sort", "device")
        sort = sort if sort in DEVICE_SORTS else "device"
        descending = query.get("order") == "desc"
        number = page_number(query.get("page"))
        found = await self.store.device_page(
            search=search,
            sort=sort,
            descending=descending,
            offset=(number - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
        )
        return self.render(
            "devices.html",
            session=session,
            found=found,
            search=search,
            sort=sort,
            descending=descending,
            number=number,
            pages=max(1, math.ceil(found.total / PAGE_SIZE)),
            link=lambda **change: (
                "/ui/devices?"
                + urlencode(
                    {"q": search, "sort": sort, "order": "desc" if descending else "asc", **change}
                )
            ),
        )

    async def device(
        self, request: Request, session: dict[str, str], **outcome: Any
    ) -> HTMLResponse:
        """A device's buckets, a page of keys each (``?bucket=NAME&page=N`` pages one of
        them); built and rendered in a worker thread, so a huge bucket holds up nothing."""
        device = check_id(request.path_params["device"])
        query = request.query_params
        named = query.get("bucket", "")
        reveal, number = query.get("reveal"), page_number(query.get("page"))
        info = await self.store.device(device)
        jobs = list(info.jobs if info else ())
        # At most JOB_BUCKETS_SHOWN job buckets open on the page (and the one named); the
        # others are links.
        shown = jobs[:JOB_BUCKETS_SHOWN]
        if named and named in jobs and named not in shown:
            shown.append(named)
        folded = [job for job in jobs if job not in shown]
        views = []
        for job in (None, *shown):
            snapshot = await self.store.get(device, job=job)
            found = None if job is None else await self.store.get_job(job)
            schema = None if found is None else found.schema
            mine = (job or "") == named
            views.append(
                (
                    snapshot,
                    job,
                    None if schema is None else json.dumps(schema),
                    self.secret_keys,
                    reveal if mine else None,
                    number if mine else 1,
                    schema,
                    await self.store.expiries(device, job=job),
                    time.time(),
                )
            )
        notice = None
        if "saved" in query or "deleted" in query:
            action, key = (
                ("Saved", query["saved"]) if "saved" in query else ("Deleted", query["deleted"])
            )
            notice = f"{action} {key[:200]!r}."
        elif query.get("restored", "").isdigit() and query.get("now", "").isdigit():
            notice = f"Restored version {query['restored']}, as version {query['now']}."
        conflict = outcome.get("conflict")
        if conflict is not None:
            outcome["conflict"] = {
                **conflict,
                "shown": entry(conflict["key"], conflict.pop("value"), self.secret_keys, False),
            }

        def build() -> HTMLResponse:
            return self.render(
                "device.html",
                outcome.pop("status", 200),
                notice=notice,
                session=session,
                device=device,
                buckets=[bucket_view(*view) for view in views],
                folded=folded,
                **outcome,
            )

        return await run_sync(build)

    async def value(self, request: Request, session: dict[str, str]) -> Response:
        """One value whole (``?bucket=NAME&key=KEY``), masked unless ``&reveal=1``."""
        device = check_id(request.path_params["device"])
        query = request.query_params
        job, key = query.get("bucket") or None, query.get("key", "")
        data = (await self.store.get(device, job=job)).data
        if key not in data:
            return self.render("error.html", 404, session=session, message="No such key.")
        reveal = query.get("reveal") == "1"
        shown = data[key] if reveal else mask_secrets({key: data[key]}, self.secret_keys)[key]
        return await run_sync(
            lambda: self.render(
                "value.html", session=session, device=device, job=job, key=key, text=pretty(shown)
            )
        )

    async def change(self, request: Request, session: dict[str, str]) -> Response:
        """Set or delete one key, conditional on the version the operator saw."""
        device = check_id(request.path_params["device"])
        form: FormData = request.state.form
        job = str(form.get("job", "")) or None
        key, action = str(form.get("key", "")), str(form.get("action", "set"))
        edit = {"job": job or "", "key": key, "value": str(form.get("value", ""))}
        try:
            version = int(str(form.get("version", "")))
        except ValueError:
            return await self.device(request, session, status=400, error="Missing version.")
        if not key:
            return await self.device(
                request, session, status=422, edit=edit, error="Give the key a name."
            )
        try:
            if action == "delete":
                await self.store.delete(
                    device, [key], job=job, expected_version=version, actor=actor(session)
                )
                done = {"deleted": key}
            else:
                value = parse_value(form)
                seconds = str(form.get("expire_in", "")).strip()
                if seconds and not (seconds.isascii() and seconds.isdigit()):
                    raise ValueError("Expires in must be a whole number of seconds, or empty.")
                await self.store.merge(
                    device,
                    {key: value},
                    job=job,
                    expected_version=version,
                    actor=actor(session),
                    expire_in={key: int(seconds)} if seconds else None,
                )
                done = {"saved": key}
        except ConflictError as exc:
            newer = await self.store.get(device, job=job)
            conflict = {
                "job": job or "",
                "key": key,
                "seen": version,
                "version": exc.actual,
                "present": key in newer.data,
                "value": newer.data.get(key),
            }
            return await self.device(request, session, status=409, edit=edit, conflict=conflict)
        except StoreUnavailableError:
            raise  # the page says so, without the store's details
        except (DeviceBucketError, ValueError) as exc:  # schema violations included
            return await self.device(request, session, status=422, edit=edit, error=str(exc))
        return back_to_bucket(device, job, done)

    # --- jobs ----------------------------------------------------------------------------

    async def jobs(self, request: Request, session: dict[str, str]) -> Response:
        summaries = await self.store.job_summaries()  # one query, however many jobs
        jobs = [job for job, _ in summaries]
        counts = {job.job: devices for job, devices in summaries}
        return self.render("jobs.html", session=session, jobs=jobs, counts=counts)

    async def job(self, request: Request, session: dict[str, str]) -> Response:
        name = check_id(request.path_params["job"], "job id")
        job = await self.store.get_job(name)
        number = page_number(request.query_params.get("page"))
        found = await self.store.device_page(
            job=name, offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        if job is None and not found.total:
            return self.render("error.html", 404, session=session, message="No such job.")
        return self.render(
            "job.html",
            session=session,
            name=name,
            job=job,
            found=found,
            number=number,
            pages=max(1, math.ceil(found.total / PAGE_SIZE)),
        )

    def routes(self) -> list[BaseRoute]:
        """The dashboard's pages, and for browsers: ``/`` leads to them, ``/favicon.ico``."""

        async def home(request: Request) -> Response:
            return RedirectResponse("/ui/devices", 303)

        async def root(request: Request) -> Response:
            return RedirectResponse("/ui", 302)

        async def favicon(request: Request) -> Response:
            return Response(_FAVICON, media_type="image/svg+xml", headers=_CACHED)

        return [
            Route("/", root),
            Route("/favicon.ico", favicon),
            Route("/ui", home),
            Route("/ui/", home),
            Route("/ui/login", self.login_form, methods=["GET"]),
            Route("/ui/login", self.login, methods=["POST"]),
            Route("/ui/logout", self.page(self.logout), methods=["POST"]),
            Route("/ui/devices", self.page(self.devices)),
            Route("/ui/devices/{device}", self.page(self.device)),
            Route("/ui/devices/{device}/keys", self.page(self.change), methods=["POST"]),
            Route("/ui/devices/{device}/value", self.page(self.value)),
            Route("/ui/devices/{device}/history", self.page(self.changes.history)),
            Route("/ui/devices/{device}/diff", self.page(self.changes.diff)),
            Route(
                "/ui/devices/{device}/restore", self.page(self.changes.restore), methods=["POST"]
            ),
            Route("/ui/devices/{device}/changes", self.page(self.live.device_changes)),
            Route("/ui/activity", self.page(self.live.activity)),
            Route("/ui/activity/changes", self.page(self.live.fleet_changes)),
            Route("/ui/jobs", self.page(self.jobs)),
            Route("/ui/jobs/{job}", self.page(self.job)),
            Mount(
                "/ui/static", StaticFiles(packages=[("devicebucket.web", "static")]), name="static"
            ),
        ]
