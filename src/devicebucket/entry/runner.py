"""Run automations, all at once on one device: a Python file's ``main(agent)`` is awaited
here; a JavaScript or TypeScript file runs under ``node`` with a global ``agent``
(``entry.scripts``)."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..core.errors import AccessDeniedError, DeviceBucketError, InvalidSchemaError
from ..core.ids import check_id
from ..core.schema import check_schema, schema_text
from ..core.store import Store
from .agent import Agent
from .scripts import SCRIPT_SUFFIXES, Script, agent_server, node_command, run_script

__all__ = [
    "Automation",
    "AutomationError",
    "RunResult",
    "Script",
    "load_automation",
    "run_automations",
    "schema_of",
]


class AutomationError(DeviceBucketError):
    """An automation file cannot be run (missing ``main``, import error, schema clash)."""


@dataclass(frozen=True, slots=True)
class Automation:
    """A loaded automation file."""

    name: str
    path: Path
    main: Callable[[Agent], Awaitable[Any]]
    schema: Any = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """How one automation ended: ``error`` is what it raised (a JavaScript automation's
    :class:`~.scripts.ScriptExitError`), or None."""

    automation: Automation | Script
    error: BaseException | None


def _import(path: Path, index: int) -> ModuleType:
    name = f"devicebucket_automation_{index}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AutomationError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_automation(path: str | Path, index: int = 0) -> Automation | Script:
    """Import a Python automation file; it must define ``async def main(agent)``. A
    JavaScript or TypeScript file is only checked to be runnable by the installed ``node``.

    An exception raised while importing the file propagates with its traceback.
    """
    path = Path(path)
    if not path.is_file():
        raise AutomationError(f"{path}: no such file")
    if path.suffix in SCRIPT_SUFFIXES:
        return Script(path.name, path, node_command(path))
    module = _import(path, index)
    main = getattr(module, "main", None)
    if main is None:
        raise AutomationError(f"{path}: defines no `async def main(agent)`")
    if not inspect.iscoroutinefunction(main):
        raise AutomationError(f"{path}: `main` must be `async def main(agent)`, not a plain `def`")
    schema = getattr(module, "BUCKET_SCHEMA", None)
    if schema is not None:
        try:
            schema = check_schema(schema)
        except DeviceBucketError as exc:
            raise AutomationError(f"{path}: BUCKET_SCHEMA: {exc}") from None
    return Automation(path.name, path, main, schema)


def schema_of(path: Path, index: int = 0) -> Any:
    """The bucket schema a file gives a job: a ``.json`` file's contents, or an automation's
    ``BUCKET_SCHEMA`` (None if it defines none)."""
    if path.suffix in SCRIPT_SUFFIXES:
        raise AutomationError(
            f"{path}: a JavaScript automation's BUCKET_SCHEMA is read as it runs; give the"
            " schema as a .json file (or run the automation with --job, which registers it)"
        )
    if path.suffix != ".json":
        return load_automation(path, index).schema
    try:
        return check_schema(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise AutomationError(f"{path}: {exc.strerror or exc}") from None
    except ValueError:
        raise AutomationError(f"{path}: not a JSON file") from None
    except InvalidSchemaError as exc:
        raise AutomationError(f"{path}: {exc}") from None


async def register_job(
    store: Store,
    job: str,
    automations: Sequence[Automation | Script],
    *,
    replace_schema: bool = False,
) -> None:
    """Register ``job`` with the one schema its automations agree on (if any defines one).

    A job already registered with that schema (or run by automations that define none) is
    left as it is, so a device token, which may not register jobs, can run it.
    """
    with_schema = [a for a in automations if isinstance(a, Automation) and a.schema is not None]
    texts = {schema_text(a.schema) for a in with_schema}
    if len(texts) > 1:
        names = ", ".join(a.name for a in with_schema)
        raise AutomationError(f"automations {names} define different BUCKET_SCHEMA for job {job!r}")
    existing = await store.get_job(job)
    if existing is not None and (
        not texts or (existing.schema is not None and {schema_text(existing.schema)} == texts)
    ):
        return
    try:
        await store.register_job(
            job,
            automation=", ".join(a.name for a in automations),
            schema=with_schema[0].schema if with_schema else None,
            replace_schema=replace_schema,
        )
    except AccessDeniedError:
        raise AutomationError(
            f"job {job!r} is not registered (or its schema changed), and registering a job"
            " needs an admin token; an admin runs: devicebucket job register --job"
            f" {job} {' '.join(str(a.path) for a in automations)}"
        ) from None


async def run_automations(
    store: Store,
    automations: Sequence[Automation | Script],
    device: str,
    job: str | None = None,
    *,
    replace_schema: bool = False,
) -> list[RunResult]:
    """Register the job (if any), then run every automation concurrently on ``device``.

    A JavaScript automation's ``BUCKET_SCHEMA`` is read as it runs: it registers that schema
    with the job itself when it first uses the job bucket.
    """
    check_id(device)
    if job is not None:
        check_id(job, "job id")
    if job is not None:  # a JavaScript automation's schema, unknown here, comes later
        await register_job(store, job, automations, replace_schema=replace_schema)
    scripts = any(isinstance(a, Script) for a in automations)
    serving = agent_server(store, device, job) if scripts else nullcontext(("", ""))
    async with serving as (url, token):

        def start(a: Automation | Script) -> Awaitable[Any]:
            if isinstance(a, Automation):
                return a.main(Agent(store, device, job, automation=a.name))
            return run_script(a, url, token, device, job, replace_schema=replace_schema)

        outcomes = await asyncio.gather(*map(start, automations), return_exceptions=True)
    return [
        RunResult(a, outcome if isinstance(outcome, BaseException) else None)
        for a, outcome in zip(automations, outcomes, strict=True)
    ]
