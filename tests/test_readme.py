"""The README's examples run as written (the server snippet excepted: it binds port 8787)."""

from __future__ import annotations

import http.server
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import ClassVar

import httpx

from .conftest import ROOT, requires
from .servers import ADMIN, ServeProcess

README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def run_python(marker: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the README's Python block that holds ``marker``, in ``cwd``."""
    (python,) = [b for b in blocks("python") if marker in b]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    return subprocess.run(
        [sys.executable, "-c", python], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_python_example_runs(tmp_path: Path) -> None:
    result = run_python("asyncio.run(demo())", tmp_path)
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


def test_javascript_run_example_runs(tmp_path: Path) -> None:
    (block,) = [b for b in blocks("sh") if "run examples/credentials.mjs" in b]
    first, both = run_block(block, tmp_path)
    assert first.splitlines() == [
        "No credentials found, performing login...",
        "Credentials saved for: pixel-7-01@example.com",
    ]
    assert sorted(both.splitlines()) == [
        "Reusing stored credentials for: pixel-7-01@example.com",
        "Using stored credentials for: pixel-7-01@example.com",
    ]


class _LoginPage(http.server.BaseHTTPRequestHandler):
    """A login page that signs the browser in with a cookie, noting the cookies it came with."""

    cookies_seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        if self.path == "/login":  # not the browser's /favicon.ico
            self.cookies_seen.append(self.headers.get("Cookie"))
        self.send_response(200)
        self.send_header("Set-Cookie", "session=signed-in-7; Path=/")
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p>signed in</p>")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_playwright_example_keeps_the_cookies_in_the_device_bucket(tmp_path: Path) -> None:
    """The README's Playwright script, run twice with the client from clients/js, Debian's
    Chromium and a real server: the second run finds the first run's cookies."""
    client = ROOT / "clients" / "js"
    requires(
        (client / "node_modules" / "playwright-core").exists() and shutil.which("node") is not None,
        "node or clients/js/node_modules is missing (cd clients/js && npm ci)",
    )
    requires(Path("/usr/bin/chromium").exists(), "/usr/bin/chromium is missing")
    (block,) = blocks("js")
    # In the client's folder, so that `devicebucket` and `playwright-core` resolve there.
    script = Path(tempfile.mkdtemp(dir=client, prefix=".readme-")) / "login.mjs"
    script.write_text(block)
    page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _LoginPage)
    threading.Thread(target=page.serve_forever, daemon=True).start()
    try:
        with ServeProcess(f"sqlite:///{tmp_path / 'server.db'}") as server:
            token = httpx.post(
                f"{server.url}/v1/tokens",
                json={"device": "browser-profile-7"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ).json()["token"]
            env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
            env |= {
                "DEVICEBUCKET_URL": server.url,
                "DEVICEBUCKET_TOKEN": token,
                "LOGIN_PAGE": f"http://127.0.0.1:{page.server_address[1]}/login",
            }
            for _ in range(2):
                ran = subprocess.run(
                    ["node", script], env=env, capture_output=True, text=True, timeout=120
                )
                assert ran.returncode == 0, ran.stderr
            stored = httpx.get(
                f"{server.url}/v1/devices/browser-profile-7/bucket",
                headers={"Authorization": f"Bearer {ADMIN}"},
            ).json()
    finally:
        page.shutdown()
        page.server_close()
        shutil.rmtree(script.parent)
    [cookie] = stored["cookies"]
    assert (cookie["name"], cookie["value"]) == ("session", "signed-in-7")
    # The second run's browser came signed in, with the cookies the first run stored.
    assert _LoginPage.cookies_seen == [None, "session=signed-in-7"]


def test_live_example_runs(tmp_path: Path) -> None:
    result = run_python("asyncio.run(live())", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "{'success': True, 'deviceBucket': {'otp': '4921'}}"
    assert lines[1] == "1 local via automation sms.py {'otp': '4921'} []"
