"""The answers of the API: JSON bodies, bucket texts with their ETag, and errors."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

from ..core.errors import DeviceBucketError
from ..core.model import Snapshot
from ..core.values import encode
from ..wire.errors import error_answer

__all__ = ["BucketResponse", "HTTPError", "bucket_response", "error_response", "json_response"]


class HTTPError(Exception):
    """An error answered as ``{"error": message, "code": code, ...}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers
        self.extra = extra

    @classmethod
    def of(cls, exc: DeviceBucketError) -> HTTPError:
        """The answer to a store's exception, from the contract's error table."""
        status, body = error_answer(exc)
        message, code = body.pop("error"), body.pop("code")
        return cls(status, code, message, **body)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def error_response(error: HTTPError) -> Response:
    body = {"error": str(error), "code": error.code, **error.extra}
    return json_response(body, error.status, error.headers)


def bucket_response(snapshot: Snapshot) -> Response:
    return bucket_text_response(snapshot.text or encode(snapshot.data), snapshot.version)


def bucket_text_response(text: str, version: int) -> Response:
    return BucketResponse(text.encode(), version)


class BucketResponse(Response):
    """A bucket's JSON and its version as the ETag: the headers ``Response(body, 200,
    {"ETag": ...}, media_type="application/json")`` has, in its order, built directly (the
    API's most frequent answer; Starlette's general ``init_headers`` costs a GET 1 µs)."""

    media_type = "application/json"

    def __init__(self, body: bytes, version: int) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = [
            (b"etag", b'"%d"' % version),
            (b"content-length", b"%d" % len(body)),
            (b"content-type", b"application/json"),
        ]
