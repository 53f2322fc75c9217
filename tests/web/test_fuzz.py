"""Malformed input, over 20,000 times, against a real server (hypothesis).

Values, keys, device and job ids, bodies and headers are thrown at the bucket routes, hostile
JSON texts (lone surrogates as escapes, NUL, BOMs, duplicate keys, ``1e400``, a 5,000-digit
integer, deep arrays) at the write routes, and oversized or odd forms at every dashboard
form. No answer may be a server error or carry a traceback, every refusal of the API is a
JSON error, and a refused write leaves its bucket exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicebucket import SQLiteStore
from devicebucket.web.app import create_app

from ..servers import ADMIN, ThreadedServer

pytestmark = pytest.mark.slow

EXAMPLES = 2_000  # per test: 16,000 requests in the first four (1, 2, 2 and 3 per example),
# 4,000 hostile bodies, 2,000 dashboard forms and 2,000 dashboard page views: 24,000 in all
COUNTS: dict[str, int] = {}

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

# Text as JavaScript strings can hold it: lone surrogates included (hypothesis leaves
# category Cs out by default), and the characters that break careless code.
any_text = st.text(st.characters(exclude_categories=()), max_size=20) | st.sampled_from(
    ["\ud800", "a\udfffb", "\ud83d", "\x00", "\ufeff", "\u2028", "\U0010ffff"]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner),
    max_leaves=12,
)
ids = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", ".", "..", "a/b", "a b", "é", "x" * 257, "pixel-1", "%2F", "\x00"]),
)
keys = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),
    st.sampled_from(["", " ", "a.b", "$", "k" * 2000, "\ud800", "\x00"]),
)
# JSON texts no well-behaved encoder writes, each a whole request body.
HOSTILE_BODIES = [
    '{"a": "\\ud800"}',
    '{"\\udfff": 1}',
    '{"a": {"b": ["ok", "\\ud83d"]}}',
    '{"a": "\\u0000"}',
    "\ufeff" + '{"a": 1}',
    '{"a": 1, "a": 2}',
    '{"a": 1e400}',
    '{"a": -1e400}',
    '{"a": ' + "9" * 5000 + "}",
    '{"a": ' + "[" * 5000 + "]" * 5000 + "}",
    "[" * 100_000,
    '{"a": NaN}',
    '{"a": "' + "x" * 2_000_000 + '"}',
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = SQLiteStore(Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db")
    schema = {"type": "object", "properties": {"step": {"type": "integer"}}}
    # Thousands of bad bearer tokens on purpose: the per-address limit would soon answer
    # every request 429 and hide the rest (it has tests of its own in test_auth.py).
    app = create_app(store, admin_token=ADMIN, auth_failures_per_minute=0)
    with ThreadedServer(app) as server:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            assert client.put("/v1/jobs/signup", json={"bucket_schema": schema}).status_code == 200
            assert client.patch("/v1/devices/pixel-1/bucket", json={"a": 1}).status_code == 200
            yield client
    print(f"\nfuzzed requests: {COUNTS} = {sum(COUNTS.values()):,} in all")


def as_json(value: object) -> bytes:
    """JSON as a careless client writes it: NaN and Infinity included."""
    return json.dumps(value, allow_nan=True).encode()


def snapshot(client: httpx.Client, path: str) -> tuple[int, str] | None:
    """The bucket at ``path`` (status and body) when the path names one, else None."""
    response = client.get(path)
    return (response.status_code, response.text) if response.status_code == 200 else None


def send(client: httpx.Client, kind: str, method: str, path: str, **kwargs: Any) -> None:
    COUNTS[kind] = COUNTS.get(kind, 0) + 1
    bucket = path.split("/keys/")[0].removesuffix("/delete-keys").removesuffix("/restore")
    before = snapshot(client, bucket) if "/bucket" in bucket else None
    response = client.request(method, path, **kwargs)
    assert response.status_code < 500, (method, path, response.status_code, response.text)
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body["error"], str)
        assert body["error"]
        if before is not None:
            assert snapshot(client, bucket) == before, "a refused write changed the bucket"


@FUZZ
@given(value=json_values, key=keys, raw=st.binary(max_size=200), as_raw=st.booleans())
def test_malformed_values_and_bodies(
    live: httpx.Client, value: object, key: str, raw: bytes, as_raw: bool
) -> None:
    path = "/v1/devices/pixel-1/jobs/signup/bucket"
    if as_raw:
        send(live, "bodies", "PATCH", path, content=raw)
    else:
        send(live, "values", "PATCH", path, content=as_json({key: value, "step": value}))


@FUZZ
@given(key=keys, value=json_values)
def test_malformed_keys(live: httpx.Client, key: str, value: object) -> None:
    base = "/v1/devices/pixel-1/bucket"
    send(live, "keys", "DELETE", f"{base}/keys/{quote(key, safe='', errors='surrogatepass')}")
    send(live, "keys", "POST", f"{base}/delete-keys", content=as_json({"keys": [key, value]}))


@FUZZ
@given(device=ids, job=ids, value=json_values)
def test_malformed_ids(live: httpx.Client, device: str, job: str, value: object) -> None:
    path = f"/v1/devices/{quote(device, safe='')}/jobs/{quote(job, safe='')}/bucket"
    send(live, "ids", "PATCH", path, content=as_json({"v": value}))
    send(live, "ids", "GET", f"/v1/devices/{quote(device, safe='')}/bucket/history")


printable = st.characters(min_codepoint=32, max_codepoint=126)


@FUZZ
@given(
    if_match=st.text(alphabet=printable, max_size=30).map(str.strip),  # as HTTP allows
    authorization=st.text(alphabet=printable, max_size=80).map(str.strip),
    version=json_values,
)
def test_malformed_headers(
    live: httpx.Client, if_match: str, authorization: str, version: object
) -> None:
    base = "/v1/devices/pixel-1/bucket"
    headers = {"If-Match": if_match}
    send(live, "headers", "PATCH", base, json={"b": 1}, headers=headers)
    restore = f"{base}/restore"
    send(live, "headers", "POST", restore, content=as_json({"version": version}), headers=headers)
    send(live, "headers", "GET", base, headers={"Authorization": authorization})


@FUZZ
@given(body=st.sampled_from(HOSTILE_BODIES), suffix=any_text, job=st.booleans())
def test_hostile_json_texts(live: httpx.Client, body: str, suffix: str, job: bool) -> None:
    path = "/v1/devices/pixel-1/jobs/signup/bucket" if job else "/v1/devices/pixel-1/bucket"
    text = body.replace('"a"', json.dumps(f"a{suffix}"), 1)
    raw = text.encode("utf-8", "surrogatepass")
    send(live, "hostile bodies", "PATCH", path, content=raw)
    send(live, "hostile bodies", "POST", f"{path}/delete-keys", content=raw)


DASHBOARD_FORMS = [
    "/ui/login",
    "/ui/logout",
    "/ui/devices/pixel-1/keys",
    "/ui/devices/pixel-1/restore",
]


@FUZZ
@given(
    path=st.sampled_from(DASHBOARD_FORMS),
    kind=st.sampled_from(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "text/plain",
            "application/x-www-form-urlencoded; charset=utf-16",
        ]
    ),
    fields=st.dictionaries(any_text, any_text, max_size=30),
    size=st.sampled_from([0, 100, 5_000, 4 * 1024 * 1024]),
)
def test_dashboard_forms(
    dashboard: httpx.Client, path: str, kind: str, fields: dict[str, str], size: int
) -> None:
    COUNTS["dashboard forms"] = COUNTS.get("dashboard forms", 0) + 1
    body = "&".join(
        f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}"
        for k, v in fields.items()
    ).encode()
    body += b"&pad=" + b"x" * size
    before = dashboard.get("/v1/devices/pixel-1/bucket").text
    response = dashboard.post(path, content=body, headers={"Content-Type": kind})
    assert response.status_code < 500, (path, kind, response.status_code)
    assert "Traceback" not in response.text
    if size > 5_000 or not kind.startswith("application/x-www-form-urlencoded"):
        assert response.status_code in (403, 413, 415), (path, kind, size, response.status_code)
    assert dashboard.get("/v1/devices/pixel-1/bucket").text == before


@pytest.fixture(scope="module")
def dashboard(live: httpx.Client) -> Iterator[httpx.Client]:
    """A client signed in to the dashboard of the same server (no CSRF token: every form it
    sends is refused, which is the point)."""
    with httpx.Client(base_url=live.base_url, headers=live.headers, timeout=30) as client:
        signed_in = client.post("/ui/login", data={"token": ADMIN})
        assert signed_in.status_code == 303
        yield client


@FUZZ
@given(
    page=st.sampled_from(["/ui/devices/pixel-1", "/ui/devices/pixel-1/value"]),
    params=st.dictionaries(
        st.sampled_from(["bucket", "key", "page", "reveal", "saved"]) | any_text,
        any_text | st.integers(-(10**30), 10**30).map(str),
        max_size=4,
    ),
)
def test_dashboard_pages(dashboard: httpx.Client, page: str, params: dict[str, str]) -> None:
    COUNTS["dashboard pages"] = COUNTS.get("dashboard pages", 0) + 1
    query = "&".join(
        f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}"
        for k, v in params.items()
    )
    before = dashboard.get("/v1/devices/pixel-1/bucket").text
    response = dashboard.get(f"{page}?{query}")
    assert response.status_code in (200, 400, 404), (page, query, response.status_code)
    assert "Traceback" not in response.text
    assert dashboard.get("/v1/devices/pixel-1/bucket").text == before
