"""The command line, through real subprocesses."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..conftest import ROOT

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ok(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fails(result: subprocess.CompletedProcess[str], message: str) -> None:
    """One line on stderr naming the problem, exit 1, no traceback."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr, result.stderr


def test_set_get_delete_clear(cli: Cli) -> None:
    assert ok(cli("get", "pixel")) == {}
    assert ok(cli("set", "pixel", "user=bob", "count:=3", 'cfg:={"a":[1]}')) == {
        "user": "bob",
        "count": 3,
        "cfg": {"a": [1]},
    }
    assert ok(cli("set", "pixel", "--json", '{"count": null}'))["count"] is None  # type: ignore[index]
    assert ok(cli("delete", "pixel", "user", "cfg")) == {"count": None}
    assert ok(cli("get", "pixel")) == {"count": None}
    assert ok(cli("clear", "pixel")) == {}


def test_job_buckets_devices_and_jobs(cli: Cli, tmp_path: Path) -> None:
    ok(cli("set", "pixel", "--job", "signup", "step:=1"))
    ok(cli("set", "pixel", "a=1"))
    devices = ok(cli("devices"))
    assert isinstance(devices, list)
    assert [(d["device"], d["keys"], d["jobs"]) for d in devices] == [("pixel", 1, ["signup"])]
    assert ok(cli("get", "pixel", "--job", "signup")) == {"step": 1}
    assert ok(cli("jobs")) == []
    result = cli(
        "run", str(ROOT / "examples" / "signup_job.py"), "--device", "pixel", "--job", "j1"
    )
    assert result.returncode == 0, result.stderr
    jobs = ok(cli("jobs"))
    assert isinstance(jobs, list)
    assert [j["job"] for j in jobs] == ["j1"]
    assert jobs[0]["bucket_schema"]["additionalProperties"] is False


def test_errors_are_one_line_and_change_nothing(cli: Cli) -> None:
    ok(cli("set", "pixel", "password=hunter2-secret"))
    fails(cli("set", "pixel", "--json", "[1]"), "data must be a JSON object")
    fails(cli("set", "pixel", "--json", "{bad"), "--json is not valid JSON")
    fails(cli("set", "pixel", "n:=nope"), "the value of key 'n' after ':=' is not valid JSON")
    fails(cli("set", "pixel", "noequals"), "expected KEY=VALUE or KEY:=JSON")
    fails(cli("get", "bad device"), "device id must be 1-256 characters")
    fails(cli("set", "pixel", "--json", '{"k": 1e999}'), "value at $.k is inf")
    assert ok(cli("get", "pixel", "--reveal")) == {"password": "hunter2-secret"}
    masked = cli("get", "pixel")
    assert "hunter2" not in masked.stdout
    assert ok(masked) == {"password": "••••••••"}


def test_secrets_are_masked_at_every_depth_and_unicode_errors_are_one_line(cli: Cli) -> None:
    nested = {"creds": {"password": "deep-secret", "user": "bob"}, "list": [{"token": "t0k"}]}
    ok(cli("set", "pixel", "--json", json.dumps(nested)))
    masked = cli("get", "pixel")
    assert "deep-secret" not in masked.stdout
    assert "t0k" not in masked.stdout
    assert ok(masked) == {
        "creds": {"password": "••••••••", "user": "bob"},
        "list": [{"token": "••••••••"}],
    }
    assert ok(cli("get", "pixel", "--reveal")) == nested
    fails(cli("set", "pixel", "--json", '{"a": "\\ud800"}'), "not valid Unicode")


def test_usage_errors_exit_two(cli: Cli) -> None:
    result = cli("set", "pixel")
    assert result.returncode == 2
    assert "give either --json OBJECT or KEY=VALUE arguments" in result.stderr


