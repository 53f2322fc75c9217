"""Real servers for the tests: uvicorn on a free loopback port, in a thread or a process."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn
from starlette.applications import Starlette

ADMIN = "test-admin-token-not-a-secret-of-anyone"
SERVER_LOGS: list[Path] = []  # every ServeProcess log of this test run (conftest scans them)


def bound_socket() -> socket.socket:
    """A listening socket on a free loopback port: clients can connect before serving starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted sockets inherit this. asyncio's server does not set it on sockets accepted
    # from a socket handed to it, and without it every response waits ~40 ms for a
    # delayed ACK (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    return sock


class ThreadedServer:
    """``with ThreadedServer(app) as server: server.url``: uvicorn serving ``app`` in a thread."""

    def __init__(self, app: Starlette) -> None:
        self.sock = bound_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", loop="asyncio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]})

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``devicebucket serve`` in a subprocess, as an operator runs it."""

    def __init__(
        self,
        db_url: str,
        *args: str,
        admin: str | None = ADMIN,
        tls: tuple[Path, Path] | None = None,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(tls[0])) if tls else True
        )
        if tls:
            args = (*args, "--tls-cert", str(tls[0]), "--tls-key", str(tls[1]))
        given, env = env, {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
        env.update(given or {})
        if admin is not None:
            env["DEVICEBUCKET_ADMIN_TOKEN"] = admin
        self.log = Path(tempfile.gettempdir()) / f"devicebucket-serve-{self.port}.log"
        self.log_file = self.log.open("w")
        SERVER_LOGS.append(self.log)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devicebucket",
                *(["--db", db_url] if db_url else []),  # "": the default store
                "serve",
                "--port",
                str(self.port),
                *args,
            ],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Poll /healthz until the server answers: a process start, not a race."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if (
                    httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server did not start: {self.log.read_text()}")

    def __enter__(self) -> ServeProcess:
        try:
            self.wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log_file.close()
