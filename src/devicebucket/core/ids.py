"""Device and job ids: 1-256 characters from a small alphabet, safe in paths and URLs."""

from __future__ import annotations

import re
from typing import Final

from .errors import InvalidValueError

__all__ = ["ID_ALPHABET", "ID_PATTERN", "check_id"]

ID_ALPHABET: Final = "A-Z a-z 0-9 . _ - : @"
#: The same rule as a regular expression (the OpenAPI document's ``pattern``): 1-256
#: characters of the alphabet, not all of them dots.
ID_PATTERN: Final = r"^(?!\.+$)[A-Za-z0-9._\-:@]{1,256}$"
_ID_RE: Final = re.compile(r"[A-Za-z0-9._\-:@]{1,256}")


#: Ids found valid lately (a dict lookup costs a tenth of the pattern's match).
_VALID: Final[set[str]] = set()
_MAX_VALID: Final = 16_384  # ids of up to 256 characters: a few MB at most


def check_id(value: object, what: str = "device id") -> str:
    """Return ``value`` if it is a valid device or job id, else raise InvalidValueError."""
    if type(value) is str:
        if value in _VALID:
            return value
        if _ID_RE.fullmatch(value) and (value[0] != "." or value.strip(".")):
            if len(_VALID) >= _MAX_VALID:
                _VALID.clear()
            _VALID.add(value)
            return value
    rule = f"{what} must be 1-256 characters from {ID_ALPHABET}, not only dots"
    if not isinstance(value, str):
        raise InvalidValueError(f"{rule}; got {type(value).__name__}")
    if not value:
        raise InvalidValueError(f"{rule}; got an empty string")
    if len(value) > 256:
        raise InvalidValueError(f"{rule}; got {len(value)} characters")
    bad = next((ch for ch in value if not _ID_RE.fullmatch(ch)), None)
    if bad is None:  # "." and ".." name no bucket: in a URL they name the parent path
        raise InvalidValueError(f"{rule}; got {value!r}")
    raise InvalidValueError(f"{rule}; got the character {bad!r}")
