"""``devicebucket watch`` and ``devicebucket wait``, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_watch_prints_one_json_line_per_change_secrets_masked(cli: Cli) -> None:
    assert cli("set", "pixel-1", "password=hunter2", "step:=1").returncode == 0
    assert cli("set", "pixel-1", "step:=2").returncode == 0
    done = cli("watch", "pixel-1", "--since", "0", "--count", "2")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["version"] for line in lines] == [1, 2]
    assert lines[0]["changed"]["step"] == 1
    assert lines[0]["changed"]["password"] != "hunter2"
    assert "hunter2" not in done.stdout
    assert lines[1]["changed"] == {"step": 2}
    revealed = cli("watch", "pixel-1", "--since", "0", "--count", "1", "--reveal")
    assert json.loads(revealed.stdout)["changed"]["password"] == "hunter2"


def test_watch_follows_writes_made_while_it_runs(cli: Cli, db_url: str) -> None:
    assert cli("set", "pixel-1", "a=1").returncode == 0  # the store exists
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "devicebucket", "--db", db_url, "watch", "pixel-1", "--count", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # The watcher starts after version 1: write until it has seen a change.
        for n in range(200):
            assert cli("set", "pixel-1", f"n:={n}").returncode == 0
            if watcher.poll() is not None:
                break
        out, _ = watcher.communicate(timeout=60)
    finally:
        watcher.kill()
    assert watcher.returncode == 0
    line = json.loads(out)
    assert line["version"] >= 2
    assert set(line["changed"]) == {"n"}


def test_wait_prints_the_bucket_once_the_key_is_there(cli: Cli) -> None:
    assert cli("set", "pixel-1", "otp=4921").returncode == 0
    done = cli("wait", "pixel-1", "otp", "--timeout", "5")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"otp": "4921"}


def test_wait_that_times_out_is_one_line_and_status_one(cli: Cli) -> None:
    assert cli("set", "pixel-1", "a=1").returncode == 0
    done = cli("wait", "pixel-1", "otp", "--timeout", "0.3")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "'otp' did not hold within 0.3 s" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_watch_arguments_are_one_line(cli: Cli) -> None:
    for args in (
        ("watch", "../x"),
        ("watch", "p", "--since", "-1"),
        ("wait", "p", "k", "--timeout", "x"),
    ):
        done = cli(*args)
        assert done.returncode in (1, 2), args
        assert "Traceback" not in done.stderr
        assert done.stderr.strip().count("\n") == 0, done.stderr


def test_set_with_expire_in_and_get_shows_the_time_left(cli: Cli) -> None:
    done = cli("set", "pixel-1", "otp=4921", "phone=+1555", "--expire-in", "otp=300")
    assert done.returncode == 0, done.stderr
    shown = json.loads(cli("get", "pixel-1", "--expiries").stdout)
    assert shown["bucket"] == {"otp": "4921", "phone": "+1555"}
    assert set(shown["expires"]) == {"otp"}
    assert 295 <= shown["expires"]["otp"]["seconds_left"] <= 300
    assert shown["expires"]["otp"]["at"].endswith("Z")
    cli("set", "pixel-1", "otp=4921")  # again without --expire-in: no longer expires
    assert json.loads(cli("get", "pixel-1", "--expiries").stdout)["expires"] == {}


def test_a_bad_expire_in_is_one_line_and_writes_nothing(cli: Cli) -> None:
    for bad in ("otp", "otp=soon", "other=30", "otp=-1", "otp=nan"):
        done = cli("set", "pixel-1", "otp=1", "--expire-in", bad)
        assert done.returncode == 1, (bad, done.stderr)
        assert done.stderr.strip().count("\n") == 0
        assert "expire" in done.stderr
    assert json.loads(cli("get", "pixel-1").stdout) == {}
