"""The HTTP API against a real server: statuses, access control, ETags, metrics."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from devicebucket import SQLiteStore
from devicebucket.core.limits import Limits
from devicebucket.web.app import create_app

from ..servers import ADMIN, ThreadedServer

OWN, OTHER = "pixel-1", "pixel-2"


class Api:
    """A running server, its store, and tokens for the access matrix."""

    def __init__(self, server: ThreadedServer, store: SQLiteStore) -> None:
        self.server = server
        self.url = server.url
        self.store = store
        self.own = self.issue(OWN)
        self.other = self.issue(OTHER)
        self.call(
            "PUT",
            "/v1/jobs/signup",
            ADMIN,
            {"bucket_schema": {"properties": {"n": {"type": "integer"}}}},
        )

    def issue(self, device: str) -> str:
        response = self.call("POST", f"/v1/devices/{device}/tokens", ADMIN)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return httpx.request(
            method,
            self.url + path,
            json=body if content is None and body is not None else None,
            content=content,
            headers=all_headers,
            timeout=30,
        )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    store = SQLiteStore(tmp_path_factory.mktemp("server") / "server.db")
    with ThreadedServer(create_app(store, admin_token=ADMIN)) as server:
        yield Api(server, store)


DEVICE_ROUTES = [
    ("GET", "/v1/devices/{d}/bucket", None),
    ("PATCH", "/v1/devices/{d}/bucket", {"a": 1}),
    ("DELETE", "/v1/devices/{d}/bucket/keys/a", None),
    ("POST", "/v1/devices/{d}/bucket/delete-keys", {"keys": ["a"]}),
    ("DELETE", "/v1/devices/{d}/bucket", None),
    ("GET", "/v1/devices/{d}/jobs/signup/bucket", None),
    ("PATCH", "/v1/devices/{d}/jobs/signup/bucket", {"n": 1}),
    ("DELETE", "/v1/devices/{d}/jobs/signup/bucket/keys/n", None),
    ("POST", "/v1/devices/{d}/jobs/signup/bucket/delete-keys", {"keys": ["n"]}),
    ("DELETE", "/v1/devices/{d}/jobs/signup/bucket", None),
]
ADMIN_ROUTES = [
    ("GET", "/v1/devices", None, 200),
    ("DELETE", "/v1/devices/retired-1", None, 200),
    ("POST", "/v1/devices/{d}/tokens", None, 201),
    ("GET", "/v1/jobs", None, 200),
    ("PUT", "/v1/jobs/other-job", {"automation": "a.py"}, 200),
    ("GET", "/v1/tokens", None, 200),
    ("POST", "/v1/tokens", {"device": "x"}, 201),
    ("DELETE", "/v1/tokens/{token}", None, 204),
    ("GET", "/v1/export", None, 200),
    ("POST", "/v1/import", None, 200),
    ("GET", "/v1/devices/{d}/bucket/history", None, 200),
    ("GET", "/v1/devices/{d}/bucket/history/0", None, 200),
    ("POST", "/v1/devices/{d}/bucket/restore", {"version": 0}, 200),
    ("GET", "/v1/devices/{d}/jobs/signup/bucket/history", None, 200),
]
ANY_TOKEN_ROUTES = [("GET", "/v1/jobs/signup", None), ("GET", "/v1/whoami", None)]
PUBLIC_ROUTES = ["/healthz", "/metrics", "/openapi.json", "/docs"]
WHO = ["none", "bad", "own", "other", "admin"]


def token_for(api: Api, who: str) -> str | None:
    return {
        "none": None,
        "bad": "dbk_000000000000_" + "x" * 43,
        "own": api.own,
        "other": api.other,
        "admin": ADMIN,
    }[who]


def request(api: Api, method: str, template: str, body: Any, who: str) -> httpx.Response:
    path = template.replace("{d}", OWN)
    if "{token}" in path:  # something to revoke
        victim = api.call("POST", "/v1/tokens", ADMIN, {"device": "victim"}).json()["id"]
        path = path.replace("{token}", victim)
    if path == "/v1/import":
        return api.call(
            method, path, token_for(api, who), content=b'{"devicebucket":"export","format":1}\n'
        )
    return api.call(method, path, token_for(api, who), body)


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("method", "template", "body"), DEVICE_ROUTES)
def test_access_to_device_routes(api: Api, method: str, template: str, body: Any, who: str) -> None:
    expected = {"none": 401, "bad": 401, "own": 200, "other": 403, "admin": 200}[who]
    response = request(api, method, template, body, who)
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.json()["code"] in ("unauthorized", "forbidden")


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("method", "template", "body", "ok"), ADMIN_ROUTES)
def test_access_to_admin_routes(
    api: Api, method: str, template: str, body: Any, ok: int, who: str
) -> None:
    expected = {"none": 401, "bad": 401, "own": 403, "other": 403, "admin": ok}[who]
    assert request(api, method, template, body, who).status_code == expected


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize(("method", "template", "body"), ANY_TOKEN_ROUTES)
def test_access_to_routes_for_any_token(
    api: Api, method: str, template: str, body: Any, who: str
) -> None:
    expected = {"none": 401, "bad": 401, "own": 200, "other": 200, "admin": 200}[who]
    assert request(api, method, template, body, who).status_code == expected


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("path", PUBLIC_ROUTES)
def test_public_routes(api: Api, path: str, who: str) -> None:
    assert api.call("GET", path, token_for(api, who)).status_code == 200


def test_whoami_names_the_token(api: Api) -> None:
    body = api.call("GET", "/v1/whoami", api.own).json()
    assert body["device"] == OWN
    assert body["admin"] is False
    assert "token" not in body


def test_etag_and_conditional_writes(api: Api) -> None:
    path = "/v1/devices/etag-dev/bucket"
    first = api.call("PATCH", path, ADMIN, {"a": 1, "b": 2})
    assert first.headers["etag"] == '"1"'
    assert api.call("GET", path, ADMIN).headers["etag"] == '"1"'
    head = api.call("HEAD", path, ADMIN)
    assert head.status_code == 200
    assert head.headers["etag"] == '"1"'
    stale = api.call("PATCH", path, ADMIN, {"a": 9}, headers={"If-Match": '"0"'})
    assert stale.status_code == 412
    assert stale.json() == {
        "error": "version conflict: expected version 0, the bucket is at version 1",
        "code": "version_conflict",
        "version": 1,
    }
    assert (
        api.call("DELETE", f"{path}/keys/a", ADMIN, headers={"If-Match": '"0"'}).status_code == 412
    )
    assert api.call("DELETE", path, ADMIN, headers={"If-Match": '"7"'}).status_code == 412
    ok = api.call("DELETE", f"{path}/keys/a", ADMIN, headers={"If-Match": '"1"'})
    assert ok.status_code == 200
    assert ok.json() == {"b": 2}
    assert ok.headers["etag"] == '"2"'
    assert (
        api.call("PATCH", path, ADMIN, {"c": 3}, headers={"If-Match": "*"}).headers["etag"] == '"3"'
    )
    bad = api.call("PATCH", path, ADMIN, {"c": 4}, headers={"If-Match": "yesterday"})
    assert bad.status_code == 400
    assert api.call("GET", path, ADMIN).json() == {"b": 2, "c": 3}


@pytest.mark.parametrize(
    ("method", "path", "content", "status", "message"),
    [
        ("PATCH", "/v1/devices/err/bucket", b"{not json", 400, "request body is not valid JSON"),
        ("PATCH", "/v1/devices/err/bucket", b"[1, 2]", 400, "request body must be a JSON object"),
        ("PATCH", "/v1/devices/err/bucket", b'{"x": NaN}', 400, "request body is not valid JSON"),
        ("PATCH", "/v1/devices/err/bucket", b"\xff\xfe", 400, "request body is not valid JSON"),
        (
            "PATCH",
            "/v1/devices/err/bucket",
            json.dumps({"k" * 1025: 1}).encode(),
            422,
            "over the limit of 1024",
        ),
        ("PATCH", "/v1/devices/bad!id/bucket", b"{}", 422, "device id must be 1-256 characters"),
        (
            "PATCH",
            "/v1/devices/err/jobs/signup/bucket",
            b'{"n": "secret-text"}',
            422,
            "at $.n: rule 'type' failed",
        ),
        ("POST", "/v1/devices/err/bucket/delete-keys", b'{"keys": "a"}', 422, "with a list of str"),
        (
            "POST",
            "/v1/devices/err/bucket/delete-keys",
            b'{"keys": [1]}',
            422,
            "keys to delete must be str",
        ),
        (
            "PUT",
            "/v1/jobs/bad-schema",
            b'{"bucket_schema": {"type": 7}}',
            422,
            "not a valid JSON Schema",
        ),
        (
            "PUT",
            "/v1/jobs/signup",
            b'{"bucket_schema": {"type": "array"}}',
            409,
            "different bucket schema",
        ),
        ("GET", "/v1/jobs/no-such-job", None, 404, "no such job"),
        ("DELETE", "/v1/tokens/0123456789ab", None, 404, "no token with id"),
        ("GET", "/v1/devices?limit=0", None, 422, "limit must be an integer from 1 to 1000"),
        ("GET", "/v1/nothing-here", None, 404, "no such route"),
        (
            "POST",
            "/v1/import",
            b'{"devicebucket":"export","format":1}\n{"type":"bucket"}\n',
            422,
            "line 2: field 'device'",
        ),
    ],
)
def test_errors_have_the_right_status_and_a_message(
    api: Api, method: str, path: str, content: bytes | None, status: int, message: str
) -> None:
    before = api.call("GET", "/v1/devices/err/bucket", ADMIN).json()
    response = api.call(
        method, path, ADMIN, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert "secret-text" not in response.text
    assert api.call("GET", "/v1/devices/err/bucket", ADMIN).json() == before


def test_schema_violation_names_path_and_rule(api: Api) -> None:
    response = api.call("PATCH", "/v1/devices/err/jobs/signup/bucket", ADMIN, {"n": "x"})
    assert response.status_code == 422
    assert response.json()["path"] == "$.n"
    assert response.json()["rule"] == "type"
    assert response.json()["code"] == "schema_violation"


def test_body_over_the_limit_is_413(api: Api) -> None:
    huge = b'{"a": "' + b"x" * (1024 * 1024 + 70 * 1024) + b'"}'
    response = api.call("PATCH", "/v1/devices/big/bucket", ADMIN, content=huge)
    assert response.status_code == 413
    assert "over the limit" in response.json()["error"]
    assert api.call("GET", "/v1/devices/big/bucket", ADMIN).json() == {}


def _chunked(*parts: bytes) -> Iterator[bytes]:
    """A body httpx sends chunked (no Content-Length): the server gets it piece by piece."""
    yield from parts


def test_a_body_sent_in_chunks_is_read_whole(api: Api) -> None:
    parts = (b'{"chunked": "', b"a" * 70_000, b"b" * 70_000, b'", "n": 2}')
    response = httpx.patch(
        api.url + "/v1/devices/chunks/bucket",
        content=_chunked(*parts),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"chunked": "a" * 70_000 + "b" * 70_000, "n": 2}
    assert "content-length" not in response.request.headers  # it did go in chunks


def test_a_chunked_body_over_the_limit_is_413_and_stores_nothing(api: Api) -> None:
    parts = [b'{"a": "'] + [b"x" * 65_536] * 18 + [b'"}']  # ~1.1 MB, past the 1 MB bucket
    response = httpx.patch(
        api.url + "/v1/devices/big-chunks/bucket",
        content=_chunked(*parts),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert "over the limit" in response.json()["error"]
    assert api.call("GET", "/v1/devices/big-chunks/bucket", ADMIN).json() == {}


def test_a_bucket_answer_has_the_headers_of_starlettes_response(api: Api) -> None:
    api.call("PATCH", "/v1/devices/headers/bucket", ADMIN, {"n": 1})
    response = api.call("GET", "/v1/devices/headers/bucket", ADMIN)
    assert response.headers["etag"] == '"1"'
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.json() == {"n": 1}


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.call("PUT", "/v1/devices/x/bucket", ADMIN)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PATCH", "DELETE"}
    assert response.json()["code"] == "http_error"


def test_device_list_pages_and_device_delete(api: Api) -> None:
    for name in ("page-a", "page-b", "page-c"):
        api.call("PATCH", f"/v1/devices/{name}/bucket", ADMIN, {"k": 1})
    api.call("PATCH", "/v1/devices/page-b/jobs/signup/bucket", ADMIN, {"n": 1})
    first = api.call("GET", "/v1/devices?after=page-&limit=2", ADMIN).json()
    assert [d["device"] for d in first["devices"]] == ["page-a", "page-b"]
    assert first["devices"][1]["jobs"] == ["signup"]
    assert first["next"] == "page-b"
    rest = api.call("GET", f"/v1/devices?after={first['next']}&limit=2", ADMIN).json()
    assert rest["devices"][0]["device"] == "page-c"
    assert api.call("DELETE", "/v1/devices/page-b", ADMIN).json() == {
        "device": "page-b",
        "deleted_buckets": 2,
    }
    assert api.call("GET", "/v1/devices/page-b/jobs/signup/bucket", ADMIN).json() == {}


def test_a_revoked_token_stops_working(api: Api) -> None:
    created = api.call("POST", "/v1/devices/rev-1/tokens", ADMIN).json()
    assert api.call("GET", "/v1/devices/rev-1/bucket", created["token"]).status_code == 200
    assert api.call("DELETE", f"/v1/tokens/{created['id']}", ADMIN).status_code == 204
    assert api.call("GET", "/v1/devices/rev-1/bucket", created["token"]).status_code == 401
    listed = api.call("GET", "/v1/tokens", ADMIN).json()["tokens"]
    assert created["id"] not in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)


def test_metrics_count_by_route_template_without_ids_or_values(api: Api) -> None:
    api.call("PATCH", "/v1/devices/metrics-device/bucket", ADMIN, {"password": "metric-secret"})
    api.call("GET", "/v1/devices/metrics-device/bucket", "bad")
    text = api.call("GET", "/metrics").text
    assert (
        'devicebucket_requests_total{method="PATCH",route="/v1/devices/{device}/bucket",status="200"}'
        in text
    )
    assert 'route="/v1/devices/{device}/bucket",status="401"' in text
    assert "devicebucket_request_duration_seconds_bucket" in text
    assert "devicebucket_store_errors_total" in text
    assert "metrics-device" not in text
    assert "metric-secret" not in text


def test_openapi_document_lists_every_route(api: Api) -> None:
    document = api.call("GET", "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    for route in api.server.server.config.app.routes:  # type: ignore[union-attr]
        if not isinstance(route, Route):  # mounted static files (dashboard, Swagger UI)
            continue
        path = route.path.replace("{key:path}", "{key}").replace("{version:int}", "{version}")
        if not (path.startswith("/ui") or path in ("/", "/favicon.ico")):  # the dashboard's
            assert path in document["paths"], path
    assert "swagger-ui" in api.call("GET", "/docs").text


def test_a_broken_store_gives_503_and_health_says_so(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"not a database " * 200)
    with ThreadedServer(create_app(SQLiteStore(path), admin_token=ADMIN)) as server:
        response = httpx.get(
            f"{server.url}/v1/devices/d/bucket", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert response.status_code == 503
        assert response.json()["code"] == "store_unavailable"
        assert "not a database" in response.json()["error"]
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'devicebucket_store_errors_total{route="/v1/devices/{device}/bucket"} 1.0' in metrics


def test_concurrent_patches_through_one_server_lose_nothing(api: Api) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(
            base_url=api.url, headers={"Authorization": f"Bearer {ADMIN}"}
        ) as client:
            responses = await asyncio.gather(
                *(client.patch("/v1/devices/many/bucket", json={f"k{i}": i}) for i in range(100))
            )
            assert {r.status_code for r in responses} == {200}
            assert len((await client.get("/v1/devices/many/bucket")).json()) == 100

    asyncio.run(run())


def test_history_names_the_token_and_the_automation_never_the_secret(api: Api) -> None:
    headers = {"X-Devicebucket-Actor": "automation login.py"}
    written = api.call("PATCH", f"/v1/devices/{OWN}/bucket", api.own, {"k": 1}, headers=headers)
    assert written.status_code == 200
    changes = api.call("GET", f"/v1/devices/{OWN}/bucket/history", ADMIN).json()["changes"]
    actor = changes[0]["actor"]
    assert actor.startswith("device token ")
    assert actor.endswith(" via automation login.py")
    assert api.own not in actor
    version = changes[0]["version"]
    kept = api.call("GET", f"/v1/devices/{OWN}/bucket/history/{version}", ADMIN)
    assert kept.headers["etag"] == f'"{version}"'
    assert kept.json()["k"] == 1
    api.call("PATCH", f"/v1/devices/{OWN}/bucket", ADMIN, {"password": "pw-in-history"})
    latest = f"/v1/devices/{OWN}/bucket/history/{version + 1}"
    assert api.call("GET", latest, ADMIN).json()["password"] == "••••••••"
    assert api.call("GET", f"{latest}?reveal=true", ADMIN).json()["password"] == "pw-in-history"
    assert api.call("GET", f"{latest}?reveal=yes", ADMIN).status_code == 400
    api.call("PATCH", f"/v1/devices/{OWN}/bucket", ADMIN, {"cfg": {"sessionCookie": "c00kie"}})
    deep = api.call("GET", f"/v1/devices/{OWN}/bucket/history/{version + 2}", ADMIN)
    assert deep.json()["cfg"] == {"sessionCookie": "••••••••"}
    version += 1
    missing = api.call("GET", f"/v1/devices/{OWN}/bucket/history/{version + 5}", ADMIN)
    assert missing.status_code == 404
    stale = api.call(
        "POST",
        f"/v1/devices/{OWN}/bucket/restore",
        ADMIN,
        {"version": 0},
        headers={"If-Match": f'"{version - 1}"'},
    )
    assert stale.status_code == 412
    bad = api.call("POST", f"/v1/devices/{OWN}/bucket/restore", ADMIN, {"version": "1"})
    assert bad.status_code == 422


def test_text_that_is_not_unicode_is_a_422_naming_the_path(api: Api) -> None:
    bucket = "/v1/devices/pixel-a/bucket"
    api.call("PATCH", bucket, ADMIN, {"cfg": {"name": "ok"}})
    before = api.call("GET", bucket, ADMIN)
    for body in (b'{"cfg": {"name": "\\ud800"}}', b'{"\\udfff": 1}'):
        response = api.call(
            "PATCH", bucket, ADMIN, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_value"
        assert "not valid Unicode" in response.json()["error"]
    assert (
        "$.cfg.name"
        in api.call("PATCH", bucket, ADMIN, content=b'{"cfg": {"name": "\\ud800"}}').json()["error"]
    )
    after = api.call("GET", bucket, ADMIN)
    assert (after.json(), after.headers["etag"]) == (before.json(), before.headers["etag"])


_IN_MESSAGE = "-".join(("hunter2", "in", "a", "message"))  # not in this file's source text


class _FailingStore(SQLiteStore):
    """A store with a fault no rule foresaw: every read raises a plain RuntimeError."""

    async def _get_json(self, device: str, job: str | None) -> tuple[str, int]:
        raise RuntimeError(f"boom: {_IN_MESSAGE}")


def test_an_unexpected_failure_is_a_counted_and_logged_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _FailingStore(tmp_path / "failing.db")
    with ThreadedServer(create_app(store, admin_token=ADMIN)) as server:
        response = httpx.get(
            f"{server.url}/v1/devices/d/bucket", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        metrics = httpx.get(f"{server.url}/metrics").text
    assert response.status_code == 500
    assert response.json() == {"error": "the server failed; see its log", "code": "internal"}
    assert (
        'devicebucket_requests_total{method="GET",route="/v1/devices/{device}/bucket",'
        'status="500"} 1.0' in metrics
    )
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged
    assert "hunter2" not in logged


def test_a_path_segment_of_dots_is_refused(api: Api) -> None:
    for path in ("/v1/devices/%2E%2E/bucket", "/v1/devices/pixel/jobs/%2E/bucket"):
        response = api.call("PATCH", path, ADMIN, {"a": 1})
        assert response.status_code == 422, path
        assert "not only dots" in response.json()["error"]


def test_no_redirect_takes_its_target_from_the_host_header(api: Api) -> None:
    for path in ("/v1/devices/", "/ui/devices/", "/healthz/"):
        response = httpx.get(api.url + path, headers={"Host": "evil.example"})
        assert response.status_code == 404, path
        assert "evil.example" not in response.headers.get("location", "")


def test_a_device_token_writes_only_registered_jobs_buckets(api: Api) -> None:
    path = f"/v1/devices/{OWN}/jobs/nobody-registered/bucket"
    refused = api.call("PATCH", path, api.own, {"a": 1})
    assert refused.status_code == 403
    assert "devicebucket job register --job nobody-registered" in refused.json()["error"]
    assert api.call("DELETE", path, api.own).status_code == 403
    assert api.call("GET", path, ADMIN).json() == {}  # nothing stored
    # An admin may write it (and so may register it); then the device token may too.
    assert api.call("PATCH", path, ADMIN, {"a": 1}).status_code == 200
    assert api.call("PATCH", path, api.own, {"b": 2}).status_code == 403
    assert api.call("PUT", "/v1/jobs/nobody-registered", ADMIN, {}).status_code == 200
    assert api.call("PATCH", path, api.own, {"b": 2}).json() == {"a": 1, "b": 2}


def test_a_write_past_the_device_quota_is_a_413_naming_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "q.db", limits=Limits(device_quota_bytes=2_000))
    with ThreadedServer(create_app(store, admin_token=ADMIN)) as server:
        response = httpx.patch(
            f"{server.url}/v1/devices/d/bucket",
            json={"big": "x" * 2_000},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
    assert response.status_code == 413
    assert response.json()["code"] == "quota_exceeded"
    assert "DEVICEBUCKET_DEVICE_QUOTA_BYTES" in response.json()["error"]


def test_next_is_null_on_the_last_page(tmp_path: Path) -> None:
    with ThreadedServer(create_app(SQLiteStore(tmp_path / "n.db"), admin_token=ADMIN)) as server:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        for device in ("a", "b"):
            httpx.patch(f"{server.url}/v1/devices/{device}/bucket", json={"k": 1}, headers=auth)

        def page(query: str) -> tuple[list[str], str | None]:
            body = httpx.get(f"{server.url}/v1/devices?{query}", headers=auth).json()
            return [d["device"] for d in body["devices"]], body["next"]

        assert page("limit=1") == (["a"], "a")
        assert page("limit=1&after=a") == (["b"], None)
        assert page("limit=2") == (["a", "b"], None)
        assert page("limit=5") == (["a", "b"], None)


def test_the_root_leads_to_the_dashboard_and_there_is_an_icon(api: Api) -> None:
    root = httpx.get(f"{api.url}/", follow_redirects=False)
    assert root.status_code == 302
    assert root.headers["location"] == "/ui"
    icon = httpx.get(f"{api.url}/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
    page = httpx.get(f"{api.url}/ui/login")
    assert '<link rel="icon" href="/ui/static/favicon.svg"' in page.text
    assert httpx.get(f"{api.url}/ui/static/favicon.svg").status_code == 200


RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_every_time_is_rfc3339_in_utc(api: Api) -> None:
    started = time.time()
    api.call("PATCH", f"/v1/devices/{OWN}/bucket", ADMIN, {"t": 1})
    me = api.call("GET", "/v1/whoami", ADMIN).json()
    job = api.call("GET", "/v1/jobs/signup", ADMIN).json()
    device = api.call("GET", "/v1/devices?limit=1000", ADMIN).json()["devices"][0]
    change = api.call("GET", f"/v1/devices/{OWN}/bucket/history", ADMIN).json()["changes"][0]
    kept = api.call("GET", f"/v1/devices/{OWN}/bucket/history/{change['version']}", ADMIN)
    times = [
        me["created_at"],
        job["created_at"],
        job["updated_at"],
        device["updated_at"],
        change["at"],
        kept.headers["x-devicebucket-version-time"],
    ]
    assert all(RFC3339.fullmatch(t) for t in times), times
    # The environment's admin token was created with the server, not at 1970.
    created = datetime.fromisoformat(me["created_at"]).timestamp()
    assert 0 < started - created < 3600


async def test_every_surface_names_the_writer_with_one_scheme(tmp_path: Path) -> None:
    from devicebucket import Agent, HTTPStore

    local = SQLiteStore(tmp_path / "who.db")
    await local.merge("d", {"by": "library"})
    await Agent(local, "d", "signup", automation="login.py").utils.bucket.set({"n": 1})
    with ThreadedServer(create_app(local, admin_token=ADMIN, close_store=False)) as server:
        remote = HTTPStore(server.url, token=ADMIN)
        await remote.merge("d", {"by": "remote library"})
        await Agent(remote, "d", None, automation="login.py").utils.deviceBucket.set({"n": 2})
        await remote.close()
        auth = {"Authorization": f"Bearer {ADMIN}"}
        async with httpx.AsyncClient() as curl:
            await curl.patch(f"{server.url}/v1/devices/d/bucket", json={"by": "curl"}, headers=auth)
    device = [c.actor for c in reversed(await local.history("d"))]
    job = [c.actor for c in await local.history("d", job="signup")]
    await local.close()
    assert device == [
        "local via library",
        "admin token env via library",
        "admin token env via automation login.py",
        "admin token env via http",
    ]
    assert job == ["local via automation login.py in job signup"]
