"""The store contract: every backend (SQLite, PostgreSQL, HTTP) is a ``Store``.

Public methods live on the base class: they check ids, values and limits (the ``core`` rules)
and then call a small set of backend hooks (``_get``, ``_write``, ...). What a write does is
planned by :func:`devicebucket.core.planner.plan_write`, which every SQL backend executes; the
HTTP store sends the operation to a server that does the same. The rules are the same
everywhere.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from .actors import LOCAL, actor
from .errors import ConflictError, InvalidValueError, NotFoundError
from .expiry import check_expire_in
from .ids import check_id
from .importing import Checked, check_records
from .limits import MAX_DEVICE_PAGE, Limits, check_page_size
from .live import Live
from .model import (
    DEVICE_SORTS,
    Change,
    DeviceInfo,
    DevicePage,
    Job,
    Record,
    Snapshot,
    UpdateFunction,
)
from .operations import Clear, Delete, Merge, Operation, Replace
from .schema import check_schema, schema_text
from .tokens import Token, token_id
from .values import encode, is_valid_text, normalize_data, normalize_keys

__all__ = ["Store"]


def _job_id(job: str | None) -> str | None:
    return None if job is None else check_id(job, "job id")


class Store(Live, ABC):
    """A persistent home for device buckets and job buckets.

    Every write is one atomic read-merge-write and is durable before it returns.
    Versions start at 0 for a bucket never written and grow by one with each change;
    a write that changes nothing (``merge({})``) keeps the version.
    """

    #: Where the store lives, for messages (never includes a password or token).
    url: str = ""
    #: Who the store vouches a writer is (``core.actors``): ``local`` for a store opened
    #: directly; None for a server's client, whose server names the token instead.
    credential: str | None = LOCAL

    def _actor(self, given: str | None, suffix: str | None = None) -> str:
        """The actor a write records: ``given``, else ``<credential> via library``."""
        if given is not None and not isinstance(given, str):
            raise InvalidValueError("actor must be a string")
        text = " ".join((given or "").split())[:200] or self.written_by("library")
        if not is_valid_text(text):  # e.g. a file name from a broken file system encoding
            text = text.encode("utf-8", "replace").decode()
        return f"{text} ({suffix})" if suffix else text

    def written_by(self, surface: str) -> str:
        """The actor to pass for a write from ``surface`` (``cli``, an automation...): the
        surface alone through a server, which adds the token; else ``local via <surface>``."""
        return surface if self.credential is None else actor(self.credential, surface)

    def __init__(self, *, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._init_live()

    # --- buckets -----------------------------------------------------------------------

    async def get(self, device: str, *, job: str | None = None) -> Snapshot:
        """The bucket's data and version; ``{}`` at version 0 if it was never written."""
        return await self._get(check_id(device), _job_id(job))

    async def get_json(self, device: str, *, job: str | None = None) -> tuple[str, int]:
        """The bucket as canonical JSON text, and its version (what a server sends)."""
        return await self._get_json(check_id(device), _job_id(job))

    async def merge(
        self,
        device: str,
        data: Mapping[str, Any],
        *,
        job: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot:
        """Shallow-merge ``data`` into the bucket and return the bucket after the write.

        ``actor`` says who wrote (an automation, a token, the dashboard) in the history.
        ``expire_in`` gives keys of ``data`` an expiry, in seconds from now; a key written
        without one loses any it had."""
        device, job_id = check_id(device), _job_id(job)
        patch = normalize_data(data, self.limits)
        expiring = None if expire_in is None else check_expire_in(expire_in, patch)
        return await self._change(device, job_id, Merge(patch), expected_version, actor, expiring)

    async def delete(
        self,
        device: str,
        keys: Iterable[str],
        *,
        job: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Snapshot:
        """Remove top-level keys; keys that are not there are ignored."""
        if isinstance(keys, str):
            raise InvalidValueError("keys to delete must be a list of str, not one str")
        device, job_id = check_id(device), _job_id(job)
        operation = Delete(normalize_keys(keys))
        return await self._change(device, job_id, operation, expected_version, actor)

    async def clear(
        self,
        device: str,
        *,
        job: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Snapshot:
        """Remove every key. The bucket keeps its version history (the version grows)."""
        device, job_id = check_id(device), _job_id(job)
        return await self._change(device, job_id, Clear(), expected_version, actor)

    async def _change(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str | None,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot:
        """Write (checked ids and values), then tell this process's watchers."""
        snapshot = await self._write(
            device, job, operation, _expected(expected_version), self._actor(actor), expire_in
        )
        return self._written(device, job, snapshot)

    def _written(self, device: str, job: str | None, snapshot: Snapshot) -> Snapshot:
        written, snapshot.written = snapshot.written, None  # the store's own dict: kept here
        self._notify(device, job, snapshot.version, written)
        return snapshot

    # --- history -------------------------------------------------------------------------

    async def history(
        self, device: str, *, job: str | None = None, limit: int = 100
    ) -> list[Change]:
        """The bucket's changes, newest first: version, time, actor and the keys touched."""
        return await self._history(check_id(device), _job_id(job), check_page_size(limit))

    async def at_version(self, device: str, version: int, *, job: str | None = None) -> Snapshot:
        """The bucket as it was at ``version``. NotFoundError if that version's contents are no
        longer kept (only the last ``limits.history_versions`` are) or never existed."""
        device, job_id = check_id(device), _job_id(job)
        _check_version_number(version)
        if version == 0:
            return Snapshot({}, 0, None)
        found = await self._history_text(device, job_id, version)
        if found is None:
            raise NotFoundError(
                f"version {version} of this bucket is not kept: it never existed, or it is"
                f" older than the last {self.limits.history_versions} versions"
            )
        text, at = found
        return Snapshot(None, version, at, text)

    async def restore(
        self,
        device: str,
        version: int,
        *,
        job: str | None = None,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Snapshot:
        """Make the bucket what it was at ``version``, as a new version (so it can be undone).
        A job bucket's restored contents must match the job's current schema."""
        device, job_id = check_id(device), _job_id(job)
        _check_version_number(version)
        snapshot = await self._restore(
            device,
            job_id,
            version,
            _expected(expected_version),
            self._actor(actor, f"restore of version {version}"),
        )
        return self._written(device, job_id, snapshot)

    async def version(self, device: str, *, job: str | None = None) -> int:
        """The bucket's current version (0 if never written)."""
        return (await self.get(device, job=job)).version

    async def update(
        self,
        device: str,
        fn: UpdateFunction,
        *,
        job: str | None = None,
        attempts: int = 100,
        actor: str | None = None,
    ) -> Snapshot:
        """Atomic read-modify-write: merge ``fn(current)``, retrying when another writer won.

        ``fn`` gets a fresh copy of the bucket and returns (or awaits to) a dict to merge.
        Each attempt is a conditional write on the version that ``fn`` saw, so concurrent
        updates never lose one another, whatever the store.
        """
        for attempt in range(attempts):
            current = await self.get(device, job=job)
            patch = fn(current.data)
            if inspect.isawaitable(patch):
                patch = await patch
            try:
                return await self.merge(
                    device, patch, job=job, expected_version=current.version, actor=actor
                )
            except ConflictError:
                # Jittered exponential backoff, capped, so contenders spread out.
                await asyncio.sleep(random.uniform(0, min(0.05, 0.0005 * 2**attempt)))
        raise ConflictError.gave_up(attempts)

    # --- devices and jobs ----------------------------------------------------------------

    async def devices(self, *, after: str | None = None, limit: int = 100) -> list[DeviceInfo]:
        """Devices with at least one bucket, ordered by id, ``limit`` at a time after ``after``."""
        if after is not None:
            check_id(after)
        return await self._devices(after, check_page_size(limit))

    async def device(self, device: str) -> DeviceInfo | None:
        """One device's listing (key count, size, last update, jobs), or None if it has no
        bucket."""
        return await self._device(check_id(device))

    async def device_page(
        self,
        *,
        search: str = "",
        job: str | None = None,
        sort: str = "device",
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> DevicePage:
        """A page of devices for browsing: ids containing ``search`` (case-insensitive), only
        those with a bucket of ``job`` if given, ordered by ``sort`` (one of DEVICE_SORTS, ties
        by id), ``limit`` of them from ``offset``; with the number that matched."""
        if not isinstance(search, str) or len(search) > 256 or not is_valid_text(search):
            raise InvalidValueError(
                "search must be valid Unicode text (no lone surrogate) of at most 256 characters"
            )
        if job is not None:
            check_id(job, "job id")
        if sort not in DEVICE_SORTS:
            raise InvalidValueError(f"sort must be one of {', '.join(DEVICE_SORTS)}")
        if type(offset) is not int or offset < 0:
            raise InvalidValueError("offset must be an integer >= 0")
        check_page_size(limit, MAX_DEVICE_PAGE)
        return await self._device_page(search, job, sort, bool(descending), offset, limit)

    async def register_job(
        self,
        job: str,
        *,
        automation: str | None = None,
        schema: object = None,
        replace_schema: bool = False,
    ) -> Job:
        """Register a job with its automation's bucket schema.

        ``schema=None`` keeps the schema a job already has. A job that has a different
        schema is refused with JobConflictError unless ``replace_schema``.
        """
        job = check_id(job, "job id")
        checked = None if schema is None else check_schema(schema, self.limits)
        text = None if checked is None else schema_text(checked)
        return await self._put_job(job, automation, text, replace_schema)

    async def job_summaries(self) -> list[tuple[Job, int]]:
        """Every registered job, ordered by id, with how many devices have a bucket of it."""
        return await self._job_summaries()

    async def get_job(self, job: str) -> Job | None:
        """The job as registered, or None."""
        return await self._get_job(check_id(job, "job id"))

    async def jobs(self) -> list[Job]:
        """Every registered job, ordered by id."""
        return await self._jobs()

    async def delete_device(self, device: str) -> int:
        """Remove every bucket of a device (reset or retired); returns how many there were."""
        device = check_id(device)
        removed = await self._delete_device(device)
        self._notify_removed(device)
        return removed

    # --- access tokens -------------------------------------------------------------------

    async def create_token(self, device: str | None) -> tuple[Token, str]:
        """Issue a token for one device (``None``: an admin token). The secret is returned
        once, here; the store keeps only its hash."""
        if device is not None:
            check_id(device)
        return await self._issue_token(device)

    async def tokens(self) -> list[Token]:
        """Every token, without secrets, ordered by creation."""
        return await self._tokens()

    async def token(self, ident: str) -> Token | None:
        """A token by id (without its secret), or None if there is none."""
        if not isinstance(ident, str) or not ident:
            return None
        return await self._token(ident)

    async def revoke_token(self, ident: str) -> None:
        """Revoke a token by id; NotFoundError if there is none."""
        if not await self._delete_token(ident):
            raise NotFoundError(f"no token with id {ident[:32]!r}")

    async def authenticate(self, presented: str) -> Token | None:
        """The token a presented secret belongs to, or None (compared in constant time)."""
        if not isinstance(presented, str) or token_id(presented) is None:
            return None
        return await self._authenticate(presented)

    async def ping(self) -> None:
        """Raise StoreUnavailableError if the store cannot be reached."""
        await self._get("devicebucket.health", None)

    # --- export and import ---------------------------------------------------------------

    def export(self, *, history: bool = True) -> AsyncIterator[Record]:
        """Every job, every token (as a hash), every bucket (ordered by device and job),
        then, unless ``history=False``, every history entry (by device, job and version),
        with the contents the history keeps."""
        return self._export(history)

    async def import_records(self, records: Iterable[Record]) -> int:
        """Write exported records exactly as they are, all or nothing. Returns the count.

        A bucket or job in the records replaces the one in the store; others are kept. An
        imported bucket's old history is dropped; history entries in the records are
        written (after the buckets of the same call).
        """
        checked = check_records(records, self.limits)
        await self._import(checked)
        return len(checked)

    # --- life cycle ----------------------------------------------------------------------

    async def close(self) -> None:
        """Release connections. The store may not be used afterwards."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # --- backend hooks -------------------------------------------------------------------

    @abstractmethod
    async def _get(self, device: str, job: str | None) -> Snapshot: ...

    async def _get_json(self, device: str, job: str | None) -> tuple[str, int]:
        """Override where the stored text can be returned without decoding it."""
        snapshot = await self._get(device, job)
        return snapshot.text or encode(snapshot.data), snapshot.version

    @abstractmethod
    async def _write(
        self,
        device: str,
        job: str | None,
        operation: Operation,
        expected_version: int | None,
        actor: str,
        expire_in: Mapping[str, float] | None = None,
    ) -> Snapshot:
        """Apply ``operation`` atomically (see ``planner.plan_write``; ``expire_in``: checked
        seconds for keys of a merge), record the change in the history (with the new
        contents; only the last ``limits.history_versions`` keep them), and make it
        durable."""

    async def _restore(
        self, device: str, job: str | None, version: int, expected_version: int | None, actor: str
    ) -> Snapshot:
        """Override where a restore is one request; this reads the version, then writes it."""
        old = await self.at_version(device, version, job=job)
        return await self._write(device, job, Replace(old.data), expected_version, actor)

    @abstractmethod
    async def _history(self, device: str, job: str | None, limit: int) -> list[Change]: ...

    @abstractmethod
    async def _history_text(
        self, device: str, job: str | None, version: int
    ) -> tuple[str, float] | None:
        """The stored text and time of a kept version, else None."""

    @abstractmethod
    async def _devices(self, after: str | None, limit: int) -> list[DeviceInfo]: ...

    @abstractmethod
    async def _device_page(
        self, search: str, job: str | None, sort: str, descending: bool, offset: int, limit: int
    ) -> DevicePage: ...

    @abstractmethod
    async def _device(self, device: str) -> DeviceInfo | None: ...

    @abstractmethod
    async def _token(self, ident: str) -> Token | None: ...

    @abstractmethod
    async def _job_summaries(self) -> list[tuple[Job, int]]: ...

    @abstractmethod
    async def _put_job(
        self, job: str, automation: str | None, schema: str | None, replace_schema: bool
    ) -> Job: ...

    @abstractmethod
    async def _get_job(self, job: str) -> Job | None: ...

    @abstractmethod
    async def _jobs(self) -> list[Job]: ...

    @abstractmethod
    def _export(self, history: bool) -> AsyncIterator[Record]: ...

    @abstractmethod
    async def _delete_device(self, device: str) -> int: ...

    @abstractmethod
    async def _issue_token(self, device: str | None) -> tuple[Token, str]:
        """Create a token (see ``tokens.new_token``) and keep only its hash."""

    @abstractmethod
    async def _tokens(self) -> list[Token]: ...

    @abstractmethod
    async def _delete_token(self, ident: str) -> bool: ...

    @abstractmethod
    async def _authenticate(self, presented: str) -> Token | None:
        """The token of a well-formed presented secret, or None (``tokens.token_matches``)."""

    @abstractmethod
    async def _import(self, checked: Checked) -> None: ...


def _check_version_number(version: object) -> None:
    if type(version) is not int or not 0 <= version < 2**63:
        raise InvalidValueError("version must be an integer from 0 to 2**63 - 1")


def _expected(version: int | None) -> int | None:
    if version is not None and (type(version) is not int or version < 0):
        raise InvalidValueError("expected_version must be an integer >= 0")
    return version
