"""The dashboard, live, in a real browser: a device page follows its buckets, flags a key
being edited that someone else changed, shows expiries; the Activity page follows the fleet."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from devicebucket import SQLiteStore

from .test_browser import chromium, db, off_loop, page, screenshot, server, sign_in

__all__ = ["chromium", "db", "page", "server"]  # the fixtures, shared


def write(db: Path, device: str, data: dict[str, object], **options: object) -> None:
    async def run() -> None:
        async with SQLiteStore(db) as store:
            await store.merge(device, data, actor="sms-reader.py", **options)  # type: ignore[arg-type]

    off_loop(run)


def test_a_device_page_follows_its_buckets(page: Page, db: Path, tmp_path: Path) -> None:
    sign_in(page)
    page.goto("/ui/devices/pixel-7-01")
    expect(page.locator("#live-state")).to_have_text("Live")
    write(db, "pixel-7-01", {"launches": 99, "password": "hunter2"})
    row = page.locator("#bucket-device tr[data-key='launches']")
    expect(row.locator("pre.json")).to_have_text("99")
    expect(row).to_have_class(re.compile("updated"))
    expect(page.locator("#bucket-device .version")).to_have_text("3")
    expect(page.locator("#live-state")).to_contain_text("version 3 by sms-reader.py")
    assert "hunter2" not in page.content()  # a secret stays masked, live too
    write(db, "pixel-7-01", {"otp": "4921"})
    expect(page.locator("#live-state")).to_contain_text("new key otp: reload to see it")
    screenshot(page, tmp_path, "device-live")


def test_a_key_being_edited_that_someone_else_changed_is_flagged(page: Page, db: Path) -> None:
    sign_in(page)
    page.goto("/ui/devices/pixel-7-01")
    expect(page.locator("#live-state")).to_have_text("Live")
    row = page.locator("#bucket-device tr[data-key='locale']")
    row.get_by_text("Edit").click()
    row.locator("textarea").fill('"fr-FR"')
    write(db, "pixel-7-01", {"locale": "de-DE"})
    expect(row.get_by_role("alert")).to_contain_text("locale was just changed by sms-reader.py")
    row.get_by_role("button", name="Save").click()
    expect(
        page.get_by_role("heading", name="Not saved: someone changed this bucket")
    ).to_be_visible()
    expect(page.locator("#conflict")).to_contain_text("de-DE")


def test_expiries_are_shown_and_set_from_the_page(page: Page, db: Path) -> None:
    write(db, "pixel-7-02", {"otp": "1234"}, expire_in={"otp": 3600})
    sign_in(page)
    page.goto("/ui/devices/pixel-7-02")
    tag = page.locator("tr[data-key='otp'] .tag.expires")
    expect(tag).to_have_text(re.compile(r"expires in (59 min \d+ s|1 h 0 min)"))
    add = page.locator("#bucket-device form.add")
    add.get_by_label("Key").fill("session")
    add.get_by_label("Value (JSON", exact=False).fill('"sid=1"')
    add.get_by_label("Expires in (seconds, empty: never)").fill("120")
    add.get_by_role("button", name="Save key").click()
    expect(page.locator("tr[data-key='session'] .tag.expires")).to_have_text(
        re.compile(r"expires in [12] min")
    )


def test_the_activity_page_follows_the_fleet(page: Page, db: Path, tmp_path: Path) -> None:
    sign_in(page)
    page.get_by_role("link", name="Activity").click()
    expect(page.get_by_role("heading", name="Activity")).to_be_visible()
    expect(page.locator("svg.chart rect")).to_have_count(60)
    expect(page.locator("#latest tr").first).to_contain_text("emulator-5554")  # seeded last
    expect(page.locator("#live-state")).to_have_text("Live")
    write(db, "emulator-9", {"password": "hunter2", "n": 1})
    first = page.locator("#latest tr").first
    expect(first).to_contain_text("emulator-9")
    expect(first).to_contain_text("sms-reader.py")
    assert "hunter2" not in page.content()
    screenshot(page, tmp_path, "activity")
