"""``TokenAuth`` is a Starlette authentication backend: any Starlette app can mount it."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from devicebucket import SQLiteStore
from devicebucket.web.auth import TokenAuth

from ..servers import ADMIN, ThreadedServer


@requires("admin")
async def admin_only(request: Request) -> JSONResponse:
    return JSONResponse({"who": request.user.display_name})


async def test_token_auth_as_starlette_middleware(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "auth.db")
    _, device_secret = await store.create_token("pixel-1")
    app = Starlette(
        routes=[Route("/admin", admin_only)],
        middleware=[Middleware(AuthenticationMiddleware, backend=TokenAuth(store, ADMIN))],
    )
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            admin = await client.get("/admin", headers={"Authorization": f"Bearer {ADMIN}"})
            device = await client.get(
                "/admin", headers={"Authorization": f"Bearer {device_secret}"}
            )
            bad = await client.get("/admin", headers={"Authorization": "Bearer nope"})
            none = await client.get("/admin")
    assert admin.status_code == 200
    assert admin.json() == {"who": "admin token env"}
    assert device.status_code == 403  # a device token lacks the "admin" scope
    assert bad.status_code == 400  # AuthenticationError: the middleware's default answer
    assert none.status_code == 403
    await store.close()
