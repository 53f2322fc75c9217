"""The error table of the HTTP contract: which failure is which status and code.

The server answers a store's exception with the status and ``code`` of its row (and the
row's extra fields); the HTTP client store reads a status and code back into the same
exception. One table, used both ways.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from ..core.errors import (
    AccessDeniedError,
    ConflictError,
    DeviceBucketError,
    InvalidSchemaError,
    InvalidValueError,
    JobConflictError,
    NotFoundError,
    QuotaExceededError,
    SchemaViolationError,
    StoreUnavailableError,
    TooManyWatchersError,
)

__all__ = ["ERRORS", "ErrorKind", "error_answer", "error_from_answer"]


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """One row: an exception, the status and the code it is answered with."""

    error: type[DeviceBucketError]
    status: int
    code: str


# In order: the server answers an exception with the first row whose class it is; the client
# reads a code back with the first row of that code (else of that status). The rows after the
# store's own are the server's answers to a bad request itself.
ERRORS: Final = (
    ErrorKind(SchemaViolationError, 422, "schema_violation"),
    ErrorKind(InvalidSchemaError, 422, "invalid_schema"),
    ErrorKind(QuotaExceededError, 413, "quota_exceeded"),
    ErrorKind(InvalidValueError, 422, "invalid_value"),
    ErrorKind(JobConflictError, 409, "job_conflict"),
    ErrorKind(ConflictError, 412, "version_conflict"),
    ErrorKind(NotFoundError, 404, "not_found"),
    ErrorKind(StoreUnavailableError, 503, "store_unavailable"),
    ErrorKind(AccessDeniedError, 401, "unauthorized"),
    ErrorKind(AccessDeniedError, 403, "forbidden"),
    ErrorKind(TooManyWatchersError, 429, "too_many_watchers"),
    ErrorKind(AccessDeniedError, 429, "too_many_failures"),
    ErrorKind(InvalidValueError, 400, "bad_request"),
    ErrorKind(InvalidValueError, 413, "too_large"),
    ErrorKind(InvalidValueError, 422, "invalid"),  # any other expected failure
)
_BY_CODE: Final = {kind.code: kind for kind in reversed(ERRORS)}
_BY_STATUS: Final = {kind.status: kind for kind in reversed(ERRORS)}


def error_answer(exc: DeviceBucketError) -> tuple[int, dict[str, Any]]:
    """The status and JSON body that answer ``exc``."""
    kind = next((k for k in ERRORS if isinstance(exc, k.error)), ERRORS[-1])
    body: dict[str, Any] = {"error": str(exc), "code": kind.code}
    if isinstance(exc, SchemaViolationError):
        body |= {"path": exc.path, "rule": exc.rule}
    elif isinstance(exc, ConflictError):
        body["version"] = exc.actual
    return kind.status, body


def error_from_answer(status: int, body: object, message: str) -> DeviceBucketError:
    """The exception an error answer stands for (``message``: its ``error`` text)."""
    fields = body if isinstance(body, dict) else {}
    code = fields.get("code")
    kind = _BY_CODE.get(code) if isinstance(code, str) else None
    if kind is None or kind.status != status:
        kind = _BY_STATUS.get(status)
    if kind is None:
        return StoreUnavailableError(f"HTTP {status}: {message}")
    if kind.error is SchemaViolationError:
        return SchemaViolationError(
            message, str(fields.get("path", "")), str(fields.get("rule", ""))
        )
    if kind.error is ConflictError:
        actual = fields.get("version", -1)
        return ConflictError(-1, actual if type(actual) is int else -1, message)
    return kind.error(message)
