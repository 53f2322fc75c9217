"""What every command shares: one line for every expected failure, the store a command
opens, JSON output, masking and progress bars."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import click

from ..backends.factory import open_store
from ..backends.sql import SQLStore
from ..backends.sqlite import SQLiteStore
from ..core.crypto import KeyRing
from ..core.errors import DeviceBucketError, InvalidValueError, SettingError
from ..core.limits import Limits
from ..core.masking import mask_secrets, secret_key_patterns
from ..core.store import Store

__all__ = [
    "CommandGroup",
    "Settings",
    "emit",
    "job_option",
    "masked",
    "parse_assignments",
    "progress",
    "reveal_option",
    "with_store",
]

T = TypeVar("T")


#: Options of the whole command that may also come after the subcommand.
GLOBAL_OPTIONS: Final = ("--db", "--token", "--key-file")


class OneLine(click.ClickException):
    """A usage or settings error, shown as one line (exit status 2)."""

    exit_code = 2


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with :data:`GLOBAL_OPTIONS` given after the subcommand moved before it, so
    ``devicebucket get DEVICE --db URL`` means ``devicebucket --db URL get DEVICE``."""
    front: list[str] = []
    rest: list[str] = []
    command_seen = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        name, has_value, _ = arg.partition("=")
        if name in GLOBAL_OPTIONS:
            taken = args[i : i + (1 if has_value else 2)]
            (front if command_seen else rest).extend(taken)
            i += len(taken)
            continue
        command_seen = command_seen or not arg.startswith("-")
        rest.append(arg)
        i += 1
    return front + rest


class CommandGroup(click.Group):
    """Turns every expected failure into one line on stderr, never a traceback: exit status
    2 for a bad setting or usage, 1 for a failure."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        if parent is None:
            args = hoist_global_options(list(args))
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _one_line(exc) from None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Whether help was asked for anywhere (settings are not checked then).
        ctx.meta["devicebucket.help"] = bool({"-h", "--help"} & set(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except SettingError as exc:
            raise OneLine(str(exc)) from None
        except DeviceBucketError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None


def _one_line(exc: click.UsageError) -> OneLine:
    where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
    return OneLine(exc.format_message() + where)


@dataclass(frozen=True, slots=True)
class Settings:
    db: str | None
    token: str | None
    limits: Limits | None = None  # as checked up front (None: read when the store opens)
    keys: KeyRing | None = None


def with_store(
    ctx: click.Context, fn: Callable[[Store], Awaitable[T]], keys: KeyRing | None = None
) -> T:
    async def run() -> T:
        settings: Settings = ctx.obj
        store = open_store(
            settings.db, token=settings.token, limits=settings.limits, keys=keys or settings.keys
        )
        local = store if isinstance(store, SQLStore) else None
        new = local is not None and not await local.exists()
        try:
            result = await fn(store)
            if new and local is not None and await local.exists():
                where = local.path.resolve() if isinstance(local, SQLiteStore) else local.url
                click.echo(f"devicebucket: created a new store at {where}", err=True)
            return result
        finally:
            await store.close()

    return asyncio.run(run())


def emit(value: Any) -> None:
    if sys.stdout.isatty():
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


@contextmanager
def progress(description: str, total: float | None) -> Iterator[Callable[[float], None]]:
    """A progress bar on stderr when it is a terminal; otherwise nothing is shown."""
    from rich.console import Console  # loaded by the commands that show progress only
    from rich.progress import Progress

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


def parse_expire_in(items: tuple[str, ...]) -> dict[str, float]:
    """``KEY=SECONDS`` items of ``--expire-in`` (the store checks the keys and ranges)."""
    found: dict[str, float] = {}
    for item in items:
        key, sep, seconds = item.rpartition("=")
        try:
            found[key] = float(seconds)
        except ValueError:
            sep = ""
        if not sep:
            raise InvalidValueError(f"--expire-in takes KEY=SECONDS, not {item[:64]!r}")
    return found


job_option = click.option(
    "--job", metavar="ID", help="The job bucket of this job, not the device bucket."
)
reveal_option = click.option(
    "--reveal",
    is_flag=True,
    help="Show values of secret-looking keys (masked by default; DEVICEBUCKET_SECRET_KEYS).",
)


def masked(data: dict[str, Any], reveal: bool) -> dict[str, Any]:
    """The bucket with values of secret-looking keys replaced by a mask, unless ``reveal``."""
    return data if reveal else mask_secrets(data, secret_key_patterns())
