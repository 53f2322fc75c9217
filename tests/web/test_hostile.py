"""Hostile clients against a real ``serve`` (``bench/hostile.py`` runs the attacks and
measures them): huge forms cost the server no memory and no disk, and one device's broken
Unicode never fails another device's writes; a value made to make a job's pattern
backtrack is refused at once, while another device writes."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from devicebucket import SQLiteStore
from devicebucket.core.schema import schema_text
from devicebucket.web.app import create_app

from ..conftest import ROOT
from ..servers import ADMIN, ThreadedServer


@pytest.mark.slow
def test_huge_forms_and_broken_unicode_hurt_no_one() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "hostile.py"), "--mb", "200", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["answers"] == [
        "HTTP/1.1 413 Request Entity Too Large",
        "HTTP/1.1 413 Request Entity Too Large",
        "HTTP/1.1 415 Unsupported Media Type",
    ]
    before, after = report["peak_rss_mb"]
    assert after - before < 20, report  # three 200 MB bodies, none of them read
    assert report["spooled_mb"] == 0  # not even an unnamed temporary file
    assert report["dev_b"] == {"200": 16 * 60}
    assert report["dev_b_has_every_write"]
    assert report["dev_a"] == {"422": 120}
    assert report["dev_a_version"] == '"0"'
    assert report["server_errors_in_metrics"] == []


def test_a_value_made_to_backtrack_is_refused_while_another_device_writes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    app = create_app(store, admin_token=ADMIN)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with (
        ThreadedServer(app) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=30) as admin,
    ):
        schema = {"properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}
        assert admin.put("/v1/jobs/signup", json={"bucket_schema": schema}).status_code == 200
        token = admin.post("/v1/devices/pixel-1/tokens").json()["token"]
        device = {"Authorization": f"Bearer {token}"}
        # Python's re would take longer than the universe's age on this value; the store's
        # write lock and the server's event loop would be held as long, and the other
        # device's write (and the client's 30 s timeout) with them.
        hostile = {"name": "a" * 100_000 + "!"}
        with ThreadPoolExecutor(2) as pool, httpx.Client(base_url=server.url) as other:
            refused = pool.submit(
                other.patch, "/v1/devices/pixel-1/jobs/signup/bucket", json=hostile, headers=device
            )
            written = pool.submit(admin.patch, "/v1/devices/pixel-2/bucket", json={"step": 1})
            assert written.result().status_code == 200
            answer = refused.result()
        assert answer.status_code == 422
        assert answer.json()["code"] == "schema_violation"
        assert "aaaa" not in answer.text
        assert admin.get("/v1/devices/pixel-1/jobs/signup/bucket").json() == {}


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "http://169.254.169.254/latest/meta-data/"},
        {"properties": {"pin": {"pattern": "^(?=[0-9]*$)"}}},
    ],
)
async def test_a_schema_that_would_fetch_or_backtrack_is_refused_and_a_kept_one_not_applied(
    tmp_path: Path, schema: dict[str, object]
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    # As an earlier devicebucket kept it, which did not check what is checked now.
    await store._put_job("kept", None, schema_text(schema), False)
    app = create_app(store, admin_token=ADMIN)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with ThreadedServer(app) as server:
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as admin:
            refused = await admin.put("/v1/jobs/signup", json={"bucket_schema": schema})
            assert refused.status_code == 422
            assert refused.json()["code"] == "invalid_schema"
            assert (await admin.get("/v1/jobs/signup")).status_code == 404
            answer = await admin.patch("/v1/devices/pixel-1/jobs/kept/bucket", json={"pin": "1"})
            assert answer.status_code == 422
            assert answer.json()["code"] == "invalid_schema"
            assert "--replace-schema" in answer.json()["error"]
            assert (await admin.get("/v1/devices/pixel-1/jobs/kept/bucket")).json() == {}
