"""Device and job ids: 1-256 characters from a small alphabet, safe in paths and URLs."""

from __future__ import annotations

import re
from typing import Final

from .errors import InvalidValueError

__all__ = ["ID_ALPHABET", "ID_PATTERN", "check_id"]

ID_ALPHABET: Final = "A-Z a-z 0-9 . _ - : @"
#: The same rule as a regular expression (the OpenAPI document's ``pattern``).
ID_PATTERN: Final = r"^[A-Za-z0-9._\-:@]{1,256}$"
_ID_RE: Final = re.compile(ID_PATTERN[1:-1])


def check_id(value: object, what: str = "device id") -> str:
    """Return ``value`` if it is a valid device or job id, else raise InvalidValueError."""
    if type(value) is str and _ID_RE.fullmatch(value):
        return value
    rule = f"{what} must be 1-256 characters from {ID_ALPHABET}"
    if not isinstance(value, str):
        raise InvalidValueError(f"{rule}; got {type(value).__name__}")
    if not value:
        raise InvalidValueError(f"{rule}; got an empty string")
    if len(value) > 256:
        raise InvalidValueError(f"{rule}; got {len(value)} characters")
    bad = next(ch for ch in value if not _ID_RE.fullmatch(ch))
    raise InvalidValueError(f"{rule}; got the character {bad!r}")
