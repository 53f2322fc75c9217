"""``devicebucket serve`` as an operator runs it: workers, tokens, TLS, logs, remote CLI."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from devicebucket import HTTPStore

from ..backends.test_concurrency import WORKERS
from ..conftest import ROOT
from ..servers import ADMIN, ServeProcess

Cli = Callable[..., subprocess.CompletedProcess[str]]


def clients(commands: list[list[str]], server: ServeProcess, token: str) -> None:
    """Run the worker clients against ``server``; on a failure, show its log too (why a
    connection was lost, say)."""
    url = server.url
    env = {**os.environ, "DEVICEBUCKET_TOKEN": token}
    processes = [
        subprocess.Popen(
            [sys.executable, WORKERS, *c[:1], url, *c[1:]],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    codes = [p.returncode for p in processes]
    assert codes == [0] * len(processes), (errors, server.log.read_text()[-4000:])


def test_two_workers_on_one_file_lose_no_write(db_url: str) -> None:
    with ServeProcess(db_url, "--workers", "2", "--no-access-log") as server:
        clients([["set-distinct", "pixel", f"c{c}", "300", "5"] for c in range(8)], server, ADMIN)
        clients([["increment", "counter", "25"] for _ in range(4)], server, ADMIN)

        async def check() -> None:
            store = HTTPStore(server.url, token=ADMIN)
            pixel = await store.get("pixel")
            counter = await store.get("counter")
            await store.close()
            assert pixel.data == {f"c{c}-{i}": i for c in range(8) for i in range(300)}
            assert pixel.version == 2400
            assert counter.data == {"n": 100}
            assert counter.version == 100

        asyncio.run(check())


def test_admin_token_is_made_once_stored_hashed_and_never_logged(tmp_path: Path, cli: Cli) -> None:
    db_url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with ServeProcess(db_url, admin=None) as server:
        first_log = server.log.read_text()
    lines = [line for line in first_log.splitlines() if line.startswith("admin token (shown once")]
    assert len(lines) == 1
    admin = lines[0].rsplit(" ", 1)[1]
    with ServeProcess(db_url, admin=None) as server:
        assert "admin token" not in server.log.read_text()
        headers = {"Authorization": f"Bearer {admin}"}
        device = httpx.post(f"{server.url}/v1/devices/pixel/tokens", headers=headers).json()[
            "token"
        ]
        response = httpx.patch(
            f"{server.url}/v1/devices/pixel/bucket",
            json={"password": "value-that-must-not-be-logged"},
            headers={"Authorization": f"Bearer {device}"},
        )
        assert response.status_code == 200
        httpx.get(
            f"{server.url}/v1/devices/other/bucket", headers={"Authorization": f"Bearer {device}"}
        )
        log = server.log.read_text()
    assert "PATCH /v1/devices/pixel/bucket" in log  # the access log is on
    for secret in (admin, device, "value-that-must-not-be-logged"):
        assert secret not in log
    files = [tmp_path / name for name in ("fresh.db", "fresh.db-wal", "fresh.db-shm")]
    stored = b"".join(p.read_bytes() for p in files if p.exists())
    for token in (admin, device):  # tokens are stored only as hashes
        assert token.encode() not in stored


def test_refuses_plain_http_on_a_public_address(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "devicebucket", "--db", db_url, "serve", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to serve plain HTTP on non-loopback address 0.0.0.0" in result.stderr


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serves_tls_when_given_a_certificate(db_url: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with ServeProcess(db_url, tls=(cert, key)) as server:
        assert server.url.startswith("https://")

        async def use() -> None:
            store = HTTPStore(server.url, token=ADMIN, verify=str(cert))
            assert (await store.merge("tls-dev", {"a": 1})).data == {"a": 1}
            await store.close()

        asyncio.run(use())
        with httpx.Client(base_url=server.url, verify=server.verify) as client:
            signed_in = client.post("/ui/login", data={"token": ADMIN})
            assert signed_in.status_code == 303
            assert "Secure" in signed_in.headers["set-cookie"]


def test_dashboard_sessions_work_across_workers(db_url: str) -> None:
    """``serve --workers 2`` gives both workers one session secret: a session signed by one
    worker is accepted by the other, whichever answers."""
    with ServeProcess(db_url, "--workers", "2") as server:
        with httpx.Client(base_url=server.url) as signer:
            assert signer.post("/ui/login", data={"token": ADMIN}).status_code == 303
            cookies = dict(signer.cookies)
        for _ in range(20):  # new connections, spread over both workers by the kernel
            with httpx.Client(base_url=server.url, cookies=cookies) as client:
                assert client.get("/ui/devices").status_code == 200


def test_cli_and_runner_work_against_a_server_with_a_device_token(
    db_url: str, cli: Cli, tmp_path: Path
) -> None:
    with ServeProcess(db_url) as server:

        def remote(*args: str, token: str = ADMIN) -> subprocess.CompletedProcess[str]:
            return cli("--token", token, *args, db=server.url)

        created = json.loads(remote("token", "create", "pixel").stdout)
        device_token = created["token"]
        assert created["device"] == "pixel"
        listed = json.loads(remote("token", "list").stdout)
        assert created["id"] in {t["id"] for t in listed}
        assert all("token" not in t for t in listed)

        # A device token may not register a job: the runner says who can, and how.
        signup = str(ROOT / "examples" / "signup_job.py")
        unregistered = remote(
            "run", signup, "--device", "pixel", "--job", "later", token=device_token
        )
        assert unregistered.returncode == 1
        assert "Traceback" not in unregistered.stderr
        assert f"an admin runs: devicebucket job register --job later {signup}" in (
            unregistered.stderr
        )
        registered = json.loads(remote("job", "register", "--job", "later", signup).stdout)
        assert registered["bucket_schema"]["additionalProperties"] is False
        later = remote("run", signup, "--device", "pixel", "--job", "later", token=device_token)
        assert later.returncode == 0, later.stderr
        # The job is registered once by an admin; the device token may then run it.
        assert remote("run", signup, "--device", "pixel", "--job", "signup").returncode == 0
        run = remote(
            "run",
            str(ROOT / "examples" / "credentials.py"),
            signup,
            "--device",
            "pixel",
            "--job",
            "signup",
            token=device_token,
        )
        assert run.returncode == 0, run.stderr
        assert "signup attempt 2 on pixel: stage done" in run.stdout
        assert (
            json.loads(remote("get", "pixel", "--job", "signup", token=device_token).stdout)[
                "attempts"
            ]
            == 2
        )
        assert json.loads(remote("set", "pixel", "a:=1", token=device_token).stdout)["a"] == 1

        denied = remote("get", "other-device", token=device_token)
        assert denied.returncode == 1
        assert denied.stderr.strip() == (
            f"Error: devicebucket server {server.url}:"
            " a device token may only use its own device's buckets"
        )
        assert remote("devices", token=device_token).returncode == 1
        assert json.loads(remote("devices").stdout)[0]["device"] == "pixel"

        assert remote("token", "revoke", created["id"]).returncode == 0
        revoked = remote("get", "pixel", token=device_token)
        assert revoked.returncode == 1
        assert "not valid or was revoked" in revoked.stderr

        dump = tmp_path / "remote.jsonl"
        assert remote("export", "-o", str(dump)).returncode == 0
        fresh = f"sqlite:///{tmp_path / 'copy.db'}"
        assert json.loads(cli("import", str(dump), db=fresh).stdout) == {
            "imported": 13
        }  # 8 of them history entries
        assert json.loads(cli("get", "pixel", "--job", "signup", db=fresh).stdout)["attempts"] == 2


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "DEVICEBUCKET_ADMIN_TOKEN",
            "x",
            "DEVICEBUCKET_ADMIN_TOKEN must be at least 24 characters",
        ),
        ("DEVICEBUCKET_SESSION_IDLE_MINUTES", "abc", "DEVICEBUCKET_SESSION_IDLE_MINUTES must be"),
        ("DEVICEBUCKET_SESSION_HOURS", "0", "DEVICEBUCKET_SESSION_HOURS must be"),
        ("DEVICEBUCKET_AUTH_FAILURES_PER_MINUTE", "-1", "DEVICEBUCKET_AUTH_FAILURES_PER_MINUTE"),
        ("DEVICEBUCKET_READ_TIMEOUT_SECONDS", "abc", "DEVICEBUCKET_READ_TIMEOUT_SECONDS must be"),
    ],
)
def test_a_bad_server_setting_is_refused_in_one_line(
    db_url: str, name: str, value: str, message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    env[name] = value
    result = subprocess.run(
        [sys.executable, "-m", "devicebucket", "--db", db_url, "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    # A server setting stands in no other command's way.
    other = subprocess.run(
        [sys.executable, "-m", "devicebucket", "--db", db_url, "get", "d"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (other.returncode, other.stdout, other.stderr) == (0, "{}\n", "")


def test_metrics_add_up_across_workers(db_url: str) -> None:
    """With --workers 2 each scrape reaches one worker; every scrape reports all writes."""
    pattern = re.compile(
        r'devicebucket_requests_total\{method="PATCH",route="/v1/devices/\{device\}/bucket",'
        r'status="200"\} ([0-9.]+)'
    )
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with ServeProcess(db_url, "--workers", "2") as server:
        for n in range(20):  # a new connection each: the kernel spreads them over both workers
            response = httpx.patch(f"{server.url}/v1/devices/d/bucket", json={"n": n}, headers=auth)
            assert response.status_code == 200
        counts = []
        for _ in range(10):
            found = pattern.search(httpx.get(f"{server.url}/metrics").text)
            assert found is not None
            counts.append(float(found.group(1)))
    assert counts == [20.0] * 10


def test_serve_on_the_default_store_of_a_new_user(tmp_path: Path) -> None:
    """No --db, no DEVICEBUCKET_URL, an admin token given: the per-user file is made."""
    home = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    with ServeProcess("", env=home) as server:
        auth = {"Authorization": f"Bearer {ADMIN}"}
        written = httpx.patch(f"{server.url}/v1/devices/d/bucket", json={"a": 1}, headers=auth)
        assert written.status_code == 200, written.text
    assert (tmp_path / "data" / "devicebucket" / "devicebucket.db").exists()
