"""devicebucket: persistent device and job buckets for device-automation fleets."""

from __future__ import annotations

from .agent import (
    Agent,
    BucketResult,
    BucketSuccess,
    DeviceBucketResult,
    DeviceBucketSuccess,
    DeviceBucketUtils,
    Failure,
    JobBucketUtils,
)
from .errors import (
    ConflictError,
    DeviceBucketError,
    InvalidSchemaError,
    InvalidValueError,
    JobConflictError,
    NotFoundError,
    SchemaViolationError,
    StoreUnavailableError,
)
from .factory import default_url, open_store
from .rules import Limits
from .sqlite import SQLiteStore
from .store import BucketRecord, DeviceInfo, Job, Snapshot, Store

__all__ = [
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
    "default_url",
    "open_store",
]
