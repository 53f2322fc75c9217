"""The runner: automations run concurrently, share the device bucket, register their job."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicebucket import JobConflictError, Store
from devicebucket.entry.runner import AutomationError, load_automation, run_automations

from ..conftest import ROOT

EXAMPLES = ROOT / "examples"


def write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(source)
    return path


async def test_examples_run_and_second_run_reuses_credentials(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    credentials = load_automation(EXAMPLES / "credentials.py")
    for _ in range(2):
        results = await run_automations(store, [credentials], "pixel-7-01")
        assert [r.error for r in results] == [None]
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "No credentials found, performing login...",
        "Credentials saved for: pixel-7-01@example.com",
        "Reusing stored credentials for: pixel-7-01@example.com",
    ]


async def test_config_example_keeps_the_credentials(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = [
        load_automation(EXAMPLES / name, i)
        for i, name in enumerate(["credentials.py", "app_config.py"])
    ]
    await run_automations(store, examples[:1], "pixel")
    await run_automations(store, examples[1:], "pixel")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Device bucket keys: accountToken, appVersion, lastChecked, loginTimestamp, username"
    )


async def test_job_example_registers_its_schema(store: Store) -> None:
    automation = load_automation(EXAMPLES / "signup_job.py")
    for _ in range(3):
        results = await run_automations(store, [automation], "pixel-7-01", "signup")
        assert [r.error for r in results] == [None]
    job = await store.get_job("signup")
    assert job is not None
    assert job.schema == automation.schema
    assert job.automation == "signup_job.py"
    assert (await store.get("pixel-7-01", job="signup")).data == {
        "attempts": 3,
        "stage": "done",
        "sessionCookie": "sid-3",
    }


async def test_files_run_concurrently_and_share_the_device_bucket(
    store: Store, tmp_path: Path
) -> None:
    # Each automation waits for the other's key: this only finishes if they run at once.
    template = """
import asyncio
async def main(agent):
    await agent.utils.deviceBucket.set({{"{mine}": True}})
    for _ in range(1000):
        got = await agent.utils.deviceBucket.get()
        if got["deviceBucket"].get("{theirs}"):
            return
        await asyncio.sleep(0)
    raise AssertionError("never saw {theirs}")
"""
    a = load_automation(write(tmp_path, "a.py", template.format(mine="a", theirs="b")), 0)
    b = load_automation(write(tmp_path, "b.py", template.format(mine="b", theirs="a")), 1)
    results = await run_automations(store, [a, b], "pixel")
    assert [r.error for r in results] == [None, None]


async def test_a_failing_automation_is_reported_and_others_finish(
    store: Store, tmp_path: Path
) -> None:
    bad = load_automation(
        write(tmp_path, "bad.py", "async def main(agent):\n    raise ValueError('boom')\n"), 0
    )
    good = load_automation(
        write(
            tmp_path,
            "good.py",
            "async def main(agent):\n    await agent.utils.deviceBucket.set({'ok': 1})\n",
        ),
        1,
    )
    results = await run_automations(store, [bad, good], "pixel")
    assert isinstance(results[0].error, ValueError)
    assert results[1].error is None
    assert (await store.get("pixel")).data == {"ok": 1}


def test_a_file_without_async_main_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AutomationError, match=r"`main` must be `async def main\(agent\)`"):
        load_automation(write(tmp_path, "sync.py", "def main(agent):\n    pass\n"))
    with pytest.raises(AutomationError, match=r"defines no `async def main\(agent\)`"):
        load_automation(write(tmp_path, "nomain.py", "x = 1\n"))
    with pytest.raises(AutomationError, match="no such file"):
        load_automation(tmp_path / "missing.py")
    with pytest.raises(
        AutomationError, match="BUCKET_SCHEMA: bucket schema is not a valid JSON Schema"
    ):
        load_automation(
            write(tmp_path, "s.py", "BUCKET_SCHEMA = {'type': 5}\nasync def main(agent): pass\n")
        )


async def test_schema_conflicts_are_refused_unless_replaced(store: Store, tmp_path: Path) -> None:
    one = load_automation(
        write(
            tmp_path, "one.py", "BUCKET_SCHEMA = {'type': 'object'}\nasync def main(agent): pass\n"
        ),
        0,
    )
    two = load_automation(
        write(
            tmp_path, "two.py", "BUCKET_SCHEMA = {'required': ['x']}\nasync def main(agent): pass\n"
        ),
        1,
    )
    with pytest.raises(AutomationError, match="define different BUCKET_SCHEMA"):
        await run_automations(store, [one, two], "pixel", "job")
    assert await store.get_job("job") is None
    await run_automations(store, [one], "pixel", "job")
    with pytest.raises(JobConflictError, match="different bucket schema"):
        await run_automations(store, [two], "pixel", "job")
    await run_automations(store, [two], "pixel", "job", replace_schema=True)
    job = await store.get_job("job")
    assert job is not None
    assert job.schema == {"required": ["x"]}
