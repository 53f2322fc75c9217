"""devicebucket: persistent device and job buckets for device-automation fleets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .backends.factory import default_url, open_store
from .backends.sqlite import SQLiteStore
from .core.errors import (
    AccessDeniedError,
    ConflictError,
    DeviceBucketError,
    InvalidSchemaError,
    InvalidValueError,
    JobConflictError,
    NotFoundError,
    SchemaViolationError,
    StoreUnavailableError,
)
from .core.limits import Limits
from .core.model import BucketRecord, DeviceInfo, Job, Snapshot, TokenRecord
from .core.store import Store
from .core.tokens import Token
from .entry.agent import (
    Agent,
    BucketResult,
    BucketSuccess,
    DeviceBucketResult,
    DeviceBucketSuccess,
    DeviceBucketUtils,
    Failure,
    JobBucketUtils,
)

__all__ = [
    "AccessDeniedError",
    "Agent",
    "BucketRecord",
    "BucketResult",
    "BucketSuccess",
    "ConflictError",
    "DeviceBucketError",
    "DeviceBucketResult",
    "DeviceBucketSuccess",
    "DeviceBucketUtils",
    "DeviceInfo",
    "Failure",
    "HTTPStore",
    "InvalidSchemaError",
    "InvalidValueError",
    "Job",
    "JobBucketUtils",
    "JobConflictError",
    "Limits",
    "NotFoundError",
    "SQLiteStore",
    "SchemaViolationError",
    "Snapshot",
    "Store",
    "StoreUnavailableError",
    "Token",
    "TokenRecord",
    "default_url",
    "open_store",
]

if TYPE_CHECKING:
    from .backends.http import HTTPStore


def __getattr__(name: str) -> Any:
    """``HTTPStore`` on first use: it brings httpx, which a local store and most commands
    never need (a command line starts that much sooner)."""
    if name == "HTTPStore":
        from .backends.http import HTTPStore

        return HTTPStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
