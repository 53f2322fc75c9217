"""The dashboard over HTTP: sessions, CSRF, masking, conditional edits (a real server)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from devicebucket import SQLiteStore
from devicebucket.web.app import create_app
from devicebucket.web.dashboard import SESSION_COOKIE

from ..servers import ADMIN, ServeProcess, ThreadedServer

SCHEMA = {"type": "object", "properties": {"step": {"type": "integer", "minimum": 0}}}


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "ui.db"

    async def seed() -> None:
        async with SQLiteStore(path) as store:
            await store.merge("pixel-1", {"password": "hunter2-secret", "n": 1, "cfg": {"a": [1]}})
            await store.register_job("signup", automation="signup.py", schema=SCHEMA)
            await store.merge("pixel-1", {"step": 1}, job="signup")
            await store.merge("emu-2", {"n": 2})

    asyncio.run(seed())
    return path


@pytest.fixture
def server(db: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(SQLiteStore(db), admin_token=ADMIN)) as running:
        yield running


@pytest.fixture
def browser(server: ThreadedServer) -> Iterator[httpx.Client]:
    """A signed-in client that keeps its cookies, like a browser."""
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/ui/login", data={"token": ADMIN, "next": "/ui/devices"})
        assert response.status_code == 303
        yield client


def csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def stored(db: Path, device: str, job: str | None = None) -> tuple[dict[str, object], int]:
    async def read() -> tuple[dict[str, object], int]:
        async with SQLiteStore(db) as store:
            snapshot = await store.get(device, job=job)
            return snapshot.data, snapshot.version

    return asyncio.run(read())


def test_pages_redirect_to_sign_in_without_a_session(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.get("/ui/devices/pixel-1")
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/login?next=%2Fui%2Fdevices%2Fpixel-1"
        form = client.get("/ui/login")
        assert form.status_code == 200
        assert 'label for="token"' in form.text


def test_sign_in_sets_a_strict_http_only_cookie_and_returns_to_the_page(
    server: ThreadedServer,
) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/ui/login", data={"token": ADMIN, "next": "/ui/jobs"})
        assert response.status_code == 303
        assert response.headers["location"] == "/ui/jobs"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert "Path=/ui" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback; see test_serve for TLS
        assert ADMIN not in cookie
        assert client.get("/ui/jobs").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/v1/export"])
def test_sign_in_never_redirects_off_the_dashboard(server: ThreadedServer, target: str) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/ui/login", data={"token": ADMIN, "next": target})
        assert response.headers["location"] == "/ui/devices"


def test_sign_in_refuses_bad_and_device_tokens(server: ThreadedServer, db: Path) -> None:
    async def device_token() -> str:
        async with SQLiteStore(db) as store:
            return (await store.create_token("pixel-1"))[1]

    secret = asyncio.run(device_token())
    with httpx.Client(base_url=server.url) as client:
        for presented in ("wrong", secret, ""):
            response = client.post("/ui/login", data={"token": presented})
            assert response.status_code == 401
            assert "not a valid admin token" in response.text
            assert SESSION_COOKIE not in client.cookies
            assert presented not in response.text or presented == ""


def test_a_revoked_token_ends_its_session(server: ThreadedServer, db: Path) -> None:
    async def admin_token() -> tuple[str, str]:
        async with SQLiteStore(db) as store:
            created, secret = await store.create_token(None)
            return created.id, secret

    ident, secret = asyncio.run(admin_token())
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/ui/login", data={"token": secret}).status_code == 303
        assert client.get("/ui/devices").status_code == 200

        async def revoke() -> None:
            async with SQLiteStore(db) as store:
                await store.revoke_token(ident)

        asyncio.run(revoke())
        assert client.get("/ui/devices").status_code == 303


def test_a_forged_cookie_is_no_session(server: ThreadedServer) -> None:
    forged = {SESSION_COOKIE: "eyJ0b2tlbiI6ImVudiJ9.x.y"}
    with httpx.Client(base_url=server.url, cookies=forged) as client:
        assert client.get("/ui/devices").status_code == 303


def test_devices_are_listed_searched_and_sorted(browser: httpx.Client) -> None:
    page = browser.get("/ui/devices").text
    assert page.index("emu-2") < page.index("pixel-1")
    assert "2 devices" in page
    found = browser.get("/ui/devices", params={"q": "PIX"}).text
    assert "pixel-1" in found
    assert "emu-2" not in found
    by_keys = browser.get("/ui/devices", params={"sort": "keys", "order": "desc"}).text
    assert by_keys.index("pixel-1") < by_keys.index("emu-2")
    assert 'aria-sort="descending"' in by_keys


def test_secret_values_are_masked_until_revealed(browser: httpx.Client) -> None:
    page = browser.get("/ui/devices/pixel-1").text
    assert "hunter2-secret" not in page
    assert "••••••••" in page
    assert "Reveal" in page
    shown = browser.get("/ui/devices/pixel-1", params={"bucket": "", "reveal": "password"}).text
    assert "hunter2-secret" in shown


def test_secrets_inside_values_are_masked_until_revealed(browser: httpx.Client, db: Path) -> None:
    async def seed() -> None:
        async with SQLiteStore(db) as store:
            await store.merge("pixel-1", {"creds": {"password": "deep-hunter2", "user": "bob"}})

    run(seed())
    page = browser.get("/ui/devices/pixel-1").text
    assert "deep-hunter2" not in page  # neither shown nor put in the edit form
    assert "bob" in page
    shown = browser.get("/ui/devices/pixel-1", params={"bucket": "", "reveal": "creds"}).text
    assert "deep-hunter2" in shown


def test_an_edit_without_the_csrf_token_is_refused_and_changes_nothing(
    browser: httpx.Client, db: Path
) -> None:
    before = stored(db, "pixel-1")
    form = {"job": "", "key": "n", "value": "5", "version": str(before[1])}
    for token in (None, "forged", "forgéd", "\U0001f511" * 8):  # not ASCII: refused, not a 500
        data = form if token is None else {**form, "csrf": token}
        response = browser.post("/ui/devices/pixel-1/keys", data=data)
        assert response.status_code == 403
        assert "expired" in response.text
    for raw in (b"csrf=%ED%A0%80&key=n&value=5", b"csrf=%FF%FE&key=n&value=5"):  # not UTF-8
        response = browser.post(
            "/ui/devices/pixel-1/keys",
            content=raw,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 403
        assert "expired" in response.text
    assert stored(db, "pixel-1") == before


def test_an_edit_without_a_session_is_refused(server: ThreadedServer, db: Path) -> None:
    before = stored(db, "pixel-1")
    with httpx.Client(base_url=server.url) as client:
        response = client.post(
            "/ui/devices/pixel-1/keys", data={"key": "n", "value": "5", "version": "1"}
        )
        assert response.status_code == 403
    assert stored(db, "pixel-1") == before


def test_set_and_delete_a_key_are_stored(browser: httpx.Client, db: Path) -> None:
    page = browser.get("/ui/devices/pixel-1").text
    version = stored(db, "pixel-1")[1]
    form = {"csrf": csrf(page), "job": "", "key": "proxy", "value": '{"host": "10.0.0.2"}'}
    response = browser.post("/ui/devices/pixel-1/keys", data={**form, "version": str(version)})
    assert response.status_code == 303
    assert stored(db, "pixel-1")[0]["proxy"] == {"host": "10.0.0.2"}
    assert "Saved &#39;proxy&#39;." in browser.get(response.headers["location"]).text

    deleted = browser.post(
        "/ui/devices/pixel-1/keys",
        data={**form, "action": "delete", "version": str(version + 1)},
    )
    assert deleted.status_code == 303
    assert "proxy" not in stored(db, "pixel-1")[0]


def test_a_stale_edit_is_a_conflict_showing_the_newer_value(
    browser: httpx.Client, server: ThreadedServer, db: Path
) -> None:
    page = browser.get("/ui/devices/pixel-1").text
    seen = stored(db, "pixel-1")[1]
    other = httpx.patch(
        f"{server.url}/v1/devices/pixel-1/bucket",
        json={"n": 41},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert other.status_code == 200
    response = browser.post(
        "/ui/devices/pixel-1/keys",
        data={"csrf": csrf(page), "job": "", "key": "n", "value": "7", "version": str(seen)},
    )
    assert response.status_code == 409
    assert "someone changed this bucket" in response.text
    assert f"version {seen + 1}" in response.text
    assert '<pre class="json">41</pre>' in response.text
    assert ">7</textarea>" in response.text  # the operator's edit is kept in the form
    assert stored(db, "pixel-1")[0]["n"] == 41


@pytest.mark.parametrize(
    ("job", "key", "value", "message"),
    [
        ("", "n", "{not json", "The value is not valid JSON"),
        ("", "n", "NaN", "NaN is not JSON"),
        ("signup", "step", '"three"', "at $.step: rule &#39;type&#39;"),
        ("signup", "step", "-1", "rule &#39;minimum&#39;"),
        ("", "", "1", "Give the key a name"),
    ],
)
def test_a_bad_value_is_shown_inline_and_changes_nothing(
    browser: httpx.Client, db: Path, job: str, key: str, value: str, message: str
) -> None:
    before = stored(db, "pixel-1", job or None)
    page = browser.get("/ui/devices/pixel-1").text
    response = browser.post(
        "/ui/devices/pixel-1/keys",
        data={"csrf": csrf(page), "job": job, "key": key, "value": value, "version": before[1]},
    )
    assert response.status_code == 422
    assert message in response.text
    assert stored(db, "pixel-1", job or None) == before


def test_a_job_bucket_that_breaks_a_replaced_schema_shows_its_errors(
    browser: httpx.Client, db: Path
) -> None:
    async def replace() -> None:
        async with SQLiteStore(db) as store:
            strict = {"type": "object", "required": ["account"]}
            await store.register_job("signup", schema=strict, replace_schema=True)

    asyncio.run(replace())
    page = browser.get("/ui/devices/pixel-1").text
    assert "does not match its job" in page
    assert "required" in page
    assert "account" in page


def test_jobs_list_their_schema_and_devices(browser: httpx.Client) -> None:
    jobs = browser.get("/ui/jobs").text
    assert 'href="/ui/jobs/signup"' in jobs
    assert "signup.py" in jobs
    job = browser.get("/ui/jobs/signup").text
    assert "&#34;minimum&#34;: 0" in job
    assert 'href="/ui/devices/pixel-1#bucket-signup"' in job
    assert "emu-2" not in job
    assert browser.get("/ui/jobs/nothing").status_code == 404


def test_pages_forbid_framing_and_caching(browser: httpx.Client) -> None:
    response = browser.get("/ui/devices")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert browser.get("/ui/static/dashboard.css").status_code == 200


def test_history_diff_and_restore(browser: httpx.Client, db: Path) -> None:
    page = browser.get("/ui/devices/pixel-1").text
    version = stored(db, "pixel-1")[1]
    form = {"csrf": csrf(page), "job": "", "key": "password", "value": '"rotated-secret"'}
    assert (
        browser.post("/ui/devices/pixel-1/keys", data={**form, "version": version}).status_code
        == 303
    )

    history = browser.get("/ui/devices/pixel-1/history", params={"job": ""}).text
    assert "admin token env via dashboard" in history
    assert "Changed: <code>password</code>" in history
    assert "hunter2-secret" not in history
    assert "rotated-secret" not in history

    masked = browser.get("/ui/devices/pixel-1/diff", params={"from": 1, "to": 2}).text
    assert "hunter2-secret" not in masked
    assert "rotated-secret" not in masked
    shown = browser.get("/ui/devices/pixel-1/diff", params={"from": 1, "to": 2, "reveal": 1}).text
    assert "hunter2-secret" in shown
    assert "rotated-secret" in shown

    stale = browser.post(
        "/ui/devices/pixel-1/restore",
        data={"csrf": csrf(history), "job": "", "version": 1, "current": 1},
    )
    assert stale.status_code == 409
    assert "Not restored" in stale.text
    assert stored(db, "pixel-1")[0]["password"] == "rotated-secret"

    restored = browser.post(
        "/ui/devices/pixel-1/restore",
        data={"csrf": csrf(history), "job": "", "version": 1, "current": 2},
    )
    assert restored.status_code == 303
    assert stored(db, "pixel-1") == (
        {"password": "hunter2-secret", "n": 1, "cfg": {"a": [1]}},
        3,
    )
    assert "Restored version 1, as version 3." in browser.get(restored.headers["location"]).text


def test_a_restore_without_the_csrf_token_changes_nothing(browser: httpx.Client, db: Path) -> None:
    before = stored(db, "pixel-1")
    response = browser.post(
        "/ui/devices/pixel-1/restore", data={"job": "", "version": 0, "current": before[1]}
    )
    assert response.status_code == 403
    assert stored(db, "pixel-1") == before


def test_forms_are_bounded_and_urlencoded_only(browser: httpx.Client, db: Path) -> None:
    before = stored(db, "pixel-1")
    page = browser.get("/ui/devices/pixel-1").text
    too_big = {"csrf": csrf(page), "key": "n", "value": "1" * (3 * 1024 * 1024 + 20_000)}
    assert browser.post("/ui/devices/pixel-1/keys", data=too_big).status_code == 413
    upload = browser.post(
        "/ui/devices/pixel-1/keys",
        data={"csrf": csrf(page), "key": "n", "version": "1"},
        files={"value": ("v.json", b"5")},
    )
    assert upload.status_code == 415
    login = httpx.post(f"{browser.base_url}/ui/login", data={"token": "x" * 5000})
    assert login.status_code == 413
    assert stored(db, "pixel-1") == before


def test_text_that_is_not_unicode_is_an_inline_error(browser: httpx.Client, db: Path) -> None:
    before = stored(db, "pixel-1")
    page = browser.get("/ui/devices/pixel-1").text
    version = str(before[1])
    form = {"csrf": csrf(page), "key": "n", "value": '"\\ud800"', "version": version}
    response = browser.post("/ui/devices/pixel-1/keys", data=form)
    assert response.status_code == 422
    assert "not valid Unicode" in response.text
    assert stored(db, "pixel-1") == before


def test_a_store_failure_page_gives_a_request_id_not_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"not a database " * 200)
    with (
        ThreadedServer(create_app(SQLiteStore(path), admin_token=ADMIN)) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        # Sessions live in the store: signing in is the first page that needs it.
        page = client.post("/ui/login", data={"token": ADMIN})
    assert page.status_code == 503
    assert str(tmp_path) not in page.text
    assert "not a database" not in page.text
    match = re.search(r"request ([0-9a-f]{12})", page.text)
    assert match is not None
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"dashboard request {match.group(1)}: SQLite store {path}" in logged


def test_behind_a_tls_proxy_cookies_are_secure_and_pages_send_hsts(db: Path) -> None:
    app = create_app(SQLiteStore(db), admin_token=ADMIN, behind_tls=True)
    with ThreadedServer(app) as server, httpx.Client(base_url=server.url) as client:
        form = client.get("/ui/login")
        signed_in = client.post("/ui/login", data={"token": ADMIN})
    assert form.headers["strict-transport-security"] == "max-age=31536000"
    assert "secure" in signed_in.headers["set-cookie"].lower()


def test_plain_http_cookies_are_not_marked_secure(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        signed_in = client.post("/ui/login", data={"token": ADMIN})
        form = client.get("/ui/login")
    assert "secure" not in signed_in.headers["set-cookie"].lower()
    assert "strict-transport-security" not in form.headers


# --- sessions kept by the server ---------------------------------------------------------


def test_signing_out_ends_the_session_on_the_server(server: ThreadedServer, db: Path) -> None:
    with httpx.Client(base_url=server.url) as client:
        assert client.post("/ui/login", data={"token": ADMIN}).status_code == 303
        page = client.get("/ui/devices/pixel-1").text
        kept_cookies, token = dict(client.cookies), csrf(page)
        assert client.post("/ui/logout", data={"csrf": token}).status_code == 303
    # The old cookie and its CSRF token, replayed, open nothing and change nothing.
    with httpx.Client(base_url=server.url, cookies=kept_cookies) as replay:
        assert replay.get("/ui/devices").status_code == 303
        form = {"csrf": token, "key": "n", "value": "9", "version": "1"}
        assert replay.post("/ui/devices/pixel-1/keys", data=form).status_code == 403
    assert stored(db, "pixel-1")[0]["n"] == 1


def _sign_in(url: str, token: str = ADMIN) -> dict[str, str]:
    with httpx.Client(base_url=url) as client:
        assert client.post("/ui/login", data={"token": token}).status_code == 303
        return dict(client.cookies)


def _opens(url: str, cookies: dict[str, str]) -> bool:
    with httpx.Client(base_url=url, cookies=cookies) as client:
        return client.get("/ui/devices").status_code == 200


def test_a_session_is_bound_to_the_exact_admin_token(db: Path) -> None:
    other_admin = "another-admin-token-of-the-same-fleet"

    def app(admin: str) -> ThreadedServer:
        store = SQLiteStore(db)
        return ThreadedServer(create_app(store, admin_token=admin, session_secret="fixed"))

    with app(ADMIN) as first, app(ADMIN) as same, app(other_admin) as changed:
        cookies = _sign_in(first.url)
        assert _opens(same.url, cookies)  # another worker with the same token: still open
        assert not _opens(changed.url, cookies)  # the token was changed: ended
        assert not _opens(first.url, cookies)  # and ended for good, everywhere


def _age_sessions(db: Path, column: str, seconds: float) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(f"UPDATE sessions SET {column} = {column} - ?", (seconds,))


@pytest.mark.parametrize(
    ("column", "seconds", "still_open"),
    [
        ("seen_at", 29 * 60, True),
        ("seen_at", 31 * 60, False),  # idle past 30 minutes
        ("created_at", 11.5 * 3600, True),
        ("created_at", 12.5 * 3600, False),  # opened more than 12 hours ago
    ],
)
def test_sessions_have_idle_and_absolute_lifetimes(
    server: ThreadedServer, db: Path, column: str, seconds: float, still_open: bool
) -> None:
    cookies = _sign_in(server.url)
    _age_sessions(db, column, seconds)
    assert _opens(server.url, cookies) is still_open


def test_session_lifetimes_are_settings(db: Path) -> None:
    app = create_app(SQLiteStore(db), admin_token=ADMIN, session_idle_minutes=1)
    with ThreadedServer(app) as server:
        cookies = _sign_in(server.url)
        _age_sessions(db, "seen_at", 90)
        assert not _opens(server.url, cookies)


# --- a huge bucket -----------------------------------------------------------------------


def _seed_huge(db: Path, keys: int) -> None:
    async def seed() -> None:
        async with SQLiteStore(db) as store:
            await store.register_job("big")
            await store.merge("pixel-1", {f"k{n:05d}": 0 for n in range(keys)}, job="big")
            await store.merge("pixel-1", {"long": "x" * 300_000, "notes": ["y" * 50] * 100})

    asyncio.run(seed())


def test_a_huge_bucket_is_paged_and_long_values_are_cut_short(
    browser: httpx.Client, db: Path
) -> None:
    _seed_huge(db, 50_000)
    page = browser.get("/ui/devices/pixel-1")
    assert page.status_code == 200
    assert len(page.content) < 200_000  # 50,000 keys and a 300 KB value, bounded
    assert "50,000 keys" in page.text
    assert "Keys 1–100 of 50,000" in page.text
    assert "k00099" in page.text
    assert "k00100" not in page.text
    assert "x" * 2_001 not in page.text
    whole = "/ui/devices/pixel-1/value?bucket=&amp;key=long&amp;reveal=1"
    assert whole in page.text
    second = browser.get("/ui/devices/pixel-1", params={"bucket": "big", "page": "2"})
    assert "Keys 101–200 of 50,000" in second.text
    assert "k00100" in second.text
    assert "k00099" not in second.text
    value = browser.get(whole.replace("&amp;", "&"))
    assert value.status_code == 200
    assert "x" * 300_000 in value.text
    masked = browser.get("/ui/devices/pixel-1/value", params={"bucket": "", "key": "password"})
    assert "hunter2" not in masked.text
    assert browser.get("/ui/devices/pixel-1/value", params={"key": "nope"}).status_code == 404


def test_health_answers_while_a_huge_device_page_renders(tmp_path: Path) -> None:
    db = tmp_path / "huge.db"
    _seed_huge(db, 90_000)
    with ServeProcess(f"sqlite:///{db}") as server, httpx.Client(base_url=server.url) as client:
        assert client.post("/ui/login", data={"token": ADMIN}).status_code == 303
        pages: list[int] = []

        def open_pages() -> None:
            with httpx.Client(base_url=server.url, cookies=dict(client.cookies)) as viewer:
                for _ in range(5):
                    pages.append(viewer.get("/ui/devices/pixel-1", timeout=60).status_code)

        viewer = threading.Thread(target=open_pages)
        viewer.start()
        latencies = []
        with httpx.Client(base_url=server.url) as prober:
            while viewer.is_alive():
                started = time.perf_counter()
                assert prober.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
        viewer.join()
    assert pages == [200] * 5
    assert len(latencies) >= 5
    # A page that held the event loop stalled /healthz for the whole render (5.2 s before
    # the page was bounded); what is left is the decode of the 90,000-key bucket, which
    # holds the GIL (27 ms on a fast day, up to 125 ms on a slow one). Half a second tells
    # the two apart on any day; the figures themselves live in bench/big_bucket.py.
    assert max(latencies) < 0.5, sorted(latencies)[-5:]


def test_a_device_with_many_job_buckets_opens_twenty_and_links_the_rest(
    browser: httpx.Client, db: Path
) -> None:
    async def seed() -> None:
        async with SQLiteStore(db) as store:
            for n in range(25):
                await store.merge("many-1", {f"k{n}": n}, job=f"job-{n:02d}")

    asyncio.run(seed())
    page = browser.get("/ui/devices/many-1").text
    assert page.count('<section class="bucket" id="bucket-job-') == 20
    assert "5 more job buckets" in page
    assert 'href="?bucket=job-24#bucket-job-24"' in page
    named = browser.get("/ui/devices/many-1", params={"bucket": "job-24"}).text
    assert 'id="bucket-job-24"' in named
    assert "k24" in named
    assert "4 more job buckets" in named
