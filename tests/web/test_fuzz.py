"""Malformed input, 10,000 times over, against a real server (hypothesis).

Values, keys, device and job ids, bodies and headers are thrown at the bucket routes. No
answer may be a server error or carry a traceback, every refusal is a JSON error, and a
refused write leaves its bucket exactly as it was.
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

EXAMPLES = 1_500  # per test: 12,000 requests in all (1, 2, 2 and 3 per example)
COUNTS: dict[str, int] = {}

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ids = st.one_of(
    st.text(max_size=300),
    st.sampled_from(["", ".", "..", "a/b", "a b", "é", "x" * 257, "pixel-1", "%2F", "\x00"]),
)
keys = st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "a.b", "$", "k" * 2000]))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = SQLiteStore(Path(tmp_path_factory.mktemp("fuzz")) / "fuzz.db")
    schema = {"type": "object", "properties": {"step": {"type": "integer"}}}
    with ThreadedServer(create_app(store, admin_token=ADMIN)) as server:
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
    send(live, "keys", "DELETE", f"{base}/keys/{quote(key, safe='')}")
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
