"""The ``devicebucket`` command line: a thin layer over a store and the runner.

Output is JSON on stdout (indented on a terminal). An error is one line on stderr and exit
status 1; usage errors exit 2.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

import click

from ..backends.factory import check_settings
from ..backends.sql import SQLStore
from ..core.crypto import KEY_ENV, KEY_FILE_ENV
from ..core.errors import DeviceBucketError, InvalidValueError
from ..core.limits import MAX_PAGE
from ..core.model import Snapshot
from ..core.operations import diff as diff_buckets
from ..core.store import Store
from ..web.openapi import openapi_document
from ..wire.shapes import change_json, device_json, job_json, rfc3339
from .cli_admin import ADMIN_COMMANDS
from .cli_live import LIVE_COMMANDS
from .clikit import (
    CommandGroup,
    Settings,
    emit,
    job_option,
    masked,
    parse_assignments,
    parse_expire_in,
    reveal_option,
    with_store,
)
from .runner import AutomationError, load_automation, run_automations, schema_of
from .scripts import ScriptExitError
from .serve import serve_command

__all__ = ["main"]


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    # A bad setting is one line and exit status 2, whatever the command; help always shows,
    # and `key` (which makes the key a setting may name) checks the keys it uses itself.
    if ctx.meta.get("devicebucket.help"):
        ctx.obj = Settings(db, token)
    else:
        ctx.obj = Settings(db, token, *check_settings(db, keys=ctx.invoked_subcommand != "key"))


@main.command()
@click.argument("device")
@job_option
@reveal_option
@click.option(
    "--expiries",
    is_flag=True,
    help='Print {"bucket": ..., "expires": {KEY: {"at": TIME, "seconds_left": N}}}.',
)
@click.pass_context
def get(ctx: click.Context, device: str, job: str | None, reveal: bool, expiries: bool) -> None:
    """Print a bucket ({} if it was never written)."""

    async def read(store: Store) -> tuple[Snapshot, bool, dict[str, float]]:
        snapshot = await store.get(device, job=job)
        unknown = job is not None and not snapshot.version and await store.get_job(job) is None
        expiring = await store.expiries(device, job=job) if expiries else {}
        return snapshot, unknown, expiring

    snapshot, unknown, expiring = with_store(ctx, read)
    if unknown:
        click.echo(
            f"devicebucket: no job {job!r} is registered (see `devicebucket jobs`)", err=True
        )
    if not expiries:
        emit(masked(snapshot.data, reveal))
        return
    now = time.time()
    emit(
        {
            "bucket": masked(snapshot.data, reveal),
            "expires": {
                k: {"at": rfc3339(at), "seconds_left": max(0, round(at - now))}
                for k, at in sorted(expiring.items())
                if k in snapshot.data
            },
        }
    )


@main.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Say where the store is and what it holds: URL, size, devices, jobs, schema version,
    encryption. Creates nothing."""

    async def describe(store: Store) -> dict[str, object]:
        if isinstance(store, SQLStore):
            return await store.info()
        await store.ping()
        return {"url": store.url, "server": "reachable"}

    emit(with_store(ctx, describe))


@main.command(name="openapi")
def openapi_command() -> None:
    """Print the HTTP API's OpenAPI document (what a server serves at /openapi.json), for
    generating clients. Opens no store."""
    click.echo(json.dumps(openapi_document(), indent=2, ensure_ascii=False))


