"""The ``devicebucket`` command line: a thin layer over a store and the runner.

Output is JSON on stdout (indented on a terminal). An error is one line on stderr and exit
status 1; usage errors exit 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click
from rich.console import Console
from rich.progress import Progress

from ..backends.factory import open_store
from ..backends.sql import SQLStore
from ..core.crypto import KEY_ENV, KEY_FILE_ENV, KeyRing, generate_key
from ..core.errors import DeviceBucketError, InvalidValueError
from ..core.masking import mask_secrets, secret_key_patterns
from ..core.model import Snapshot
from ..core.operations import diff as diff_buckets
from ..core.store import Store
from ..wire.exchange import HEADER, dump_record, parse_records
from ..wire.shapes import change_json, device_json, job_json, token_json
from .runner import Automation, load_automation, run_automations
from .serve import serve_command

__all__ = ["main"]

T = TypeVar("T")


class _Group(click.Group):
    """Turns every expected failure into one line on stderr, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DeviceBucketError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


@dataclass(frozen=True, slots=True)
class _Settings:
    db: str | None
    token: str | None


def _with_store(
    ctx: click.Context, fn: Callable[[Store], Awaitable[T]], keys: KeyRing | None = None
) -> T:
    async def run() -> T:
        settings: _Settings = ctx.obj
        store = open_store(settings.db, token=settings.token, keys=keys)
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _emit(value: Any) -> None:
    if sys.stdout.isatty():
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


@contextmanager
def _progress(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr when it is a terminal; otherwise nothing is shown."""
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda amount: bar.advance(task, amount)


def parse_assignments(assignments: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` stores the string VALUE; ``KEY:=JSON`` stores the parsed JSON."""
    data: dict[str, Any] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidValueError("expected KEY=VALUE or KEY:=JSON, got an argument without '='")
        if key.endswith(":"):
            key = key[:-1]
            try:
                data[key] = json.loads(value)
            except ValueError:
                raise InvalidValueError(
                    f"the value of key {key!r} after ':=' is not valid JSON"
                ) from None
        else:
            data[key] = value
    return data


job_option = click.option(
    "--job", metavar="ID", help="The job bucket of this job, not the device bucket."
)
reveal_option = click.option(
    "--reveal",
    is_flag=True,
    help="Show values of secret-looking keys (masked by default; DEVICEBUCKET_SECRET_KEYS).",
)


def _masked(data: dict[str, Any], reveal: bool) -> dict[str, Any]:
    """The bucket with values of secret-looking keys replaced by a mask, unless ``reveal``."""
    return data if reveal else mask_secrets(data, secret_key_patterns())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    metavar="URL",
    envvar="DEVICEBUCKET_URL",
    help="Store URL (sqlite:///file.db). Default: $DEVICEBUCKET_URL,"
    " else a file in the user data directory.",
)
@click.option(
    "--token",
    metavar="TOKEN",
    envvar="DEVICEBUCKET_TOKEN",
    help="Bearer token for an http(s):// store. Default: $DEVICEBUCKET_TOKEN.",
)
@click.option(
    "--key-file",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Encryption key of the store (`key generate` makes one)."
    " Default: $DEVICEBUCKET_ENCRYPTION_KEY, else $DEVICEBUCKET_KEY_FILE.",
)
@click.version_option(package_name="devicebucket")
@click.pass_context
def main(ctx: click.Context, db: str | None, token: str | None, key_file: str | None) -> None:
    """Persistent device and job buckets for device-automation fleets."""
    if key_file is not None:  # through the environment, so `serve` workers get it too
        os.environ[KEY_FILE_ENV] = str(Path(key_file).resolve())
        os.environ.pop(KEY_ENV, None)
    ctx.obj = _Settings(db, token)


@main.command()
@click.argument("device")
@job_option
@reveal_option
@click.pass_context
def get(ctx: click.Context, device: str, job: str | None, reveal: bool) -> None:
    """Print a bucket ({} if it was never written)."""
    snapshot = _with_store(ctx, lambda store: store.get(device, job=job))
    _emit(_masked(snapshot.data, reveal))


