"""The HTTP server under load from wrk, next to a bare Starlette app in the same run.

    .venv/bin/python bench/bench_http.py [--seconds 10] [--connections 64] [--devices 1000]

Needs ``wrk`` (Debian package ``wrk``). Both servers run as one uvicorn process each, on
loopback, without access logs. devicebucket serves the embedded SQLite store; every PATCH
it answers is durable (fsync) before the response. The bare app keeps the buckets in a
dict. GET and PATCH go to random devices among ``--devices``, each with a ~1 KB bucket.
The two servers take turns, in slices of two seconds (three each at ``--seconds 6``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TOKEN = "bench-admin-token-0123456789abcdef"
PAYLOAD = {f"key{i:02d}": "v" * 40 for i in range(20)}

LUA = """
local method = "%(method)s"
local devices = %(devices)d
local n = 0
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local path = "/v1/devices/pixel-" .. math.random(0, devices - 1) .. "/bucket"
  if method == "PATCH" then
    return wrk.format("PATCH", path, nil, '{"counter": ' .. n .. '}')
  end
  return wrk.format("GET", path)
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], url: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(
                f"{url}/v1/devices/pixel-0/bucket", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            return process
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"server did not start: {command}")


def fill(url: str, devices: int) -> None:
    """Write a ~1 KB bucket to each of ``devices`` devices of the server at ``url``."""
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for d in range(devices):
            client.patch(f"{url}/v1/devices/pixel-{d}/bucket", json=PAYLOAD).raise_for_status()


def wrk(
    url: str, method: str, seconds: int, connections: int, devices: int, workdir: Path
) -> dict[str, float]:
    script = workdir / f"{method}.lua"
    script.write_text(LUA % {"method": method, "devices": devices, "token": TOKEN})
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"errors under load:\n{out}")

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)$", out, re.M)
        assert match, out
        return float(match.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[match.group(2)]

    rate = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    assert rate, out
    return {"rps": float(rate.group(1)), "p50": latency("50"), "p99": latency("99")}


#: The length of one slice of a row: each server runs ``--seconds`` in all, in slices.
SLICE_SECONDS = 2


def combined(slices: list[dict[str, float]]) -> dict[str, float]:
    """Slices of equal length as one run: the mean rate, the median p50, the highest p99."""
    p50s = sorted(r["p50"] for r in slices)
    return {
        "rps": sum(r["rps"] for r in slices) / len(slices),
        "p50": p50s[len(p50s) // 2],
        "p99": max(r["p99"] for r in slices),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    env = {**os.environ, "DEVICEBUCKET_ADMIN_TOKEN": TOKEN}
    slices = max(1, args.seconds // SLICE_SECONDS)
    seconds = max(1, args.seconds // slices)
    with tempfile.TemporaryDirectory(prefix="devicebucket-http-") as tmp:
        workdir = Path(tmp)
        ours_url = f"http://127.0.0.1:{free_port()}"
        bare_url = f"http://127.0.0.1:{free_port()}"
        ours = start(
            [
                sys.executable,
                "-m",
                "devicebucket",
                "--db",
                f"sqlite:///{workdir / 'b.db'}",
                "serve",
                "--port",
                ours_url.rsplit(":", 1)[1],
                "--no-access-log",
            ],
            ours_url,
            env,
        )
        bare = start(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bare_app:app",
                "--app-dir",
                str(HERE),
                "--port",
                bare_url.rsplit(":", 1)[1],
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            bare_url,
            env,
        )
        try:
            for url in (ours_url, bare_url):
                fill(url, args.devices)
            rows = []
            for method in ("GET", "PATCH"):
                # Alternate slices of a few seconds, as bench_sqlite alternates blocks: both
                # servers see the same machine, whatever its disk and CPU do meanwhile.
                mine, theirs = [], []
                for n in range(slices):
                    order = [(ours_url, mine), (bare_url, theirs)]
                    for url, results in order if n % 2 == 0 else order[::-1]:
                        results.append(
                            wrk(url, method, seconds, args.connections, args.devices, workdir)
                        )
                rows.append((method, combined(mine), combined(theirs)))
        finally:
            for process in (ours, bare):
                process.terminate()
                process.wait(timeout=30)
    print(
        f"wrk -t1 -c{args.connections}, {slices * seconds} s a server in turns of"
        f" {seconds} s,"
        f" {args.devices:,} devices with ~1 KB buckets, one uvicorn process each\n"
    )
    print(
        "| request | devicebucket req/s | p50 ms | p99 ms"
        " | bare Starlette req/s | p50 ms | p99 ms | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for method, mine, theirs in rows:
        print(
            f"| {method} | {mine['rps']:,.0f} | {mine['p50']:.2f} | {mine['p99']:.2f}"
            f" | {theirs['rps']:,.0f} | {theirs['p50']:.2f} | {theirs['p99']:.2f}"
            f" | {mine['rps'] / theirs['rps']:.2f}× |"
        )


if __name__ == "__main__":
    main()