@main.command(name="set")
@click.argument("device")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE | KEY:=JSON]...")
@job_option
@click.option("--json", "json_text", metavar="OBJECT", help="A JSON object to merge.")
@click.option(
    "--expire-in",
    "expire_in",
    multiple=True,
    metavar="KEY=SECONDS",
    help="Make a key of this write expire after SECONDS (repeat for more keys).",
)
@reveal_option
@click.pass_context
def set_(
    ctx: click.Context,
    device: str,
    assignments: tuple[str, ...],
    job: str | None,
    json_text: str | None,
    expire_in: tuple[str, ...],
    reveal: bool,
) -> None:
    """Merge keys into a bucket and print the bucket after the write.

    KEY=VALUE stores VALUE as a string; KEY:=JSON stores parsed JSON (numbers, true, objects).
    A key written without --expire-in loses any expiry it had.
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
    expiring = parse_expire_in(expire_in) if expire_in else None
    snapshot = with_store(
        ctx,
        lambda store: store.merge(
            device, data, job=job, actor=store.written_by("cli"), expire_in=expiring
        ),
    )
    emit(masked(snapshot.data, reveal))


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
    snapshot = with_store(
        ctx, lambda store: store.delete(device, keys, job=job, actor=store.written_by("cli"))
    )
    emit(masked(snapshot.data, reveal))


@main.command()
@click.argument("device")
@job_option
@reveal_option
@click.pass_context
def clear(ctx: click.Context, device: str, job: str | None, reveal: bool) -> None:
    """Remove every key of a bucket."""
    snapshot: Snapshot = with_store(
        ctx, lambda store: store.clear(device, job=job, actor=store.written_by("cli"))
    )
    emit(masked(snapshot.data, reveal))


@main.command()
@click.argument("device")
@job_option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.pass_context
def history(ctx: click.Context, device: str, job: str | None, limit: int) -> None:
    """List a bucket's changes, newest first: version, time, who wrote, keys touched.

    "kept" says whether that version's contents are kept, so it can be restored."""
    changes = with_store(ctx, lambda store: store.history(device, job=job, limit=limit))
    emit([change_json(c) for c in changes])


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

    before, after = with_store(ctx, both)
    changes = diff_buckets(before.data, after.data)
    emit({name: masked(section, reveal) for name, section in changes.items()})


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
    snapshot = with_store(
        ctx,
        lambda store: store.restore(
            device,
            version,
            job=job,
            expected_version=expected_version,
            actor=store.written_by("cli"),
        ),
    )
    emit(masked(snapshot.data, reveal))


@main.command()
@click.option("--after", metavar="ID", help="List devices whose id sorts after this one.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, MAX_PAGE))
@click.pass_context
def devices(ctx: click.Context, after: str | None, limit: int) -> None:
    """List devices: device-bucket key count, size of all buckets, last update, jobs."""
    found = with_store(ctx, lambda store: store.devices(after=after, limit=limit))
    emit([device_json(info) for info in found])


@main.command()
@click.pass_context
def jobs(ctx: click.Context) -> None:
    """List registered jobs with their bucket schemas."""
    found = with_store(ctx, lambda store: store.jobs())
    emit([job_json(job) for job in found])


@main.group(name="job")
def job_group() -> None:
    """Register jobs: a device token writes the buckets only of registered jobs."""


@job_group.command(name="register")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path), metavar="[FILE]...")
@click.option("--job", "name", required=True, metavar="ID", help="The job to register.")
@click.option(
    "--replace-schema", is_flag=True, help="Replace a different schema already stored for the job."
)
@click.pass_context
def register(ctx: click.Context, files: tuple[Path, ...], name: str, replace_schema: bool) -> None:
    """Register a job, with the bucket schema its FILEs give (an automation's BUCKET_SCHEMA or
    a .json schema file); without FILE, with none. Needs an admin token on a server."""
    schemas = [s for i, path in enumerate(files) if (s := schema_of(path, i)) is not None]
    if len({json.dumps(s, sort_keys=True) for s in schemas}) > 1:
        raise AutomationError(f"the files give different bucket schemas for job {name!r}")
    job = with_store(
        ctx,
        lambda store: store.register_job(
            name,
            automation=", ".join(p.name for p in files) or None,
            schema=schemas[0] if schemas else None,
            replace_schema=replace_schema,
        ),
    )
    emit(job_json(job))


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
    """Run automations concurrently on one device: Python files with `async def main(agent)`,
    JavaScript or TypeScript files (.mjs, .js, .ts) that use a global `agent`, under node."""
    try:
        automations = [load_automation(path, i) for i, path in enumerate(files)]
    except DeviceBucketError:
        raise
    except Exception:  # the automation's own import failed: show its traceback
        traceback.print_exc()
        ctx.exit(1)
    results = with_store(
        ctx,
        lambda store: run_automations(
            store, automations, device, job, replace_schema=replace_schema
        ),
    )
    failed = [r for r in results if r.error is not None]
    for result in failed:
        error = result.error
        if isinstance(error, ScriptExitError):  # node's own report is on stderr already
            if not error.reported:
                click.echo(str(error), err=True)
            continue
        assert error is not None
        click.echo(f"automation {result.automation.name} failed:", err=True)
        traceback.print_exception(error, file=sys.stderr)
    if failed:
        ctx.exit(1)


main.add_command(serve_command)
for _command in (*ADMIN_COMMANDS, *LIVE_COMMANDS):
    main.add_command(_command)
