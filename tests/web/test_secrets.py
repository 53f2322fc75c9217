"""Secrets stay secret: a server run full of writes and failures involving known secrets,
then its log, its error answers, its metrics and the CLI's errors are scanned for them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from ..servers import ADMIN, ServeProcess

SECRET = "hunter2-9c1f7e"  # a value stored under secret-looking keys
TOKEN_LIKE = "dbk_0123456789ab_" + "S" * 43  # a bearer token that is not valid


def test_no_secret_reaches_logs_errors_or_metrics(
    db_url: str, cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    answers: list[str] = []
    with ServeProcess(db_url) as server:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        bucket = f"{server.url}/v1/devices/pixel-1/bucket"
        job_bucket = f"{server.url}/v1/devices/pixel-1/jobs/signup/bucket"

        def call(method: str, url: str, **kwargs: object) -> httpx.Response:
            headers = kwargs.pop("headers", admin)
            response = httpx.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
            if response.status_code >= 400:
                answers.append(response.text)
            return response

        assert call("PATCH", bucket, json={"password": SECRET, "n": 1}).status_code == 200
        schema = {"properties": {"password": {"type": "integer"}}, "required": ["step"]}
        put = call("PUT", f"{server.url}/v1/jobs/signup", json={"bucket_schema": schema})
        assert put.status_code == 200
        failures = [
            call("PATCH", job_bucket, json={"password": SECRET, "step": 1}),  # schema: 422
            call("PATCH", job_bucket, json={"session": SECRET}),  # required missing: 422
            call("PATCH", bucket, content=b'{"password": "' + SECRET.encode()),  # bad JSON
            call("PATCH", bucket, json={"password": SECRET}, headers={**admin, "If-Match": '"9"'}),
            call("PATCH", bucket, json={"password": SECRET * 100_000}),  # too large
            call("PATCH", bucket, json=[SECRET]),  # not an object
            call("GET", bucket, headers={"Authorization": f"Bearer {TOKEN_LIKE}"}),
            call("GET", bucket, headers={"Authorization": f"Bearer {SECRET}"}),
            call("POST", f"{server.url}/ui/login", data={"token": SECRET}),
            call("GET", f"{bucket}?token={SECRET}"),  # a token in the URL: refused, 400
        ]
        statuses = [r.status_code for r in failures]
        assert statuses == [422, 422, 400, 412, 413, 400, 401, 401, 401, 400]
        assert call("GET", f"{bucket}/history?limit=7").status_code == 200
        metrics = httpx.get(f"{server.url}/metrics").text
        history = call("GET", f"{bucket}/history").text
    log = server.log.read_text()
    assert "PATCH /v1/devices/pixel-1/bucket" in log  # the access log was written
    assert "GET /v1/devices/pixel-1/bucket?… HTTP/1.1" in log  # a refused query, redacted
    assert "GET /v1/devices/pixel-1/bucket/history?limit=7 HTTP/1.1" in log  # accepted: kept
    cli_errors = [
        cli("set", "pixel-1", "password:=" + '"' + SECRET + '"' * 2).stderr,
        cli("set", "pixel-1", "--job", "j", "--json", '{"password": "' + SECRET + '"').stderr,
        cli("get", "pixel-1").stdout,  # masked
        cli("diff", "pixel-1", "0", "1").stdout,  # masked
    ]
    for where, text in [
        ("the server log", log),
        ("the metrics", metrics),
        ("the history", history),
        *((f"error answer {i}", a) for i, a in enumerate(answers)),
        *((f"CLI output {i}", c) for i, c in enumerate(cli_errors)),
    ]:
        assert SECRET not in text, f"{SECRET!r} appears in {where}: {text[:300]}"
        assert TOKEN_LIKE not in text, f"a presented token appears in {where}"
        assert ADMIN not in text, f"the admin token appears in {where}"
