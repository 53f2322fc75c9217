"""JavaScript and TypeScript automations: run under ``node`` with a global ``agent``.

The agent is the JavaScript client (``clients/js``), preloaded into ``node``. It reaches the
store over HTTP: a store that is a server already is reached directly with the run's token;
any other store is served for the run's lifetime on a private loopback port, with a token
that lives only in that server's memory and reaches only the run's device (and job).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from ..core.errors import DeviceBucketError
from ..core.store import Store
from ..core.tokens import Token, hash_token
from ..wire.timing import SERVER_KEEP_ALIVE_SECONDS

__all__ = [
    "NODE_ENV",
    "SCRIPT_SUFFIXES",
    "Script",
    "ScriptError",
    "ScriptExitError",
    "agent_server",
    "node_command",
    "run_script",
]

#: The ``node`` to run automations with (default: ``node`` on the PATH).
NODE_ENV: Final = "DEVICEBUCKET_NODE"
SCRIPT_SUFFIXES: Final = frozenset({".mjs", ".js", ".ts", ".mts"})
_TYPESCRIPT: Final = frozenset({".ts", ".mts"})
_OLDEST_NODE: Final = (20, 6)  # module.register(), the preload's loader hook
_STRIP_TYPES: Final = (22, 6)  # --experimental-strip-types


def _strips_types_by_default(version: tuple[int, int]) -> bool:
    """Node.js 22.18 and 23.6 on strip types without the flag."""
    return version >= (23, 6) or (version[0] == 22 and version >= (22, 18))


class ScriptError(DeviceBucketError):
    """A JavaScript automation cannot be started (no node, too old a node, no agent)."""


class ScriptExitError(DeviceBucketError):
    """A JavaScript automation ended with a non-zero exit status."""

    def __init__(self, name: str, status: int) -> None:
        self.status = status
        how = f"was killed by signal {-status}" if status < 0 else f"ended with status {status}"
        super().__init__(f"automation {name}: node {how}")

    @property
    def reported(self) -> bool:
        """Whether the automation already said why (the preload reports an uncaught error
        and exits with status 1)."""
        return self.status == 1


@dataclass(frozen=True, slots=True)
class Script:
    """A JavaScript or TypeScript automation file (its schema is read as it runs), with the
    ``node`` command that runs it (:func:`node_command`, checked when it was loaded)."""

    name: str
    path: Path
    command: tuple[str, ...]
    schema: None = None


def _find_node() -> str:
    given = os.environ.get(NODE_ENV)
    node = shutil.which(given or "node")
    if node is None:
        where = f"{NODE_ENV}={given!r} is not a program" if given else "no `node` on the PATH"
        raise ScriptError(
            f"JavaScript automations need Node.js {_OLDEST_NODE[0]} or newer: {where}"
            " (install it: apt-get install nodejs, or https://nodejs.org)"
        )
    return node


@cache
def _version(node: str) -> tuple[int, int]:
    try:
        shown = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        raise ScriptError(f"{node} --version failed: is it Node.js?") from None
    match = re.match(r"v(\d+)\.(\d+)", shown)
    if match is None:
        raise ScriptError(f"{node} --version printed {shown[:40]!r}: is it Node.js?")
    return int(match.group(1)), int(match.group(2))


def node_command(path: Path) -> tuple[str, ...]:
    """``node`` and its flags for ``path``; ScriptError (one line) when the installed Node
    cannot run it."""
    node = _find_node()
    version = _version(node)
    shown = ".".join(map(str, version))
    if version < _OLDEST_NODE:
        raise ScriptError(
            f"{path.name}: JavaScript automations need Node.js"
            f" {'.'.join(map(str, _OLDEST_NODE))} or newer (this is Node.js {shown})"
        )
    # The loader hook and type stripping are "experimental": their notices are not the
    # automation's output (the flag exists from Node.js 20.11).
    flags = ["--disable-warning=ExperimentalWarning"] if version >= (20, 11) else []
    if path.suffix in _TYPESCRIPT:
        if version < _STRIP_TYPES:
            raise ScriptError(
                f"{path.name}: TypeScript automations need Node.js 22.6 or newer, which strips"
                f" types (this is Node.js {shown}): install it from https://nodejs.org (or set"
                f" {NODE_ENV}), or compile {path.name} to JavaScript"
            )
        if not _strips_types_by_default(version):
            flags.append("--experimental-strip-types")
    return (node, *flags, "--import", _preload().as_uri())


def _preload() -> Path:
    """The JavaScript client's preload: packaged with devicebucket, or in the source tree."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "js", here.parent.parent / "clients" / "js" / "dist"):
        if (candidate / "preload.js").is_file():
            return candidate / "preload.js"
    raise ScriptError("the JavaScript agent is missing from this installation of devicebucket")


@asynccontextmanager
async def agent_server(
    store: Store, device: str, job: str | None
) -> AsyncIterator[tuple[str, str]]:
    """The URL and token JavaScript automations reach ``store`` with, for as long as the
    context lasts: a server store's own, or a private loopback server of ``store`` with a
    token for ``device`` (and ``job``) only."""
    from ..backends.http import HTTPStore

    if isinstance(store, HTTPStore):
        yield store.base_url, store.bearer or ""
        return
    # The server's parts load here, for a JavaScript run on a store of its own only: a
    # command line that runs none starts without them.
    import uvicorn

    from ..web.app import create_app

    secret = secrets.token_urlsafe(32)
    token = Token(f"run-{secrets.token_hex(4)}", device, time.time(), job=job, run=True)
    app = create_app(store, close_store=False, run_tokens={hash_token(secret): token})
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
    )
    server = uvicorn.Server(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if serving.done():
                serving.result()
                raise ScriptError("the run's private server stopped as it started")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}", secret
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def run_script(
    script: Script,
    url: str,
    token: str,
    device: str,
    job: str | None,
    *,
    replace_schema: bool = False,
) -> None:
    """Run ``script`` under node with a global ``agent``; its output passes through.
    ScriptExitError when it ends with a non-zero status."""
    # The automation gets its agent's settings, not the store's (a URL with a password, a
    # key, an admin token).
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
    env |= {
        "DEVICEBUCKET_AGENT_URL": url,
        "DEVICEBUCKET_AGENT_TOKEN": token,
        "DEVICEBUCKET_DEVICE": device,
        "DEVICEBUCKET_JOB": job or "",
        "DEVICEBUCKET_AUTOMATION": script.name,
        "DEVICEBUCKET_REPLACE_SCHEMA": "1" if replace_schema else "",
    }
    process = await asyncio.create_subprocess_exec(*script.command, str(script.path), env=env)
    try:
        status = await process.wait()
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if status != 0:
        raise ScriptExitError(script.name, status)
