"""The dashboard in a real browser: Playwright driving Debian's Chromium, headless.

Set ``DEVICEBUCKET_SCREENSHOTS=docs/screenshots`` to refresh the README's screenshots.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devicebucket import SQLiteStore
from devicebucket.web.app import create_app

from ..conftest import requires
from ..servers import ADMIN, ThreadedServer

CHROMIUM = os.environ.get("DEVICEBUCKET_CHROMIUM", "/usr/bin/chromium")
SCHEMA = {
    "type": "object",
    "properties": {"step": {"type": "integer", "minimum": 0}, "email": {"type": "string"}},
    "required": ["step"],
}

requires(Path(CHROMIUM).exists(), f"Chromium is not installed at {CHROMIUM}")


T = TypeVar("T")


def off_loop(work: Callable[[], Awaitable[T]]) -> T:
    """Run store code on a thread of its own: sync Playwright keeps an event loop running
    on the test's thread."""

    async def main() -> T:
        return await work()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.db"

    async def seed() -> None:
        async with SQLiteStore(path) as store:
            await store.register_job("signup", automation="signup.py", schema=SCHEMA)
            for n in range(1, 13):
                await store.merge(f"pixel-7-{n:02}", {"locale": "en-US", "launches": n})
            await store.merge(
                "pixel-7-01",
                {
                    "account": {"user": "ana@example.com", "plan": "pro"},
                    "password": "correct-horse-battery",
                    "session_cookie": "sid=abc123",
                    "proxy": {"host": "10.0.0.2", "port": 3128},
                },
            )
            await store.merge("pixel-7-01", {"step": 2, "email": "ana@example.com"}, job="signup")
            await store.merge("emulator-5554", {"launches": 1})

    off_loop(seed)
    return path


@pytest.fixture
def server(db: Path) -> Iterator[ThreadedServer]:
    with ThreadedServer(create_app(SQLiteStore(db), admin_token=ADMIN)) as running:
        yield running


@pytest.fixture
def page(chromium: Browser, server: ThreadedServer) -> Iterator[Page]:
    context = chromium.new_context(base_url=server.url, viewport={"width": 1100, "height": 800})
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page: Page) -> None:
    page.goto("/ui/devices")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("Admin token").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()


def stored(db: Path, device: str, job: str | None = None) -> dict[str, object]:
    async def read() -> dict[str, object]:
        async with SQLiteStore(db) as store:
            return (await store.get(device, job=job)).data

    return off_loop(read)


