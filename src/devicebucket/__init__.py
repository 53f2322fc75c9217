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
from .factory import default_url, open_store
from .remote import HTTPStore
from .rules import Limits
from .sqlite import SQLiteStore
from .store import BucketRecord, DeviceInfo, Job, Snapshot, Store, TokenRecord
from .tokens import Token

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
