"""devicebucket: persistent device and job buckets for device-automation fleets."""

from __future__ import annotations

from .backends.factory import default_url, open_store
from .backends.http import HTTPStore
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
