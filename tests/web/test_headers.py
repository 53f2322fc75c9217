"""Reading a header from the ASGI scope answers what Starlette's ``Headers.get`` answers, and
the bucket response carries the headers Starlette's ``Response`` would."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection
from starlette.responses import Response

from devicebucket.web.headers import header
from devicebucket.web.responses import BucketResponse


def _conn(*headers: tuple[bytes, bytes]) -> HTTPConnection:
    return HTTPConnection({"type": "http", "headers": list(headers)})


@pytest.mark.parametrize(
    "headers",
    [
        (),
        ((b"authorization", b"Bearer a"),),
        ((b"authorization", b"Bearer first"), (b"authorization", b"Bearer second")),
        ((b"if-match", b'"3"'), (b"authorization", b"")),
        ((b"x-devicebucket-actor", "caf\u00e9".encode("latin-1")),),
    ],
)
@pytest.mark.parametrize("name", ["authorization", "if-match", "x-devicebucket-actor"])
def test_header_answers_as_starlettes_headers_get(
    headers: tuple[tuple[bytes, bytes], ...], name: str
) -> None:
    conn = _conn(*headers)
    assert header(conn, name.encode()) == conn.headers.get(name)


def test_the_first_header_of_a_name_counts() -> None:
    conn = _conn((b"authorization", b"Bearer first"), (b"authorization", b"Bearer second"))
    assert header(conn, b"authorization") == "Bearer first"


@pytest.mark.parametrize(("body", "version"), [(b"{}", 0), (b'{"a":"\xc3\xa9"}', 12345678)])
def test_bucket_response_has_starlettes_headers(body: bytes, version: int) -> None:
    expected = Response(body, 200, {"ETag": f'"{version}"'}, media_type="application/json")
    response = BucketResponse(body, version)
    assert response.raw_headers == expected.raw_headers
    assert (response.status_code, response.body, response.background) == (200, body, None)
