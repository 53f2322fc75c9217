"""The commands that look after a whole store: export and import, encryption keys, tokens,
migrations and copies. ``cli.main`` adds each of :data:`ADMIN_COMMANDS`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click

from ..backends.factory import open_store
from ..backends.sql import SQLStore
from ..core.crypto import KeyRing, generate_key
from ..core.model import HistoryRecord
from ..core.store import Store
from ..wire.exchange import HEADER, dump_record, parse_records
from ..wire.shapes import token_json
from .clikit import emit, progress, with_store

__all__ = ["ADMIN_COMMANDS"]


_no_history = click.option(
    "--no-history", is_flag=True, help="Leave the buckets' history out (it is in by default)."
)


@click.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: stdout).",
)
@_no_history
@click.pass_context
def export(ctx: click.Context, output: Path | None, no_history: bool) -> None:
    """Export everything (buckets, versions, jobs, schemas, token hashes, and the history
    with the contents it keeps) as JSON Lines."""

    async def write(store: Store, out: TextIO) -> None:
        out.write(json.dumps(HEADER) + "\n")
        with progress("exporting", None) as advance:
            async for record in store.export(history=not no_history):
                out.write(dump_record(record) + "\n")
                advance(1)

    if output is None:
        with_store(ctx, lambda store: write(store, sys.stdout))
        return
    partial = output.with_name(output.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        with_store(ctx, lambda store: write(store, out))
    partial.replace(output)


@click.command(name="import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@_no_history
@click.pass_context
def import_(ctx: click.Context, file: Path, no_history: bool) -> None:
    """Restore an export exactly, history included. A malformed file is refused before
    anything is written.

    Buckets and jobs in the file replace those with the same ids; others are kept.
    """
    stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
    size = None if str(file) == "-" else file.stat().st_size
    with stream, progress("reading", size) as advance:

        def lines() -> Iterator[str]:
            for line in stream:
                advance(len(line.encode()))
                yield line

        records = parse_records(lines())
    if no_history:
        records = [r for r in records if not isinstance(r, HistoryRecord)]
    count = with_store(ctx, lambda store: store.import_records(records))
    emit({"imported": count})


@click.group()
def key() -> None:
    """Encryption keys: generate one, rotate a store to a new one."""


@key.command(name="generate")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
def key_generate(output: Path | None) -> None:
    """Make a new random key (AES-256). Keep it apart from the database and its backups."""
    text = generate_key()
    if output is None:
        click.echo(text)
        return
    with os.fdopen(os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(text + "\n")
    emit({"key_file": str(output), "key_id": KeyRing.from_texts([text], "the new key").key_id})


@key.command(name="rotate")
@click.option(
    "--new-key-file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The key to rotate to.",
)
@click.pass_context
def key_rotate(ctx: click.Context, new_key_file: Path) -> None:
    """Re-encrypt every value with a new key, online. The current key comes from --key-file
    or the environment (none: the store is encrypted for the first time). Readers that hold
    both keys (DEVICEBUCKET_ENCRYPTION_KEY=new,old) keep working throughout; an interrupted
    rotation resumes when run again."""
    new = KeyRing.from_file(new_key_file)
    old = KeyRing.from_env()
    ring = new if old is None else new.with_old(old)

    async def rotate(store: Store) -> int:
        if not isinstance(store, SQLStore):
            raise click.UsageError(
                "key rotate runs against the database (sqlite:// or postgresql://), not"
                " through a server"
            )
        with progress("re-encrypting", None) as advance:
            return await store.rotate_key(advance)

    count = with_store(ctx, rotate, keys=ring)
    emit({"resealed": count, "key_id": new.key_id})


@click.group()
def token() -> None:
    """Issue, list and revoke access tokens (stored only as hashes)."""


@token.command(name="create")
@click.argument("device", required=False)
@click.option("--admin", is_flag=True, help="An admin token (may do everything).")
@click.pass_context
def token_create(ctx: click.Context, device: str | None, admin: bool) -> None:
    """Issue a token for DEVICE (or --admin). The secret is printed once, here."""
    if admin == (device is not None):
        raise click.UsageError("give either a DEVICE or --admin")
    created, secret = with_store(ctx, lambda store: store.create_token(device))
    emit({**token_json(created), "token": secret})


@token.command(name="list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """List tokens: id, device, admin, creation time (never the secrets)."""
    found = with_store(ctx, lambda store: store.tokens())
    emit([token_json(t) for t in found])


@token.command(name="revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke the token with this id; it stops working at once."""
    with_store(ctx, lambda store: store.revoke_token(token_id))
    emit({"revoked": token_id})


@click.command(name="migrate-db")
@click.pass_context
def migrate_db(ctx: click.Context) -> None:
    """Create or upgrade the tables of a PostgreSQL store (servers also do this on start)."""
    from ..backends.postgres import PostgresStore

    async def migrate(store: Store) -> int:
        if not isinstance(store, PostgresStore):
            raise click.UsageError("migrate-db is for postgresql:// stores")
        return await store.migrate()

    emit({"schema_version": with_store(ctx, migrate)})


@click.command(name="copy")
@click.option("--from", "source", required=True, metavar="URL", help="Store to copy from.")
@click.option("--to", "target", required=True, metavar="URL", help="Store to copy into.")
@click.option("--force", is_flag=True, help="Write into a target that is not empty.")
@_no_history
@click.pass_context
def copy_(ctx: click.Context, source: str, target: str, force: bool, no_history: bool) -> None:
    """Copy buckets, versions, jobs, schemas, tokens and the history (with the contents it
    keeps), then verify the copy.

    The copy is checked by counts and a content checksum per device before success is
    reported. A target that holds anything is refused unless --force.
    """
    from ..backends.copying import copy_store

    token = ctx.obj.token

    async def run() -> dict[str, int]:
        source_store = open_store(source, token=token)
        target_store = open_store(target, token=token)
        try:
            with progress("copying", None) as advance:
                copied = await copy_store(
                    source_store,
                    target_store,
                    force=force,
                    history=not no_history,
                    progress=advance,
                )
        finally:
            await source_store.close()
            await target_store.close()
        return copied.summary()

    emit({**asyncio.run(run()), "verified": True})


ADMIN_COMMANDS: tuple[click.Command, ...] = (export, import_, key, token, migrate_db, copy_)
