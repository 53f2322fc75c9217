"""Settings from flags and the environment: where they may go, and one line when bad."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from devicebucket.backends.tables import MIGRATION_STEPS

from ..conftest import ROOT


def devicebucket(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "devicebucket", *args],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_global_options_may_follow_the_subcommand(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    key = tmp_path / "fleet.key"
    assert devicebucket("key", "generate", "-o", str(key)).returncode == 0
    written = devicebucket("set", "pixel", "a=1", "--db", url, "--key-file", str(key))
    assert written.returncode == 0, written.stderr
    assert json.loads(devicebucket("get", "pixel", f"--db={url}", "--key-file", str(key)).stdout)
    assert devicebucket("--key-file", str(key), "get", "pixel", "--db", url).returncode == 0
    # Without the key, the encrypted store says so: the flag after the subcommand was used.
    assert "encrypted" in devicebucket("get", "pixel", "--db", url).stderr
    automation = str(ROOT / "examples" / "credentials.py")
    ran = devicebucket("run", automation, "--device", "pixel", "--db", url, "--key-file", str(key))
    assert ran.returncode == 0, ran.stderr
    listed = devicebucket("token", "list", "--db", url, "--key-file", str(key))
    assert listed.returncode == 0, listed.stderr
    # After `--`, an argument is the command's own, never the global option.
    after = devicebucket("get", "--db", url, "--key-file", str(key), "--", "--db")
    assert after.returncode == 0, after.stderr
    assert after.stdout == "{}\n"  # the bucket of device "--db", never written


COMMANDS = [
    ["get", "d"],
    ["set", "d", "a=1"],
    ["delete", "d", "a"],
    ["clear", "d"],
    ["history", "d"],
    ["diff", "d", "0", "1"],
    ["restore", "d", "--version", "1"],
    ["devices"],
    ["jobs"],
    ["info"],
    ["run", str(ROOT / "examples" / "credentials.py"), "--device", "d"],
    ["serve", "--port", "0"],
    ["export"],
    ["import", str(ROOT / "README.md")],
    ["token", "list"],
    ["migrate-db"],
    ["copy", "--to", "sqlite:///copy.db"],
    ["job", "register", "--job", "j"],
    ["key", "rotate", "--new-key-file", "new.key"],
]
BAD_SETTINGS = [
    ("DEVICEBUCKET_HISTORY_VERSIONS", "-1"),
    ("DEVICEBUCKET_HISTORY_VERSIONS", "abc"),
    ("DEVICEBUCKET_MAX_BUCKET_BYTES", "0"),
    ("DEVICEBUCKET_MAX_DEPTH", "x"),
    ("DEVICEBUCKET_HISTORY_ENTRIES", "5"),
    ("DEVICEBUCKET_DEVICE_QUOTA_BYTES", "-3"),
    ("DEVICEBUCKET_ENCRYPTION_KEY", "short"),
    ("DEVICEBUCKET_KEY_FILE", "/nonexistent/fleet.key"),
    ("DEVICEBUCKET_URL", "ftp://nowhere"),
]


def test_every_command_refuses_every_bad_setting_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "new.key").write_text(devicebucket("key", "generate").stdout)
    (tmp_path / "new.key").chmod(0o600)
    url = f"sqlite:///{tmp_path / 'fleet.db'}"

    def attempt(command: list[str], name: str, value: str) -> str | None:
        env = {"DEVICEBUCKET_URL": url, name: value}
        result = devicebucket(*command, env=env, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        if result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr:
            named = name in lines[0] or "store URL" in lines[0] or "key file" in lines[0]
            if named or "encryption key" in lines[0]:
                return None
        return f"{command[0]} with {name}={value}: exit {result.returncode}: {result.stderr!r}"

    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(attempt, command, name, value)
            for command in COMMANDS
            for name, value in BAD_SETTINGS
        ]
        problems = [p for f in futures if (p := f.result()) is not None]
    assert problems == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--db", "ftp://nowhere"], "unsupported store URL"),
        (["--key-file", "/nonexistent/fleet.key"], "cannot read key file"),
        (["--no-such-flag"], "No such option '--no-such-flag'. (see devicebucket get --help)"),
    ],
)
def test_a_bad_flag_is_one_line_with_exit_status_2(flags: list[str], message: str) -> None:
    result = devicebucket("get", "d", *flags)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr


def test_serve_on_a_port_in_use_is_one_line_and_exit_status_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = devicebucket(
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "serve",
            "--port",
            port,
            env={"DEVICEBUCKET_ADMIN_TOKEN": "a-long-enough-admin-token-for-this-test"},
        )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_reads_create_nothing_and_info_says_what_is_there(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    missing = devicebucket("get", "d", "--db", f"sqlite:///{tmp_path / 'no' / 'dir' / 'x.db'}")
    assert missing.returncode == 1
    assert "the directory" in missing.stderr
    assert "does not exist" in missing.stderr
    assert not (tmp_path / "no").exists()
    for read in (["get", "d"], ["devices"], ["jobs"], ["history", "d"], ["export"], ["info"]):
        assert devicebucket(*read, "--db", url).returncode == 0, read
    assert not (tmp_path / "fleet.db").exists()
    assert json.loads(devicebucket("info", "--db", url).stdout) == {"url": url, "exists": False}
    first = devicebucket("set", "d", "a=1", "--db", url)
    assert first.stderr == f"devicebucket: created a new store at {tmp_path / 'fleet.db'}\n"
    assert devicebucket("set", "d", "b=2", "--db", url).stderr == ""
    info = json.loads(devicebucket("info", "--db", url).stdout)
    assert info["exists"] is True
    assert info["devices"] == 1
    assert info["jobs"] == 0
    assert info["schema_version"] == len(MIGRATION_STEPS)
    assert info["encrypted"] is False
    assert info["size_bytes"] > 0


def test_a_read_of_an_unregistered_job_says_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    result = devicebucket("get", "pixel-7-01", "--job", "nosuchjob", "--db", url)
    assert result.stdout == "{}\n"
    assert "no job 'nosuchjob' is registered" in result.stderr
    assert devicebucket("job", "register", "--job", "known", "--db", url).returncode == 0
    assert devicebucket("get", "pixel-7-01", "--job", "known", "--db", url).stderr == ""


def test_version_and_license() -> None:
    from importlib.metadata import version

    result = devicebucket("--version")
    assert result.returncode == 0
    assert result.stdout == f"devicebucket, version {version('devicebucket')}\n"
    assert "MIT License" in (ROOT / "LICENSE").read_text()


def test_help_shows_and_a_key_can_be_made_whatever_the_settings(tmp_path: Path) -> None:
    key = tmp_path / "fleet.key"
    env = {"DEVICEBUCKET_KEY_FILE": str(key), "DEVICEBUCKET_MAX_DEPTH": "x"}
    shown = devicebucket("get", "--help", env=env)
    assert shown.returncode == 0
    assert "Print a bucket" in shown.stdout
    made = devicebucket("key", "generate", "-o", str(key), env={"DEVICEBUCKET_KEY_FILE": str(key)})
    assert made.returncode == 0, made.stderr
    assert (
        devicebucket("get", "d", "--db", f"sqlite:///{tmp_path / 'x.db'}", env=env).returncode == 2
    )
