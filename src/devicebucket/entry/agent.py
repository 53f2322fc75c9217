"""The agent API of an automation: ``agent.utils.deviceBucket`` and ``agent.utils.bucket``.

A thin layer over a :class:`~devicebucket.store.Store`: it passes each call on and turns every
expected failure into ``{"success": False, "error": "..."}``. Nothing here raises for bad
input, a schema violation or a broken store.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable
from contextlib import aclosing
from typing import Any, Generic, Literal, TypeAlias, TypedDict, TypeVar, cast

from ..core.actors import automation_surface
from ..core.errors import DeviceBucketError
from ..core.ids import check_id
from ..core.live import Condition
from ..core.model import Snapshot, UpdateFunction
from ..core.store import Store
from ..wire.shapes import event_json

__all__ = [
    "Agent",
    "BucketResult",
    "BucketSuccess",
    "DeviceBucketResult",
    "DeviceBucketSuccess",
    "DeviceBucketUtils",
    "Failure",
    "JobBucketUtils",
    "Utils",
]


class DeviceBucketSuccess(TypedDict):
    success: Literal[True]
    deviceBucket: dict[str, Any]


class BucketSuccess(TypedDict):
    success: Literal[True]
    bucket: dict[str, Any]


class Failure(TypedDict):
    success: Literal[False]
    error: str


DeviceBucketResult: TypeAlias = DeviceBucketSuccess | Failure
BucketResult: TypeAlias = BucketSuccess | Failure

R = TypeVar("R", DeviceBucketResult, BucketResult)


class _BucketUtils(ABC, Generic[R]):
    """get / set / delete / clear / update of one bucket, each answering a result dict."""

    def __init__(self, store: Store, device: str, job: str | None, actor: str = "agent") -> None:
        self._store = store
        self._device = device
        self._job = job
        self._actor = actor

    @abstractmethod
    def _success(self, data: dict[str, Any]) -> R: ...

    def _failure(self, error: str) -> R:
        return cast(R, {"success": False, "error": error})

    def _precondition(self) -> str | None:
        """Why this bucket cannot be used at all, or None."""
        return None

    async def _result(self, call: Awaitable[Snapshot]) -> R:
        try:
            snapshot = await call
        except DeviceBucketError as exc:
            return self._failure(str(exc))
        return self._success(snapshot.data)

    async def get(self) -> R:
        """The stored data, or ``{}`` if nothing was stored yet (nothing is created)."""
        if problem := self._precondition():
            return self._failure(problem)
        try:  # _result's work, written out: a read is the call made most
            snapshot = await self._store.get(self._device, job=self._job)
        except DeviceBucketError as exc:
            return self._failure(str(exc))
        return self._success(snapshot.data)

    async def set(self, data: dict[str, Any], expire_in: dict[str, float] | None = None) -> R:
        """Merge ``data`` shallowly: its keys are added or overwritten, the rest kept.
        ``expire_in`` gives keys of ``data`` an expiry in seconds (``{"otp": 300}``); a key
        set again without one no longer expires."""
        if problem := self._precondition():
            return self._failure(problem)
        return await self._result(
            self._store.merge(
                self._device, data, job=self._job, actor=self._actor, expire_in=expire_in
            )
        )

    async def delete(self, *keys: str) -> R:
        """Remove these top-level keys (missing ones are ignored)."""
        if problem := self._precondition():
            return self._failure(problem)
        return await self._result(
            self._store.delete(self._device, keys, job=self._job, actor=self._actor)
        )

    async def clear(self) -> R:
        """Remove every key."""
        if problem := self._precondition():
            return self._failure(problem)
        return await self._result(self._store.clear(self._device, job=self._job, actor=self._actor))

    async def update(self, fn: UpdateFunction) -> R:
        """Atomic read-modify-write: merge ``fn(current)``, retried on conflict.

        ``fn`` may be a plain or an async function; an exception it raises propagates.
        """
        if problem := self._precondition():
            return self._failure(problem)
        return await self._result(
            self._store.update(self._device, fn, job=self._job, actor=self._actor)
        )

    async def watch(self, since: int | None = None) -> AsyncGenerator[dict[str, Any], None]:
        """The bucket's changes as they happen, for as long as the caller iterates: each
        ``{"version", "at", "actor", "changed", "removed"}`` (``changed``: the keys set, with
        their new values), or ``{"resync": True, "version", "bucket"}`` when the history no
        longer keeps the versions after ``since``. ``since=None``: from the current version
        on. A failure ends the watch with a last ``{"success": False, "error": ...}``."""
        if problem := self._precondition():
            yield dict(self._failure(problem))
            return
        try:
            events = self._store.watch(self._device, job=self._job, since=since)
            async with aclosing(events):
                async for event in events:
                    yield copy.deepcopy(event_json(event))  # a copy of its own, as get's
        except DeviceBucketError as exc:
            yield dict(self._failure(str(exc)))

    async def wait_for(self, key_or_predicate: Condition, timeout: float = 30) -> R:  # noqa: ASYNC109
        """The bucket once a key is present (or ``predicate(bucket)`` is true), waiting for
        changes as they happen (no polling); a failure after ``timeout`` seconds."""
        if problem := self._precondition():
            return self._failure(problem)
        return await self._result(
            self._store.wait_for(self._device, key_or_predicate, job=self._job, timeout=timeout)
        )


class DeviceBucketUtils(_BucketUtils[DeviceBucketResult]):
    """The device bucket: shared by every job and automation on the device."""

    def _success(self, data: dict[str, Any]) -> DeviceBucketResult:
        return {"success": True, "deviceBucket": data}


class JobBucketUtils(_BucketUtils[BucketResult]):
    """The job bucket of (device, job), checked against the job's schema."""

    def _success(self, data: dict[str, Any]) -> BucketResult:
        return {"success": True, "bucket": data}

    def _precondition(self) -> str | None:
        if self._job is None:
            return (
                "agent.utils.bucket requires a job context: this automation runs without a job"
                " (run it with --job ID, or create Agent(store, device_id, job_id=...));"
                " use agent.utils.deviceBucket for device-wide data"
            )
        return None


class Utils:
    """``agent.utils``: ``deviceBucket`` (alias ``device_bucket``) and ``bucket``."""

    def __init__(self, store: Store, device: str, job: str | None, actor: str = "agent") -> None:
        self.deviceBucket = DeviceBucketUtils(store, device, None, actor)
        self.device_bucket = self.deviceBucket
        self.bucket = JobBucketUtils(store, device, job, actor)


class Agent:
    """What an automation's ``main(agent)`` receives."""

    def __init__(
        self,
        store: Store,
        device_id: str,
        job_id: str | None = None,
        *,
        automation: str | None = None,
    ) -> None:
        self.store = store
        self.device_id = check_id(device_id)
        self.job_id = None if job_id is None else check_id(job_id, "job id")
        self.automation = automation
        # Who writes, as the history records it (core.actors): the automation, its job.
        actor = store.written_by(automation_surface(automation, self.job_id))
        self.utils = Utils(store, self.device_id, self.job_id, actor)

    def __repr__(self) -> str:
        job = f" job={self.job_id}" if self.job_id else ""
        return f"<Agent device={self.device_id}{job} store={self.store.url}>"
