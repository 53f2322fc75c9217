"""The commands that follow a bucket as it changes: ``watch`` prints each change as it
happens, ``wait`` waits for a key. ``cli.main`` adds each of :data:`LIVE_COMMANDS`."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import click

from ..core.store import Store
from ..core.watching import Resync
from ..wire.shapes import event_json
from .clikit import emit, job_option, masked, reveal_option, with_store

__all__ = ["LIVE_COMMANDS"]


@click.command()
@click.argument("device")
@job_option
@click.option(
    "--since",
    type=click.IntRange(0),
    metavar="VERSION",
    help="Start with every version after this one (default: from now on).",
)
@click.option(
    "--count", type=click.IntRange(1), help="Stop after this many changes (default: never)."
)
@reveal_option
@click.pass_context
def watch(
    ctx: click.Context,
    device: str,
    job: str | None,
    since: int | None,
    count: int | None,
    reveal: bool,
) -> None:
    """Print a bucket's changes as they happen, one JSON line each (version, time, who, the
    keys set with their values, the keys removed), until interrupted or --count."""

    async def follow(store: Store) -> None:
        printed = 0
        async with aclosing(store.watch(device, job=job, since=since)) as events:
            async for event in events:
                shown: dict[str, Any] = event_json(event)
                if isinstance(event, Resync):
                    shown["bucket"] = masked(event.bucket, reveal)
                else:
                    shown["changed"] = masked(event.changed, reveal)
                click.echo(json.dumps(shown, ensure_ascii=False, separators=(",", ":")))
                printed += 1
                if count is not None and printed >= count:
                    return

    try:
        with_store(ctx, follow)
    except KeyboardInterrupt:
        ctx.exit(130)


@click.command()
@click.argument("device")
@click.argument("key")
@job_option
@click.option(
    "--timeout",
    type=click.FloatRange(0, 86_400),
    default=30.0,
    show_default=True,
    help="Seconds to wait before giving up (exit status 1).",
)
@reveal_option
@click.pass_context
def wait(
    ctx: click.Context, device: str, key: str, job: str | None, timeout: float, reveal: bool
) -> None:
    """Wait until KEY is in a bucket (an OTP another automation writes, say), then print the
    bucket. Waits for the change itself; does not poll."""
    snapshot = with_store(ctx, lambda store: store.wait_for(device, key, job=job, timeout=timeout))
    emit(masked(snapshot.data, reveal))


LIVE_COMMANDS = (watch, wait)
