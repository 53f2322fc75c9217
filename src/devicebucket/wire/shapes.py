"""The JSON shapes of devices, jobs and tokens, shared by the HTTP API and the CLI.

The API gives times as Unix seconds; the CLI passes a formatter for ISO 8601.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..core.model import Change, DeviceInfo, Job
from ..core.tokens import Token

__all__ = ["change_from_json", "change_json", "device_json", "job_json", "token_json"]

TimeFormat = Callable[[float], Any]


def _seconds(timestamp: float) -> float:
    return timestamp


def device_json(info: DeviceInfo, time: TimeFormat = _seconds) -> dict[str, Any]:
    return {
        "device": info.device,
        "keys": info.keys,
        "size": info.size,
        "updated_at": time(info.updated_at),
        "jobs": list(info.jobs),
    }


def job_json(job: Job, time: TimeFormat = _seconds) -> dict[str, Any]:
    return {
        "job": job.job,
        "automation": job.automation,
        "bucket_schema": job.schema,
        "created_at": time(job.created_at),
        "updated_at": time(job.updated_at),
    }


def token_json(token: Token, time: TimeFormat = _seconds) -> dict[str, Any]:
    return {
        "id": token.id,
        "device": token.device,
        "admin": token.is_admin,
        "created_at": time(token.created_at),
    }


def change_json(change: Change, time: TimeFormat = _seconds) -> dict[str, Any]:
    return {
        "version": change.version,
        "at": time(change.at),
        "actor": change.actor,
        "added": list(change.added),
        "changed": list(change.changed),
        "removed": list(change.removed),
        "kept": change.kept,
    }


def change_from_json(value: dict[str, Any]) -> Change:
    return Change(
        int(value["version"]),
        float(value["at"]),
        str(value["actor"]),
        tuple(value["added"]),
        tuple(value["changed"]),
        tuple(value["removed"]),
        bool(value["kept"]),
    )
