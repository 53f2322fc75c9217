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
from devicebucket.core.tokens import Token, hash_token
from devicebucket.web.app import create_app
from devicebucket.web.auth import TokenAuth
from devicebucket.web.ratelimit import FailureLimit

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


def test_failures_are_limited_per_address_in_a_sliding_minute() -> None:
    now = [1000.0]
    limit = FailureLimit(3, addresses=2, clock=lambda: now[0])
    for _ in range(3):
        assert limit.retry_after("a") is None
        limit.failed("a")
    assert limit.retry_after("a") == 60
    assert limit.retry_after("b") is None  # another address is not affected
    now[0] += 59.5
    assert limit.retry_after("a") == 1
    now[0] += 1
    assert limit.retry_after("a") is None  # the oldest failure left the window
    limit.failed("b")
    limit.failed("c")  # a third address: the least recent one ("a") is forgotten
    assert "a" not in limit._failures


async def test_too_many_bad_tokens_from_one_address_get_429(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "limit.db")
    app = create_app(store, admin_token=ADMIN, auth_failures_per_minute=5)
    good = {"Authorization": f"Bearer {ADMIN}"}
    bad = {"Authorization": "Bearer dbk_000000000000_" + "x" * 43}
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            statuses = [(await client.get("/v1/whoami", headers=bad)).status_code for _ in range(5)]
            refused = await client.get("/v1/whoami", headers=good)  # right, but too late
            sign_in = await client.post("/ui/login", data={"token": ADMIN})
        other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=server.url, transport=other) as elsewhere:
            fine = await elsewhere.get("/v1/whoami", headers=good)
    assert statuses == [401] * 5
    assert refused.status_code == 429
    assert refused.json()["code"] == "too_many_failures"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert sign_in.status_code == 429
    assert sign_in.headers["retry-after"]
    assert fine.status_code == 200
    await store.close()


async def test_wrong_sign_ins_count_too(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "signin.db")
    app = create_app(store, admin_token=ADMIN, auth_failures_per_minute=3)
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            wrong = [
                (await client.post("/ui/login", data={"token": "guess"})).status_code
                for _ in range(3)
            ]
            right = await client.post("/ui/login", data={"token": ADMIN})
    assert wrong == [401] * 3
    assert right.status_code == 429
    await store.close()


async def test_the_middleware_path_is_limited_too(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "mw.db")
    auth = TokenAuth(store, ADMIN, FailureLimit(2))
    app = Starlette(
        routes=[Route("/admin", admin_only)],
        middleware=[Middleware(AuthenticationMiddleware, backend=auth)],
    )
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(2):
                wrong = await client.get("/admin", headers={"Authorization": "Bearer nope"})
                assert wrong.text == "the bearer token is not valid or was revoked"
            right = await client.get("/admin", headers={"Authorization": f"Bearer {ADMIN}"})
    assert right.status_code == 400
    assert right.text.startswith("too many failed sign-ins from this address")
    await store.close()


async def test_a_run_token_reaches_only_its_device_and_job(tmp_path: Path) -> None:
    """The token ``devicebucket run`` gives a JavaScript automation: its device's buckets and
    its job's (which it may register), written as the runner's local credential; no more."""
    store = SQLiteStore(tmp_path / "run.db")
    secret = "run-token-secret-of-this-test-only"
    token = Token("run-1", "pixel-1", 0.0, job="signup", run=True)
    app = create_app(store, run_tokens={hash_token(secret): token}, close_store=False)
    headers = {"Authorization": f"Bearer {secret}", "X-Devicebucket-Actor": "automation a.mjs"}
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            allowed = [
                await client.put("/v1/jobs/signup", json={"bucket_schema": {"type": "object"}}),
                await client.patch("/v1/devices/pixel-1/bucket", json={"a": 1}),
                await client.patch("/v1/devices/pixel-1/jobs/signup/bucket", json={"b": 2}),
                await client.get("/v1/devices/pixel-1/jobs/signup/bucket/history"),
                await client.get("/v1/jobs/signup"),
            ]
            refused = [
                await client.get("/v1/devices/pixel-2/bucket"),
                await client.get("/v1/devices/pixel-1/jobs/other/bucket"),
                await client.put("/v1/jobs/other", json={}),
                await client.get("/v1/jobs/other"),
                await client.get("/v1/devices/pixel-1/bucket/history"),
                await client.delete("/v1/devices/pixel-1"),
                await client.get("/v1/devices"),
                await client.get("/v1/tokens"),
                await client.post("/v1/tokens", json={"device": "pixel-1"}),
            ]
            stranger = await client.get(
                "/v1/devices/pixel-1/bucket", headers={"Authorization": "Bearer not-it"}
            )
    assert [r.status_code for r in allowed] == [200] * 5
    assert [r.status_code for r in refused] == [403] * 9
    assert stranger.status_code == 401
    (change,) = await store.history("pixel-1")
    assert change.actor == "local via automation a.mjs"
    assert await store.tokens() == []  # a run token is never stored
    await store.close()


async def test_a_direct_run_s_token_reaches_no_job_bucket(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "run.db")
    secret = "run-token-secret-of-this-test-only"
    token = Token("run-2", "pixel-1", 0.0, run=True)  # a run without --job
    app = create_app(store, run_tokens={hash_token(secret): token}, close_store=False)
    headers = {"Authorization": f"Bearer {secret}"}
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            own = await client.patch("/v1/devices/pixel-1/bucket", json={"a": 1})
            job_bucket = await client.get("/v1/devices/pixel-1/jobs/signup/bucket")
            register = await client.put("/v1/jobs/signup", json={})
    assert own.status_code == 200
    assert (job_bucket.status_code, job_bucket.json()["error"]) == (
        403,
        "this token reaches no job",
    )
    assert register.status_code == 403
    await store.close()
