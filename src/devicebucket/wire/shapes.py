"""The JSON shapes of devices, jobs, tokens and changes, shared by the HTTP API, its client
and the CLI. Every time is RFC 3339 in UTC with milliseconds (``2026-11-25T10:00:00.000Z``):
:func:`rfc3339` writes one, :func:`seconds_of` reads one back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..core.model import Change, DeviceInfo, Job
from ..core.tokens import Token
from ..core.watching import BucketChange, Event, Overflow, Resync

__all__ = [
    "change_from_json",
    "change_json",
    "device_json",
    "event_from_json",
    "event_json",
    "job_json",
    "rfc3339",
    "seconds_of",
    "token_json",
]


def rfc3339(timestamp: float, *, precise: bool = False) -> str:
    """Unix seconds as RFC 3339 in UTC, to the millisecond (``precise``: microsecond)."""
    when = datetime.fromtimestamp(timestamp, UTC)
    spec = "microseconds" if precise else "milliseconds"
    return when.isoformat(timespec=spec).replace("+00:00", "Z")


def seconds_of(text: str) -> float:
    """An RFC 3339 time as Unix seconds (ValueError if it is not one)."""
    return datetime.fromisoformat(text).timestamp()


def device_json(info: DeviceInfo) -> dict[str, Any]:
    return {
        "device": info.device,
        "keys": info.keys,
        "size": info.size,
        "updated_at": rfc3339(info.updated_at),
        "jobs": list(info.jobs),
    }


def job_json(job: Job) -> dict[str, Any]:
    return {
        "job": job.job,
        "automation": job.automation,
        "bucket_schema": job.schema,
        "created_at": rfc3339(job.created_at),
        "updated_at": rfc3339(job.updated_at),
    }


def token_json(token: Token) -> dict[str, Any]:
    return {
        "id": token.id,
        "device": token.device,
        "admin": token.is_admin,
        "created_at": rfc3339(token.created_at),
    }


def change_json(change: Change) -> dict[str, Any]:
    return {
        "version": change.version,
        "at": rfc3339(change.at),
        "actor": change.actor,
        "added": list(change.added),
        "changed": list(change.changed),
        "removed": list(change.removed),
        "kept": change.kept,
    }


def change_from_json(value: dict[str, Any]) -> Change:
    return Change(
        int(value["version"]),
        seconds_of(value["at"]),
        str(value["actor"]),
        tuple(value["added"]),
        tuple(value["changed"]),
        tuple(value["removed"]),
        bool(value["kept"]),
    )


def event_json(event: Event | Overflow, *, where: bool = False) -> dict[str, Any]:
    """A watched change as the agent API, the CLI and a server's event stream give it;
    ``where`` adds its device and job (a watch of many buckets)."""
    if isinstance(event, Overflow):
        return {"overflow": True, "device": event.device}
    place = {"device": event.device, "job": event.job} if where else {}
    if isinstance(event, Resync):
        return {"resync": True, "version": event.version, "bucket": event.bucket, **place}
    return {
        "version": event.version,
        "at": rfc3339(event.at),
        "actor": event.actor,
        "changed": event.changed,
        "removed": list(event.removed),
        **place,
    }


def event_from_json(value: dict[str, Any], device: str, job: str | None) -> Event:
    """A watched change of bucket (device, job) read back from ``event_json``."""
    version = int(value["version"])
    if value.get("resync"):
        return Resync(device, job, version, dict(value["bucket"]))
    return BucketChange(
        device,
        job,
        version,
        seconds_of(value["at"]),
        str(value["actor"]),
        dict(value["changed"]),
        tuple(value["removed"]),
    )
