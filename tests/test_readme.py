"""The README's examples run as written (the server snippet excepted: it binds port 8787)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_python_example_runs(tmp_path: Path) -> None:
    (python,) = [b for b in blocks("python") if "asyncio.run(demo())" in b]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    result = subprocess.run(
        [sys.executable, "-c", python],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "'success': True" in result.stdout
    assert (tmp_path / "fleet.db").exists()


def run_block(block: str, cwd: Path) -> list[str]:
    """Run each `devicebucket ...` line of a README block in order; return their outputs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    outputs = []
    for line in block.strip().splitlines():
        command = shlex.split(line.split("  #")[0])
        assert command[0] == "devicebucket"
        command = [str(ROOT / part) if part.startswith("examples/") else part for part in command]
        result = subprocess.run(
            [sys.executable, "-m", "devicebucket", *command[1:]],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, (line, result.stderr)
        outputs.append(result.stdout)
    return outputs


def test_cli_examples_run_in_order(tmp_path: Path) -> None:
    (cli,) = [b for b in blocks("sh") if "devicebucket --db sqlite:///fleet.db set" in b]
    run_block(cli, tmp_path)
    assert (tmp_path / "copy.db").exists()


def test_every_command_named_in_the_readme_exists() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "devicebucket", "--help"], capture_output=True, text=True, check=True
    ).stdout
    code = "\n".join(blocks("sh")) + "\n" + "\n".join(re.findall(r"`(devicebucket [^`]+)`", README))
    named = set(re.findall(r"devicebucket (?:--db \S+ )?(?:--token \S+ )?([a-z][a-z-]+)", code))
    assert named
    for command in named:
        assert re.search(rf"^  {command}\b", help_text, re.M), command


def test_encryption_example_runs_and_leaves_no_plaintext(tmp_path: Path) -> None:
    (block,) = [b for b in blocks("sh") if "key generate -o fleet.key" in b]
    outputs = run_block(block, tmp_path)
    assert '"password":"hunter2"' in outputs[2]  # --reveal
    assert '"password":"••••••••"' in outputs[-1]  # masked, after the rotation
    for name in ("secure.db", "secure.db-wal"):
        if (tmp_path / name).exists():
            assert b"hunter2" not in (tmp_path / name).read_bytes()


def test_job_register_example_runs(tmp_path: Path) -> None:
    (block,) = [b for b in blocks("sh") if "job register --job signup" in b]
    (output,) = run_block(block, tmp_path)
    assert '"job":"signup"' in output.replace(" ", "")