@main.command(name="set")
@click.argument("device")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE | KEY:=JSON]...")
@job_option
@click.option("--json", "json_text", metavar="OBJECT", help="A JSON object to merge.")
@reveal_option
@click.pass_context
def set_(
    ctx: click.Context,
    device: str,
    assignments: tuple[str, ...],
    job: str | None,
    json_text: str | None,
    reveal: bool,
) -> None:
    """Merge keys into a bucket and print the bucket after the write.

    KEY=VALUE stores VALUE as a string; KEY:=JSON stores parsed JSON (numbers, true, objects).
    """
    if (json_text is None) == (not assignments):
        raise click.UsageError("give either --json OBJECT or KEY=VALUE arguments")
    if json_text is not None:
        try:
            data = json.loads(json_text)
        except ValueError:
            raise InvalidValueError("--json is not valid JSON") from None
    else:
        data = parse_assignments(assignments)
    snapshot = _with_store(ctx, lambda store: store.merge(device, data, job=job, actor="cli"))
    _emit(_masked(snapshot.data, reveal))


@main.command()
@click.argument("device")
@click.argument("keys", nargs=-1, required=True)
@job_option
@reveal_option
@click.pass_context
def delete(
    ctx: click.Context, device: str, keys: tuple[str, ...], job: str | None, reveal: bool
) -> None:
    """Remove keys from a bucket and print the bucket after the write."""
    snapshot = _with_store(ctx, lambda store: store.delete(device, keys, job=job, actor="cli"))
    _emit(_masked(snapshot.data, reveal))


@main.command()
@click.argument("device")
@job_option
@reveal_option
@click.pass_context
def clear(ctx: click.Context, device: str, job: str | None, reveal: bool) -> None:
    """Remove every key of a bucket."""
    snapshot: Snapshot = _with_store(ctx, lambda store: store.clear(device, job=job, actor="cli"))
    _emit(_masked(snapshot.data, reveal))


@main.command()
@click.argument("device")
@job_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.pass_context
def history(ctx: click.Context, device: str, job: str | None, limit: int) -> None:
    """List a bucket's changes, newest first: version, time, who wrote, keys touched.

    "kept" says whether that version's contents are kept, so it can be restored."""
    changes = _with_store(ctx, lambda store: store.history(device, job=job, limit=limit))
    _emit([change_json(c, _iso) for c in changes])


@main.command()
@click.argument("device")
@click.argument("from_version", metavar="V1", type=click.IntRange(0))
@click.argument("to_version", metavar="V2", type=click.IntRange(0))
@job_option
@reveal_option
@click.pass_context
def diff(
    ctx: click.Context,
    device: str,
    from_version: int,
    to_version: int,
    job: str | None,
    reveal: bool,
) -> None:
    """Show what changed in a bucket from version V1 to V2 (both must still be kept).

    Values of keys that look like secrets are masked unless --reveal."""

    async def both(store: Store) -> tuple[Snapshot, Snapshot]:
        return (
            await store.at_version(device, from_version, job=job),
            await store.at_version(device, to_version, job=job),
        )

    before, after = _with_store(ctx, both)
    changes = diff_buckets(before.data, after.data)
    _emit({name: _masked(section, reveal) for name, section in changes.items()})


@main.command()
@click.argument("device")
@click.option("--version", "version", required=True, type=click.IntRange(0), help="Version.")
@job_option
@click.option(
    "--expected-version",
    type=click.IntRange(0),
    help="Restore only if the bucket is still at this version.",
)
@reveal_option
@click.pass_context
def restore(
    ctx: click.Context,
    device: str,
    version: int,
    job: str | None,
    expected_version: int | None,
    reveal: bool,
) -> None:
    """Make a bucket what it was at --version, as a new version (so it can be undone).

    Prints the bucket after the restore."""
    snapshot = _with_store(
        ctx,
        lambda store: store.restore(
            device, version, job=job, expected_version=expected_version, actor="cli"
        ),
    )
    _emit(_masked(snapshot.data, reveal))


@main.command()
@click.option("--after", metavar="ID", help="List devices whose id sorts after this one.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10_000))
@click.pass_context
def devices(ctx: click.Context, after: str | None, limit: int) -> None:
    """List devices: device-bucket key count, size of all buckets, last update, jobs."""
    found = _with_store(ctx, lambda store: store.devices(after=after, limit=limit))
    _emit([device_json(info, _iso) for info in found])


@main.command()
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """List registered jobs with their bucket schemas."""
    found = _with_store(ctx, lambda store: store.jobs())
    _emit([job_json(job, _iso) for job in found])


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="File to write (default: stdout).",
)
@click.pass_context
def export(ctx: click.Context, output: Path | None) -> None:
    """Export everything (buckets, versions, jobs, schemas) as JSON Lines."""

    async def write(store: Store, out: TextIO) -> None:
        out.write(json.dumps(HEADER) + "\n")
        with _progress("exporting", None) as advance:
            async for record in store.export():
                out.write(dump_record(record) + "\n")
                advance(1)

    if output is None:
        _with_store(ctx, lambda store: write(store, sys.stdout))
        return
    partial = output.with_name(output.name + ".partial")
    with partial.open("w", encoding="utf-8") as out:
        _with_store(ctx, lambda store: write(store, out))
    partial.replace(output)


