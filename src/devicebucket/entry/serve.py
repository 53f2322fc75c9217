"""``devicebucket serve``: run the HTTP server with uvicorn."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..backends.factory import default_url, open_store
from ..core.errors import SettingError
from ..wire.timing import SERVER_KEEP_ALIVE_SECONDS

__all__ = ["is_loopback", "serve_command"]


def check_port_free(host: str, port: int) -> None:
    """One line (exit status 1) for an address another program listens on, before uvicorn
    would log several and exit with 3."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (is another server running there? choose another --port)"
        ) from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _ensure_admin_token(url: str) -> str | None:
    """The first time a store is served, create an admin token; return its secret once."""
    store = open_store(url)
    try:
        if any(t.is_admin for t in await store.tokens()):
            return None
        _, secret = await store.create_token(None)
        return secret
    finally:
        await store.close()


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option(
    "--allow-plain-http", is_flag=True, help="Listen on a non-loopback address without TLS."
)
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.pass_context
def serve_command(
    ctx: click.Context,
    host: str,
    port: int,
    workers: int,
    tls_cert: str | None,
    tls_key: str | None,
    allow_plain_http: bool,
    access_log: bool,
) -> None:
    """Serve the store over HTTP under /v1 (OpenAPI at /openapi.json, docs at /docs) and the
    web dashboard at /ui.

    The admin token is $DEVICEBUCKET_ADMIN_TOKEN; without it, one is generated the first
    time, stored hashed, and printed once.
    """
    # The server loads here, not with the command line: every other command starts without it.
    import uvicorn

    from ..web.app import ADMIN_TOKEN_ENV, SESSION_SECRET_ENV, check_server_settings
    from ..web.auth import check_admin_token
    from ..web.connections import read_timeout

    if (tls_cert is None) != (tls_key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if not is_loopback(host) and tls_cert is None and not allow_plain_http:
        raise click.UsageError(
            f"refusing to serve plain HTTP on non-loopback address {host}:"
            " give --tls-cert and --tls-key, or --allow-plain-http"
        )
    url = ctx.obj.db or default_url()
    if url.split("://", 1)[0].lower() in ("http", "https"):
        raise click.UsageError("serve needs a local store (sqlite:// or postgresql://)")
    given = os.environ.get(ADMIN_TOKEN_ENV)
    try:
        check_admin_token(given)
        check_server_settings()
        read_timeout()
    except ValueError as exc:  # a setting of the environment
        raise SettingError(str(exc)) from None
    check_port_free(host, port)
    if not given:
        secret = asyncio.run(_ensure_admin_token(url))
        if secret is not None:
            click.echo(f"admin token (shown once, stored hashed): {secret}", err=True)
    # Workers are separate processes: they open the store from the environment.
    os.environ["DEVICEBUCKET_URL"] = url
    # Every worker signs dashboard sessions with the same secret, so a session works in all.
    os.environ.setdefault(SESSION_SECRET_ENV, secrets.token_hex(32))
    sys.stderr.flush()
    with shared_metrics(workers):
        uvicorn.run(
            "devicebucket.web.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            ssl_certfile=tls_cert,
            ssl_keyfile=tls_key,
            access_log=access_log,
            log_level="info",
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,  # after the client's (wire.timing)
            # uvicorn's protocol, with deadlines for reading a request (web.connections)
            http="devicebucket.web.connections:BoundedHttpToolsProtocol",
        )


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, each scrape of ``/metrics`` reaches one of them: they count in
    ``prometheus_client``'s multiprocess mode, in a directory of their own (made empty
    here, removed after), so any worker reports the sum of all."""
    from ..web.metrics import MULTIPROC_ENV

    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="devicebucket-metrics-") as directory:
        os.environ[MULTIPROC_ENV] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROC_ENV]