def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG")
    target = os.environ.get("DEVICEBUCKET_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


def test_sign_in_with_a_wrong_token_then_the_right_one(page: Page, tmp_path: Path) -> None:
    page.goto("/ui/devices")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not a valid admin token.")
    screenshot(page, tmp_path, "sign-in")
    page.get_by_label("Admin token").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/devices$"))
    expect(page.get_by_text("13 devices")).to_be_visible()


def test_search_sort_and_page_through_devices(page: Page, tmp_path: Path) -> None:
    sign_in(page)
    screenshot(page, tmp_path, "devices")
    page.get_by_label("Search device ids").fill("emulator")
    page.keyboard.press("Enter")
    expect(page.get_by_role("row")).to_have_count(2)  # header + one device
    expect(page.get_by_role("link", name="emulator-5554")).to_be_visible()
    page.get_by_label("Search device ids").fill("")
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Keys").click()  # keys, descending
    first = page.get_by_role("row").nth(1)
    expect(first.get_by_role("rowheader")).to_have_text("pixel-7-01")
    expect(page.get_by_role("columnheader", name="Keys")).to_have_attribute(
        "aria-sort", "descending"
    )


def test_secrets_are_masked_until_revealed(page: Page, tmp_path: Path) -> None:
    sign_in(page)
    page.get_by_role("link", name="pixel-7-01").click()
    expect(page.get_by_role("heading", name="pixel-7-01", exact=True)).to_be_visible()
    assert "correct-horse-battery" not in page.content()
    assert "sid=abc123" not in page.content()
    expect(page.get_by_text("ana@example.com").first).to_be_visible()
    screenshot(page, tmp_path, "device")
    page.get_by_role("link", name="Reveal password").click()
    expect(page.locator("pre", has_text='"correct-horse-battery"')).to_be_visible()
    assert "sid=abc123" not in page.content()


def test_edit_a_key_and_see_it_stored(page: Page, db: Path) -> None:
    sign_in(page)
    page.goto("/ui/devices/pixel-7-01")
    device = page.locator("#bucket-device")
    device.get_by_text("Edit launches").click()
    field = device.get_by_label("New value of launches (JSON)")
    field.fill("{oops")
    expect(field).to_have_attribute("aria-invalid", "true")  # checked while typing
    field.fill("42")
    expect(field).to_have_attribute("aria-invalid", "false")
    device.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status")).to_have_text("Saved 'launches'.")
    assert stored(db, "pixel-7-01")["launches"] == 42

    device = page.locator("#bucket-device")
    device.get_by_label("Key").fill("proxy_region")
    device.get_by_label("Value (JSON").fill('"eu-west"')
    device.get_by_role("button", name="Save key").click()
    expect(page.get_by_role("status")).to_have_text("Saved 'proxy_region'.")
    assert stored(db, "pixel-7-01")["proxy_region"] == "eu-west"

    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#bucket-device").get_by_role("button", name="Delete proxy_region").click()
    expect(page.get_by_role("status")).to_have_text("Deleted 'proxy_region'.")
    assert "proxy_region" not in stored(db, "pixel-7-01")


def test_a_job_bucket_edit_is_checked_against_the_schema(
    page: Page, db: Path, tmp_path: Path
) -> None:
    sign_in(page)
    page.goto("/ui/devices/pixel-7-01")
    job = page.locator("#bucket-signup")
    expect(job.get_by_role("heading", name="Job bucket signup")).to_be_visible()
    job.get_by_text("Edit step").click()
    job.get_by_label("New value of step (JSON)").fill("-3")
    job.get_by_role("button", name="Save").first.click()
    expect(page.locator("#error")).to_contain_text("at $.step")
    expect(page.locator("#error")).to_contain_text("minimum")
    assert stored(db, "pixel-7-01", "signup")["step"] == 2
    page.goto("/ui/jobs")
    screenshot(page, tmp_path, "jobs")
    page.get_by_role("link", name="signup").first.click()
    expect(page.get_by_role("link", name="pixel-7-01")).to_be_visible()
    screenshot(page, tmp_path, "job")


def test_a_conflicting_edit_from_another_client_is_shown_as_a_conflict(
    page: Page, server: ThreadedServer, db: Path, tmp_path: Path
) -> None:
    sign_in(page)
    page.goto("/ui/devices/pixel-7-01")
    device = page.locator("#bucket-device")
    device.get_by_text("Edit locale").click()
    device.get_by_label("New value of locale (JSON)").fill('"de-DE"')

    # Meanwhile an automation writes the same bucket through the API.
    other = httpx.patch(
        f"{server.url}/v1/devices/pixel-7-01/bucket",
        json={"locale": "fr-FR"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert other.status_code == 200

    device.get_by_role("button", name="Save").first.click()
    conflict = page.get_by_role("alert")
    expect(conflict).to_contain_text("Not saved: someone changed this bucket")
    expect(conflict).to_contain_text('"fr-FR"')
    assert stored(db, "pixel-7-01")["locale"] == "fr-FR"
    screenshot(page, tmp_path, "conflict")

    # The operator's edit is kept; saving it again (now on the newer version) wins.
    mine = page.locator("#bucket-device form.add")
    expect(mine.get_by_label("Key")).to_have_value("locale")
    expect(mine.get_by_label("Value (JSON")).to_have_value('"de-DE"')
    mine.get_by_role("button", name="Save key").click()
    expect(page.get_by_role("status")).to_have_text("Saved 'locale'.")
    assert stored(db, "pixel-7-01")["locale"] == "de-DE"


def test_usable_on_a_phone_sized_screen_with_the_keyboard(
    chromium: Browser, server: ThreadedServer, tmp_path: Path
) -> None:
    context = chromium.new_context(
        base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    page = context.new_page()
    try:
        page.goto("/ui/login")
        expect(page.get_by_label("Admin token")).to_be_focused()
        page.keyboard.type(ADMIN)
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Devices")).to_be_visible()
        page.goto("/ui/devices/pixel-7-01")
        page.keyboard.press("Tab")  # the skip link comes first
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("link", name="devicebucket")).to_be_focused()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"the page is {width}px wide on a 390px screen"
        screenshot(page, tmp_path, "device-phone")
    finally:
        context.close()


def test_history_shows_who_changed_what_and_restores(page: Page, db: Path, tmp_path: Path) -> None:
    sign_in(page)
    page.goto("/ui/devices/pixel-7-01")
    device = page.locator("#bucket-device")
    device.get_by_text("Edit locale").click()
    device.get_by_label("New value of locale (JSON)").fill('"pt-BR"')
    device.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("status")).to_have_text("Saved 'locale'.")

    page.get_by_role("link", name="History of the device bucket").click()
    expect(page.get_by_role("heading", name="History of the device bucket")).to_be_visible()
    newest = page.get_by_role("row").nth(1)
    expect(newest).to_contain_text("admin token env via dashboard")
    expect(newest).to_contain_text("Changed: locale")
    screenshot(page, tmp_path, "history")

    newest.get_by_role("link", name="Diff with 2").click()
    expect(page.get_by_role("heading", name="Version 2 → 3")).to_be_visible()
    changed = page.get_by_role("row", name="locale")
    expect(changed).to_contain_text('"en-US"')
    expect(changed).to_contain_text('"pt-BR"')
    screenshot(page, tmp_path, "diff")

    page.go_back()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restore version 2").click()
    expect(page.get_by_role("status")).to_have_text("Restored version 2, as version 4.")
    assert stored(db, "pixel-7-01")["locale"] == "en-US"
    page.get_by_role("link", name="History of the device bucket").click()
    expect(page.get_by_role("row").nth(1)).to_contain_text("restore of version 2")


def test_the_api_docs_render_from_this_server_alone(page: Page, server: ThreadedServer) -> None:
    """Swagger UI comes from the installed package; nothing loads from another origin and
    the page's CSP refuses nothing it needs (it also works offline, as here)."""
    requests: list[str] = []
    refused: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Refused" in message.text else None,
    )
    response = page.goto("/docs")
    assert response is not None
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "http" not in csp  # no other origin allowed
    page.locator(".opblock").first.wait_for()
    assert page.locator(".opblock").count() >= 30
    assert page.get_by_text("/v1/devices/{device}/bucket", exact=True).first.is_visible()
    assert refused == []
    assert requests
    assert all(url.startswith(server.url) for url in requests), requests