def test_export_import_into_a_fresh_file_is_identical(cli: Cli, tmp_path: Path) -> None:
    ok(cli("set", "pixel", "token=t", "n:=[1,2.5,null]"))
    ok(cli("set", "pixel", "n:=2"))
    ok(cli("set", "ios-1", "ü=ñ"))
    assert (
        cli(
            "run", str(ROOT / "examples" / "signup_job.py"), "--device", "pixel", "--job", "signup"
        ).returncode
        == 0
    )
    dump = tmp_path / "dump.jsonl"
    assert cli("export", "-o", str(dump)).returncode == 0
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert ok(cli("import", str(dump), db=fresh)) == {"imported": 9}  # 5 history entries
    again = cli("export", db=fresh)
    assert again.returncode == 0
    assert again.stdout == dump.read_text()
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert lines[0] == {"devicebucket": "export", "format": 2}
    assert {line.get("type") for line in lines[1:]} == {"job", "bucket", "history"}
    assert ok(cli("history", "pixel", db=fresh)) == ok(cli("history", "pixel"))
    # --no-history leaves it out of an export, and out of an import.
    bare = cli("export", "--no-history", db=fresh).stdout
    assert {json.loads(line).get("type") for line in bare.splitlines()[1:]} == {"job", "bucket"}
    other = f"sqlite:///{tmp_path / 'other.db'}"
    assert ok(cli("import", "--no-history", str(dump), db=other)) == {"imported": 4}
    assert ok(cli("history", "pixel", db=other)) == []