@main.command(name="import")
@click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@click.pass_context
def import_(ctx: click.Context, file: Path) -> None:
    """Restore an export exactly. A malformed file is refused before anything is written.

    Buckets and jobs in the file replace those with the same ids; others are kept.
    """
    stream = sys.stdin if str(file) == "-" else file.open(encoding="utf-8")
    size = None if str(file) == "-" else file.stat().st_size
    with stream, _progress("reading", size) as advance:

        def lines() -> Iterator[str]:
            for line in stream:
                advance(len(line.encode()))
                yield line

        records = parse_records(lines())
    count = _with_store(ctx, lambda store: store.import_records(records))
    _emit({"imported": count})


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--device", required=True, metavar="ID", help="The device the automations run on.")
@click.option("--job", metavar="ID", help="Run in this job's context (registers the job).")
@click.option(
    "--replace-schema", is_flag=True, help="Replace a different schema already stored for the job."
)
@click.pass_context
def run(
    ctx: click.Context, files: tuple[Path, ...], device: str, job: str | None, replace_schema: bool
) -> None:
    """Run automations (files with `async def main(agent)`) concurrently on one device."""
    try:
        automations: list[Automation] = [load_automation(path, i) for i, path in enumerate(files)]
    except DeviceBucketError:
        raise
    except Exception:  # the automation's own import failed: show its traceback
        traceback.print_exc()
        ctx.exit(1)
    results = _with_store(
        ctx,
        lambda store: run_automations(
            store, automations, device, job, replace_schema=replace_schema
        ),
    )
    failed = [r for r in results if r.error is not None]
    for result in failed:
        assert result.error is not None
        click.echo(f"automation {result.automation.name} failed:", err=True)
        traceback.print_exception(result.error, file=sys.stderr)
    if failed:
        ctx.exit(1)


main.add_command(serve_command)


@main.group()
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
    _emit({"key_file": str(output), "key_id": KeyRing.from_texts([text], "the new key").key_id})


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
        with _progress("re-encrypting", None) as advance:
            return await store.rotate_key(advance)

    count = _with_store(ctx, rotate, keys=ring)
    _emit({"resealed": count, "key_id": new.key_id})


@main.group()
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
    created, secret = _with_store(ctx, lambda store: store.create_token(device))
    _emit({**token_json(created, _iso), "token": secret})


@token.command(name="list")
@click.pass_context
def token_list(ctx: click.Context) -> None:
    """List tokens: id, device, admin, creation time (never the secrets)."""
    found = _with_store(ctx, lambda store: store.tokens())
    _emit([token_json(t, _iso) for t in found])


@token.command(name="revoke")
@click.argument("token_id")
@click.pass_context
def token_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke the token with this id; it stops working at once."""
    _with_store(ctx, lambda store: store.revoke_token(token_id))
    _emit({"revoked": token_id})


@main.command(name="migrate-db")
@click.pass_context
def migrate_db(ctx: click.Context) -> None:
    """Create or upgrade the tables of a PostgreSQL store (servers also do this on start)."""
    from ..backends.postgres import PostgresStore

    async def migrate(store: Store) -> int:
        if not isinstance(store, PostgresStore):
            raise click.UsageError("migrate-db is for postgresql:// stores")
        return await store.migrate()

    _emit({"schema_version": _with_store(ctx, migrate)})


@main.command(name="copy")
@click.option("--from", "source", required=True, metavar="URL", help="Store to copy from.")
@click.option("--to", "target", required=True, metavar="URL", help="Store to copy into.")
@click.option("--force", is_flag=True, help="Write into a target that is not empty.")
@click.pass_context
def copy_(ctx: click.Context, source: str, target: str, force: bool) -> None:
    """Copy buckets, versions, jobs, schemas and tokens, then verify the copy.

    The copy is checked by counts and a content checksum per device before success is
    reported. A target that holds anything is refused unless --force.
    """
    from ..backends.copying import copy_store

    token = ctx.obj.token

    async def run() -> dict[str, int]:
        source_store = open_store(source, token=token)
        target_store = open_store(target, token=token)
        try:
            with _progress("copying", None) as advance:
                copied = await copy_store(source_store, target_store, force=force, progress=advance)
        finally:
            await source_store.close()
            await target_store.close()
        return copied.summary()

    _emit({**asyncio.run(run()), "verified": True})
