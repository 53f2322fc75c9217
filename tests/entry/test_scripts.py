"""JavaScript and TypeScript automations under ``devicebucket run``: the seed page's examples,
verbatim, on every store; concurrency with Python automations; failures reported as a Python
automation's are; TypeScript through Node's type stripping."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from devicebucket import InvalidValueError, Store
from devicebucket.entry.runner import load_automation, run_automations
from devicebucket.entry.scripts import NODE_ENV, Script, ScriptExitError

from ..conftest import ROOT, requires
from ..servers import ADMIN, ServeProcess

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
SEED = ROOT / "clients" / "js" / "test" / "seed-examples.ts"
# A Node.js that strips TypeScript types, installed by .ci/run (npm ci in tests/node22).
NODE22 = ROOT / "tests" / "node22" / "node_modules" / ".bin" / "node"

# The seed page leaves performAccountSetup to the reader: the tests define it.
ACCOUNT_SETUP = (
    'async function performAccountSetup() { return { token: "tok-setup", username: "setup@x" }; }\n'
)


def require_node22() -> None:
    requires(NODE22.exists(), f"{NODE22} is missing (npm ci --prefix tests/node22)")


@pytest.fixture(autouse=True)
def _node() -> None:
    requires(shutil.which("node") is not None, "node is not installed")


def seed_examples() -> dict[str, str]:
    """The seed page's examples, by name, as the client's type-checked file holds them."""
    found = re.findall(r"// example: (\S+)\n(.*?)// end example\n", SEED.read_text(), re.S)
    return {name: body for name, body in found}


def script(tmp_path: Path, name: str, source: str) -> Script:
    path = tmp_path / name
    path.write_text(source)
    automation = load_automation(path)
    assert isinstance(automation, Script)
    return automation


def test_the_type_checked_file_holds_every_seed_example() -> None:
    assert list(seed_examples()) == [
        "get-and-log",
        "reuse-or-login",
        "save-credentials",
        "merge-twice",
        "shared-credentials",
    ]


async def test_seed_examples_run_verbatim_on_every_store(
    store: Store, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    examples = seed_examples()

    async def run(name: str, device: str, prefix: str = "") -> str:
        automation = script(tmp_path, f"{name}.mjs", prefix + examples[name])
        results = await run_automations(store, [automation], device)
        assert [r.error for r in results] == [None]
        return capfd.readouterr().out

    assert await run("get-and-log", "pixel-1") == "Device bucket: {}\n"
    assert await run("reuse-or-login", "pixel-1") == "No credentials found, performing login...\n"
    before = time.time() * 1000
    saved = await run("save-credentials", "pixel-1")
    assert saved.startswith("Credentials saved: {\n  accountToken: 'abc123xyz',")
    stored = (await store.get("pixel-1")).data
    assert stored["accountToken"] == "abc123xyz"
    assert stored["username"] == "user@example.com"
    assert before <= stored["loginTimestamp"] <= time.time() * 1000
    assert await run("reuse-or-login", "pixel-1") == "Reusing stored credentials\n"
    assert "accountToken: 'abc123xyz'" in await run("get-and-log", "pixel-1")

    assert await run("merge-twice", "pixel-2") == ""
    assert sorted((await store.get("pixel-2")).data) == [
        "accountToken",
        "appVersion",
        "lastChecked",
        "username",
    ]

    assert await run("shared-credentials", "pixel-3", ACCOUNT_SETUP) == ""
    stored = (await store.get("pixel-3")).data
    assert (stored["accountToken"], stored["username"]) == ("tok-setup", "setup@x")
    assert isinstance(stored["setupDate"], int)
    again = await run("shared-credentials", "pixel-3", ACCOUNT_SETUP)
    assert again == "Using stored credentials for: setup@x\n"


async def test_fifty_parallel_sets_from_javascript_lose_none(store: Store, tmp_path: Path) -> None:
    automation = script(
        tmp_path,
        "fifty.mjs",
        "const keys = Array.from({ length: 50 }, (_, i) => `key${i}`);\n"
        "const results = await Promise.all(\n"
        "  keys.map((key, i) => agent.utils.deviceBucket.set({ [key]: i })),\n"
        ");\n"
        "if (!results.every((r) => r.success)) throw new Error('a set failed');\n",
    )
    results = await run_automations(store, [automation], "pixel-50")
    assert [r.error for r in results] == [None]
    assert (await store.get("pixel-50")).data == {f"key{i}": i for i in range(50)}


async def test_python_and_javascript_run_concurrently_on_one_device(
    store: Store, tmp_path: Path
) -> None:
    """Each writes its key, then waits until it sees the other's: were they run one after the
    other, the first would wait in vain and fail."""
    js = script(
        tmp_path,
        "wait.mjs",
        "await agent.utils.deviceBucket.set({ js: 'here' });\n"
        "const deadline = Date.now() + 30_000;\n"
        "for (;;) {\n"
        "  const r = await agent.utils.deviceBucket.get();\n"
        "  if (r.success && r.deviceBucket.py) break;\n"
        "  if (Date.now() > deadline) throw new Error('never saw the Python automation');\n"
        "  await new Promise((resolve) => setTimeout(resolve, 10));\n"
        "}\n",
    )
    python = tmp_path / "wait.py"
    python.write_text(
        "import asyncio, time\n"
        "async def main(agent):\n"
        "    await agent.utils.deviceBucket.set({'py': 'here'})\n"
        "    deadline = time.monotonic() + 30\n"
        "    while not (await agent.utils.deviceBucket.get())['deviceBucket'].get('js'):\n"
        "        assert time.monotonic() < deadline, 'never saw the JavaScript automation'\n"
        "        await asyncio.sleep(0.01)\n"
    )
    automations = [load_automation(python, 0), js]
    results = await run_automations(store, automations, "pixel-both")
    assert [r.error for r in results] == [None, None]
    assert (await store.get("pixel-both")).data == {"js": "here", "py": "here"}


@pytest.mark.parametrize("name", ["signup.mjs", "signup.js"])  # .js: an ES module by syntax
async def test_a_job_automation_registers_its_exported_schema(
    store: Store, tmp_path: Path, capfd: pytest.CaptureFixture[str], name: str
) -> None:
    schema = {"type": "object", "properties": {"step": {"type": "integer"}}}
    automation = script(
        tmp_path,
        name,
        f"export const BUCKET_SCHEMA = {json.dumps(schema)};\n"
        "console.log(JSON.stringify(await agent.utils.bucket.set({ step: 1 })));\n"
        "console.log(JSON.stringify(await agent.utils.bucket.set({ step: 'two' })));\n"
        "const next = await agent.utils.bucket.update((b) => ({ step: b.step + 1 }));\n"
        "console.log(JSON.stringify(next));\n",
    )
    results = await run_automations(store, [automation], "pixel-job", "signup")
    assert [r.error for r in results] == [None]
    ok, refused, updated = map(json.loads, capfd.readouterr().out.splitlines())
    assert ok == {"success": True, "bucket": {"step": 1}}
    assert refused["success"] is False
    assert "schema of job 'signup' at $.step" in refused["error"]
    assert updated == {"success": True, "bucket": {"step": 2}}
    job = await store.get_job("signup")
    assert job is not None
    assert (job.schema, job.automation) == (schema, name)
    if store.credential is not None:  # a store opened directly: the run's own credential
        (change, *_) = await store.history("pixel-job", job="signup")
        assert change.actor == f"local via automation {name} in job signup"


def node_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    return subprocess.run(
        [sys.executable, "-m", "devicebucket", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        cwd=tmp_path,
        timeout=120,
    )


def test_failures_are_reported_as_a_python_automation_s(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "boom.mjs").write_text(
        "await agent.utils.deviceBucket.set({ before: 1 });\nthrow new Error('boom');\n"
    )
    (tmp_path / "boom.py").write_text("async def main(agent):\n    raise RuntimeError('boom')\n")
    (tmp_path / "exits.mjs").write_text("process.exit(3);\n")
    (tmp_path / "broken.mjs").write_text("const = ;\n")
    ran = node_cli(tmp_path, "--db", db_url, "run", "boom.mjs", "boom.py", "--device", "d")
    assert ran.returncode == 1
    assert "automation boom.mjs failed:\nError: boom\n    at file://" in ran.stderr
    assert f"{tmp_path / 'boom.mjs'}:2:7" in ran.stderr  # the line numbers are the file's
    assert "automation boom.py failed:\nTraceback" in ran.stderr
    exits = node_cli(tmp_path, "--db", db_url, "run", "exits.mjs", "--device", "d")
    assert (exits.returncode, exits.stderr) == (
        1,
        "automation exits.mjs: node ended with status 3\n",
    )
    broken = node_cli(tmp_path, "--db", db_url, "run", "broken.mjs", "--device", "d")
    assert broken.returncode == 1
    assert "automation broken.mjs failed:\n" in broken.stderr
    assert "SyntaxError" in broken.stderr
    got = node_cli(tmp_path, "--db", db_url, "get", "d")
    assert json.loads(got.stdout) == {"before": 1}


def test_the_automation_gets_its_agent_not_the_store_s_secrets(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "env.mjs").write_text(
        "console.log(Object.keys(process.env).filter((k) => k.startsWith('DEVICEBUCKET_'))"
        ".sort().join(' '));\n"
    )
    ran = node_cli(
        tmp_path,
        "--db",
        db_url,
        "run",
        "env.mjs",
        "--device",
        "d",
        env={"DEVICEBUCKET_ADMIN_TOKEN": ADMIN, "DEVICEBUCKET_ENCRYPTION_KEY": KEY},
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [
        "DEVICEBUCKET_AGENT_URL",
        "DEVICEBUCKET_AUTOMATION",
        "DEVICEBUCKET_DEVICE",
        "DEVICEBUCKET_JOB",
        "DEVICEBUCKET_REPLACE_SCHEMA",
    ]


def test_seed_example_against_a_server_with_a_device_token(tmp_path: Path) -> None:
    examples = seed_examples()
    (tmp_path / "save.mjs").write_text(examples["save-credentials"])
    (tmp_path / "reuse.mjs").write_text(examples["reuse-or-login"])
    with ServeProcess(f"sqlite:///{tmp_path / 'server.db'}") as server:
        issued = httpx.post(
            f"{server.url}/v1/tokens",
            json={"device": "pixel-7-01"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()

        def run(name: str) -> subprocess.CompletedProcess[str]:
            return node_cli(
                tmp_path,
                "--db",
                server.url,
                "--token",
                issued["token"],
                "run",
                name,
                "--device",
                "pixel-7-01",
            )

        assert run("reuse.mjs").stdout == "No credentials found, performing login...\n"
        assert run("save.mjs").stdout.startswith("Credentials saved: {")
        assert run("reuse.mjs").stdout == "Reusing stored credentials\n"
        history = httpx.get(
            f"{server.url}/v1/devices/pixel-7-01/bucket/history",
            headers={"Authorization": f"Bearer {ADMIN}"},
        ).json()
    assert history["changes"][0]["actor"] == (
        f"device token {issued['id']} via automation save.mjs"
    )


def node_version(node: str) -> tuple[int, int]:
    shown = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    major, minor = re.match(r"v(\d+)\.(\d+)", shown).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


TYPESCRIPT = (
    "export const BUCKET_SCHEMA: object = { type: 'object' };\n"
    "interface Step { n: number }\n"
    "const step: Step = { n: 3 };\n"
    "const result = await agent.utils.bucket.set(step);\n"
    "console.log(result.success ? `stored ${result.bucket.n}` : result.error);\n"
)


def test_typescript_runs_where_node_strips_types(tmp_path: Path, db_url: str) -> None:
    require_node22()
    (tmp_path / "step.ts").write_text(TYPESCRIPT)
    ran = node_cli(
        tmp_path,
        *("--db", db_url, "run", "step.ts", "--device", "d", "--job", "ts"),
        env={NODE_ENV: str(NODE22)},
    )
    assert (ran.returncode, ran.stdout) == (0, "stored 3\n"), ran.stderr
    assert "Warning" not in ran.stderr  # the type stripping's notice is not the user's


def test_typescript_on_an_older_node_is_one_line(tmp_path: Path, db_url: str) -> None:
    node = shutil.which("node")
    assert node is not None
    if node_version(node) >= (22, 6):
        pytest.skip("this machine's node strips types itself")  # pragma: no cover
    (tmp_path / "step.ts").write_text(TYPESCRIPT)
    ran = node_cli(tmp_path, "--db", db_url, "run", "step.ts", "--device", "d")
    assert ran.returncode != 0
    [line] = ran.stderr.splitlines()
    assert "step.ts: TypeScript automations need Node.js 22.6 or newer" in line
    assert "install it from https://nodejs.org" in line
    assert not (tmp_path / "fleet.db").exists()  # refused before anything ran


def test_no_node_is_one_line(tmp_path: Path, db_url: str) -> None:
    (tmp_path / "a.mjs").write_text("console.log('never');\n")
    ran = node_cli(
        tmp_path,
        *("--db", db_url, "run", "a.mjs", "--device", "d"),
        env={NODE_ENV: str(tmp_path / "no-such-node")},
    )
    assert ran.returncode != 0
    [line] = ran.stderr.splitlines()
    assert "JavaScript automations need Node.js 20 or newer" in line
    assert "apt-get install nodejs" in line


def test_a_script_exit_error_says_how_node_ended() -> None:
    assert str(ScriptExitError("a.mjs", 3)) == "automation a.mjs: node ended with status 3"
    assert str(ScriptExitError("a.mjs", -9)) == "automation a.mjs: node was killed by signal 9"
    assert ScriptExitError("a.mjs", 1).reported  # the preload said why
    assert not ScriptExitError("a.mjs", 3).reported


def test_the_typescript_job_example_counts_its_attempts(tmp_path: Path, db_url: str) -> None:
    require_node22()
    example = str(ROOT / "examples" / "signup_job.ts")
    outputs = [
        node_cli(
            tmp_path,
            *("--db", db_url, "run", example, "--device", "pixel-7-01", "--job", "signup"),
            env={NODE_ENV: str(NODE22)},
        ).stdout
        for _ in range(2)
    ]
    assert outputs == [
        "signup attempt 1 on pixel-7-01\n",
        "signup attempt 2 on pixel-7-01\n",
    ]
    jobs = json.loads(node_cli(tmp_path, "--db", db_url, "jobs").stdout)
    assert jobs[0]["bucket_schema"]["properties"]["attempts"] == {"type": "integer", "minimum": 0}


async def test_a_bad_device_id_is_refused_before_anything_runs(
    store: Store, tmp_path: Path
) -> None:
    automation = script(tmp_path, "a.mjs", "await agent.utils.deviceBucket.set({ ran: true });\n")
    with pytest.raises(InvalidValueError, match="device id"):
        await run_automations(store, [automation], "not a device id!")
    with pytest.raises(InvalidValueError, match="job id"):
        await run_automations(store, [automation], "pixel", "not a job!")
    assert [d.device for d in await store.devices()] == []


async def test_a_hashbang_file_keeps_its_schema_and_its_line_numbers(
    store: Store, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    automation = script(
        tmp_path,
        "tool.mjs",
        "#!/usr/bin/env node\n"
        "export const BUCKET_SCHEMA = { type: 'object', required: ['ok'] };\n"
        "console.log(JSON.stringify(await agent.utils.bucket.set({ ok: true })));\n"
        "console.log(new Error('here').stack.split('\\n')[1].trim());\n",
    )
    results = await run_automations(store, [automation], "pixel-hb", "tool")
    assert [r.error for r in results] == [None]
    stored, where = capfd.readouterr().out.splitlines()
    assert json.loads(stored) == {"success": True, "bucket": {"ok": True}}
    assert where.endswith("tool.mjs:4:13")  # the file's own line and column
    job = await store.get_job("tool")
    assert job is not None
    assert job.schema == {"type": "object", "required": ["ok"]}


async def test_a_javascript_run_registers_its_job_as_a_python_run_does(
    store: Store, tmp_path: Path
) -> None:
    """Before anything runs, even when the automation never uses the job bucket."""
    automation = script(tmp_path, "quiet.mjs", "console.log('no bucket used');\n")
    results = await run_automations(store, [automation], "pixel-q", "quiet")
    assert [r.error for r in results] == [None]
    job = await store.get_job("quiet")
    assert job is not None
    assert (job.automation, job.schema) == ("quiet.mjs", None)
