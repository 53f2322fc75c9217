"""Secret-looking keys: which keys' values are masked wherever a bucket is shown."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "MASK",
    "SECRET_KEY_PATTERNS",
    "has_secret",
    "is_secret_key",
    "mask_secrets",
    "mask_value",
    "secret_key_patterns",
]

SECRET_KEY_PATTERNS: Final = ("token", "password", "secret", "cookie", "session", "key")
MASK: Final = "••••••••"  # shown instead of the value of a secret-looking key


def secret_key_patterns(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The words that make a key name secret: ``DEVICEBUCKET_SECRET_KEYS`` (comma-separated),
    else :data:`SECRET_KEY_PATTERNS`."""
    raw = (os.environ if environ is None else environ).get("DEVICEBUCKET_SECRET_KEYS")
    if raw is None:
        return SECRET_KEY_PATTERNS
    return tuple(word.strip().lower() for word in raw.split(",") if word.strip())


def is_secret_key(key: str, patterns: Iterable[str] = SECRET_KEY_PATTERNS) -> bool:
    """Whether a key's name contains one of ``patterns`` (case-insensitive)."""
    lowered = key.lower()
    return any(word in lowered for word in patterns)


def mask_value(value: Any, patterns: tuple[str, ...]) -> Any:
    """``value`` with the value of every secret-looking key, at any depth (in objects and in
    the objects of lists), replaced by :data:`MASK`. What is not masked is shared, not copied."""
    if isinstance(value, dict):
        return {
            k: MASK if is_secret_key(k, patterns) else mask_value(v, patterns)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [mask_value(v, patterns) for v in value]
    return value


def has_secret(value: Any, patterns: tuple[str, ...]) -> bool:
    """Whether ``value`` holds a secret-looking key at any depth."""
    if isinstance(value, dict):
        return any(is_secret_key(k, patterns) or has_secret(v, patterns) for k, v in value.items())
    if isinstance(value, list):
        return any(has_secret(v, patterns) for v in value)
    return False


def mask_secrets(data: Mapping[str, Any], patterns: Iterable[str]) -> dict[str, Any]:
    """``data`` with the value of every secret-looking key, at any depth, replaced by
    :data:`MASK`."""
    masked: dict[str, Any] = mask_value(dict(data), tuple(patterns))
    return masked
