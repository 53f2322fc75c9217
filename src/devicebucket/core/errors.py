"""The exceptions a store raises. The agent API turns each into ``{"success": False}``.

Every message names the problem (which key or path, what type, which limit) and never
contains a stored value.
"""

from __future__ import annotations

__all__ = [
    "AccessDeniedError",
    "ConflictError",
    "DeviceBucketError",
    "InvalidSchemaError",
    "InvalidValueError",
    "JobConflictError",
    "NotFoundError",
    "QuotaExceededError",
    "SchemaViolationError",
    "SettingError",
    "StoreUnavailableError",
    "TooManyWatchersError",
    "WaitTimeoutError",
]


class DeviceBucketError(Exception):
    """Base class of every expected failure."""


class InvalidValueError(DeviceBucketError, ValueError):
    """The data, a key or an id is not acceptable (type, size, depth, alphabet)."""


class SettingError(DeviceBucketError, ValueError):
    """A setting (an environment variable, a flag, a key file) cannot be used; the message
    names it."""


class QuotaExceededError(InvalidValueError):
    """The write would take a device's buckets past its storage quota."""


class SchemaViolationError(DeviceBucketError):
    """The merged job bucket does not match its job's schema."""

    def __init__(self, message: str, path: str, rule: str) -> None:
        super().__init__(message)
        self.path = path
        self.rule = rule


class InvalidSchemaError(DeviceBucketError):
    """A job's ``BUCKET_SCHEMA`` is not a valid JSON Schema (draft 2020-12)."""


class JobConflictError(DeviceBucketError):
    """A job is already registered with a different schema."""


class ConflictError(DeviceBucketError):
    """A conditional write expected a version the bucket no longer has."""

    def __init__(self, expected: int, actual: int, message: str | None = None) -> None:
        super().__init__(
            message
            or f"version conflict: expected version {expected}, the bucket is at version {actual}"
        )
        self.expected = expected
        self.actual = actual

    @classmethod
    def gave_up(cls, attempts: int) -> ConflictError:
        """An ``update(fn)`` that lost the race every time."""
        return cls(-1, -1, f"version conflict: update gave up after {attempts} attempts")


class NotFoundError(DeviceBucketError, LookupError):
    """A job or other named object does not exist."""


class StoreUnavailableError(DeviceBucketError):
    """The store could not be reached or could not complete the operation."""


class AccessDeniedError(DeviceBucketError):
    """The server refused the token (missing, invalid, revoked, or not allowed here)."""


class WaitTimeoutError(DeviceBucketError, TimeoutError):
    """``wait_for`` gave up: the condition did not hold in time."""


class TooManyWatchersError(DeviceBucketError):
    """A token already watches as many buckets as the server allows."""