def test_import_refuses_a_malformed_file_before_writing(cli: Cli, tmp_path: Path) -> None:
    good = cli("export").stdout  # header only
    bad = tmp_path / "bad.jsonl"
    record = {
        "type": "bucket",
        "device": "d1",
        "job": None,
        "version": 1,
        "updated_at": 1.0,
        "data": {"a": 1},
    }
    bad.write_text(good + json.dumps(record) + "\n" + "{not json\n")
    fails(cli("import", str(bad)), "line 3: not valid JSON")
    bad.write_text(good + json.dumps({**record, "version": "1"}) + "\n")
    fails(cli("import", str(bad)), "line 2: field 'version' must be int")
    bad.write_text(json.dumps(record) + "\n")
    fails(cli("import", str(bad)), "not a devicebucket export")
    missing = cli("import", str(tmp_path / "missing.jsonl"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr
    assert ok(cli("devices")) == []


def test_run_exits_non_zero_with_the_traceback(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("async def main(agent):\n    raise ValueError('boom in automation')\n")
    good = tmp_path / "good.py"
    good.write_text(
        "async def main(agent):\n    await agent.utils.deviceBucket.set({'ran': True})\n"
    )
    result = cli("run", str(bad), str(good), "--device", "pixel")
    assert result.returncode == 1
    assert "automation bad.py failed:" in result.stderr
    assert "Traceback" in result.stderr
    assert "ValueError: boom in automation" in result.stderr
    assert ok(cli("get", "pixel")) == {"ran": True}
    broken = tmp_path / "broken.py"
    broken.write_text("import no_such_module_here\n")
    result = cli("run", str(broken), "--device", "pixel")
    assert result.returncode == 1
    assert "ModuleNotFoundError" in result.stderr


def test_db_from_environment_and_help(tmp_path: Path) -> None:
    import os
    import sys

    env = {**os.environ, "DEVICEBUCKET_URL": f"sqlite:///{tmp_path / 'env.db'}"}
    run = [sys.executable, "-m", "devicebucket"]
    subprocess.run([*run, "set", "d", "a=1"], env=env, check=True, capture_output=True)
    assert (tmp_path / "env.db").exists()
    help_text = subprocess.run([*run, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("get", "set", "delete", "clear", "devices", "jobs", "export", "import", "run"):
        assert f"  {command} " in help_text


def test_on_a_terminal_output_is_indented_and_export_shows_progress(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    import os
    import pty
    import sys

    for i in range(3):
        ok(cli("set", f"d{i}", "a=1"))
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    dump = tmp_path / "dump.jsonl"
    commands = [["get", "d1"], ["export", "-o", str(dump)], ["import", str(dump)]]
    for args in commands:
        process = subprocess.run(
            [sys.executable, "-m", "devicebucket", "--db", db_url, *args],
            stdout=secondary,
            stderr=secondary,
            env=env,
            timeout=60,
        )
        assert process.returncode == 0
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    screen = b"".join(chunks).decode()
    assert '{\r\n  "a": "1"\r\n}' in screen  # indented JSON on a terminal
    assert "exporting" in screen
    assert "reading" in screen
    assert len(dump.read_text().splitlines()) == 7  # the header, 3 buckets, 3 history entries


def test_history_diff_and_restore(cli: Cli) -> None:
    ok(cli("set", "pixel", "a=1", "password=s3cret-one"))
    ok(cli("set", "pixel", "a:=2", "password=s3cret-two"))
    ok(cli("delete", "pixel", "a"))
    changes = ok(cli("history", "pixel"))
    assert isinstance(changes, list)
    assert [(c["version"], c["actor"], c["removed"]) for c in changes] == [
        (3, "local via cli", ["a"]),
        (2, "local via cli", []),
        (1, "local via cli", []),
    ]
    assert changes[1]["changed"] == ["a", "password"]
    assert changes[0]["at"].endswith("Z")

    masked = cli("diff", "pixel", "1", "2")
    assert "s3cret" not in masked.stdout
    assert ok(masked) == {
        "added": {},
        "changed": {"a": {"from": "1", "to": 2}, "password": "••••••••"},
        "removed": {},
    }
    revealed = ok(cli("diff", "pixel", "1", "2", "--reveal"))
    assert revealed["changed"]["password"] == {"from": "s3cret-one", "to": "s3cret-two"}  # type: ignore[index]

    assert ok(cli("restore", "pixel", "--version", "1")) == {"a": "1", "password": "••••••••"}
    newest = ok(cli("history", "pixel", "--limit", "1"))
    assert newest[0]["actor"] == "local via cli (restore of version 1)"  # type: ignore[index]
    fails(cli("restore", "pixel", "--version", "2", "--expected-version", "1"), "version conflict")
    fails(cli("diff", "pixel", "1", "77"), "version 77 of this bucket is not kept")
    assert ok(cli("get", "pixel", "--reveal")) == {"a": "1", "password": "s3cret-one"}


def test_job_register_takes_a_json_schema_or_an_automation(cli: Cli, tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["step"]}))
    job = ok(cli("job", "register", "--job", "signup", str(schema)))
    assert job["bucket_schema"] == {"type": "object", "required": ["step"]}  # type: ignore[index]
    assert [j["job"] for j in ok(cli("jobs"))] == ["signup"]  # type: ignore[attr-defined]
    automation = str(ROOT / "examples" / "signup_job.py")
    fails(cli("job", "register", "--job", "signup", automation), "different bucket schema")
    replaced = ok(cli("job", "register", "--job", "signup", automation, "--replace-schema"))
    assert replaced["bucket_schema"]["additionalProperties"] is False  # type: ignore[index]
    assert ok(cli("job", "register", "--job", "plain"))["bucket_schema"] is None  # type: ignore[index]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    fails(cli("job", "register", "--job", "x", str(bad)), "bad.json: not a JSON file")


#: What a command on a local store never needs: the server (uvicorn, Starlette, Jinja2), the
#: HTTP client (httpx), JSON Schema (for job schemas), progress bars (rich).
UNNEEDED = ("uvicorn", "starlette", "jinja2", "httpx", "jsonschema", "rich")


def test_a_command_on_a_local_store_loads_only_what_it_needs(db_url: str) -> None:
    # Loading them took most of a command's start-up (half a second): each loads when used.
    program = (
        "import sys\n"
        "from devicebucket.entry.cli import main\n"
        "try:\n"
        f"    main(['--db', {db_url!r}, 'set', 'pixel-1', 'a=1'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(run.stdout) == {"a": "1"}
    loaded = set(ast.literal_eval(run.stderr.strip().splitlines()[-1]))
    assert "devicebucket" in loaded
    assert loaded.isdisjoint(UNNEEDED), loaded & set(UNNEEDED)
