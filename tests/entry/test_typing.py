"""mypy narrows agent results on ``result["success"]`` (checked by running mypy)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SNIPPET = """
from devicebucket import Agent, DeviceBucketResult


async def use(agent: Agent) -> str:
    result: DeviceBucketResult = await agent.utils.deviceBucket.get()
    if result["success"]:
        token: object = result["deviceBucket"].get("accountToken")
        return str(token)
    return result["error"]
"""

WRONG = """
from devicebucket import Agent


async def use(agent: Agent) -> str:
    result = await agent.utils.deviceBucket.get()
    return str(result["deviceBucket"])  # not narrowed: a Failure has no deviceBucket
"""


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "snippet.py"
    path.write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_success_narrows_the_result(tmp_path: Path) -> None:
    result = mypy(tmp_path, SNIPPET)
    assert result.returncode == 0, result.stdout


def test_unnarrowed_access_is_an_error(tmp_path: Path) -> None:
    result = mypy(tmp_path, WRONG)
    assert result.returncode == 1
    assert 'TypedDict "Failure" has no key "deviceBucket"' in result.stdout
