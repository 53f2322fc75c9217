"""``devicebucket serve`` in a subprocess for the load scripts: a new SQLite file, a free
loopback port, the admin token given; stopped on leaving the ``with``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["Served", "free_port", "served"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    pid: int
    workdir: Path


@contextmanager
def served(admin: str, *options: str, prefix: Sequence[str] = (), **env: str) -> Iterator[Served]:
    """Serve a new store with ``admin`` as the admin token and ``env`` added to the
    environment, under ``prefix`` (a command such as ``eatmydata``) if given; ready
    (``/healthz`` answers) when the ``with`` body runs."""
    with tempfile.TemporaryDirectory(prefix="devicebucket-bench-") as tmp:
        port = free_port()
        environ = {**os.environ, "DEVICEBUCKET_ADMIN_TOKEN": admin, **env}
        environ.pop("DEVICEBUCKET_ENCRYPTION_KEY", None)
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        command = ["--db", db, "serve", "--port", str(port), "--no-access-log", *options]
        server = subprocess.Popen(
            [*prefix, sys.executable, "-m", "devicebucket", *command],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield Served(url, port, server.pid, Path(tmp))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
