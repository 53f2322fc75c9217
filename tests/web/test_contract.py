"""The HTTP contract is declared once: the route table builds the server's routes, the
OpenAPI document and the HTTP client's URLs; the error table maps errors both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.routing import Route

from devicebucket import SQLiteStore
from devicebucket.core.errors import (
    ConflictError,
    DeviceBucketError,
    InvalidValueError,
    NotFoundError,
    SchemaViolationError,
    StoreUnavailableError,
)
from devicebucket.core.ids import ID_PATTERN
from devicebucket.web.app import create_app
from devicebucket.web.openapi import openapi_document
from devicebucket.wire.errors import ERRORS, error_answer, error_from_answer
from devicebucket.wire.routes import ROUTES, url_of


def _app_operations(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(SQLiteStore(tmp_path / "s.db"))
    found = set()
    for route in app.routes:
        if not isinstance(route, Route):  # mounted static files (dashboard, Swagger UI)
            continue
        # The dashboard's pages, and what it serves browsers at / and /favicon.ico
        if not (route.path.startswith("/ui") or route.path in ("/", "/favicon.ico")):
            for method in route.methods or ():
                if method != "HEAD":
                    found.add((route.path, method))
    return found


def test_every_route_of_the_server_is_in_the_document(tmp_path: Path) -> None:
    paths = openapi_document()["paths"]
    documented = {(path, method.upper()) for path, ops in paths.items() for method in ops}
    served = {
        (path.replace(":int", "").replace(":path", ""), method)
        for path, method in _app_operations(tmp_path)
    }
    assert served == documented
    assert len(served) == len(ROUTES)


def test_a_route_missing_from_the_document_is_noticed(tmp_path: Path) -> None:
    """The comparison above is not vacuous: drop one operation and it fails."""
    paths = openapi_document()["paths"]
    del paths["/v1/devices/{device}/bucket"]["patch"]
    documented = {(path, method.upper()) for path, ops in paths.items() for method in ops}
    served = {
        (path.replace(":int", "").replace(":path", ""), method)
        for path, method in _app_operations(tmp_path)
    }
    assert served - documented == {("/v1/devices/{device}/bucket", "PATCH")}


def test_the_id_pattern_comes_from_the_rules() -> None:
    parameters = openapi_document()["components"]["parameters"]
    assert parameters["device"]["schema"]["pattern"] == ID_PATTERN
    assert parameters["job"]["schema"]["pattern"] == ID_PATTERN


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for ops in openapi_document()["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == len(ROUTES)


def test_client_urls_come_from_the_table() -> None:
    assert url_of("patch_bucket", device="pixel/7", job=None) == "/v1/devices/pixel%2F7/bucket"
    assert (
        url_of("history_version", device="p", job="signup", version=3)
        == "/v1/devices/p/jobs/signup/bucket/history/3"
    )
    assert url_of("put_job", job="signup") == "/v1/jobs/signup"


@pytest.mark.parametrize(
    "error",
    [
        SchemaViolationError("bad", path="$.step", rule="type"),
        ConflictError(3, 5),
        NotFoundError("no such job"),
        InvalidValueError("bad value"),
        StoreUnavailableError("down"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_error_table_goes_both_ways(error: DeviceBucketError) -> None:
    status, body = error_answer(error)
    back = error_from_answer(status, body, body["error"])
    assert type(back) is type(error)
    assert str(back) == str(error)
    if isinstance(error, SchemaViolationError):
        assert isinstance(back, SchemaViolationError)
        assert (back.path, back.rule) == ("$.step", "type")
    if isinstance(error, ConflictError):
        assert isinstance(back, ConflictError)
        assert back.actual == 5


def test_every_row_of_the_error_table_reads_back_as_its_exception() -> None:
    for kind in ERRORS:
        back = error_from_answer(kind.status, {"code": kind.code}, "message")
        assert isinstance(back, kind.error)


def test_an_unknown_status_is_the_server_failing() -> None:
    back = error_from_answer(500, None, "boom")
    assert isinstance(back, StoreUnavailableError)
    assert "HTTP 500" in str(back)
