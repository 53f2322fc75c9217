"""Secret-looking keys: which keys' values are masked wherever a bucket is shown."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
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

#: A key is secret when its name ends in one of these words (see :func:`is_secret_key`);
#: ``session_id`` stands for the two words "session id".
SECRET_KEY_PATTERNS: Final = (
    "token",
    "password",
    "passwd",
    "secret",
    "cookie",
    "session",
    "session_id",
    "key",
    "apikey",
    "credentials",
)
MASK: Final = "••••••••"  # shown instead of the value of a secret-looking key

# Where a key name breaks into words: between a lower-case letter or digit and an upper-case
# one (accountToken), before the last capital of a run (APIKey: API, Key), at anything that
# is not a letter or a digit (snake_case, kebab-case, dotted.names, spaces).
_WORDS: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def secret_key_patterns(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The words that make a key name secret: :data:`SECRET_KEY_PATTERNS` and those of
    ``DEVICEBUCKET_SECRET_KEYS`` (comma-separated; ``api_token`` is two words)."""
    raw = (os.environ if environ is None else environ).get("DEVICEBUCKET_SECRET_KEYS", "")
    added = tuple(word.strip().lower() for word in raw.split(",") if word.strip())
    return SECRET_KEY_PATTERNS + tuple(w for w in added if w not in SECRET_KEY_PATTERNS)


@lru_cache(maxsize=4096)
def _words(key: str) -> tuple[str, ...]:
    """A key name's words, lower case, trailing numbers and plural ``s`` dropped."""
    words = [w.lower() for w in _WORDS.findall(key)]
    while words and words[-1].isdigit():
        words.pop()
    if words and len(words[-1]) > 3 and words[-1].endswith("s") and not words[-1].endswith("ss"):
        words[-1] = words[-1][:-1]
    return tuple(words)


@lru_cache(maxsize=64)
def _pattern_words(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(_words(p) for p in patterns if _words(p))


def is_secret_key(key: str, patterns: Iterable[str] = SECRET_KEY_PATTERNS) -> bool:
    """Whether a key's name ends in one of the ``patterns``' words, whole: ``accountToken``,
    ``api_key``, ``session-cookies`` and ``password2`` are secret; ``tokenCount``,
    ``keyboardLayout`` and ``monkey`` are not."""
    words = _words(key)
    return any(words[-len(p) :] == p for p in _pattern_words(tuple(patterns)))


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
