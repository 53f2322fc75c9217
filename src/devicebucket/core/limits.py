"""The limits of a store: what a bucket may hold and how long a page may be.

Every store, every server route and every command reads its limits from here, so a limit
means the same wherever it is met.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from .errors import InvalidValueError, SettingError

__all__ = ["MAX_DEVICE_PAGE", "MAX_PAGE", "Limits", "check_page_size"]

#: The most items one listing (devices, history) returns at once, on every store.
MAX_PAGE: Final = 10_000
#: The most devices one browsing page (``device_page``, the dashboard) shows at once.
MAX_DEVICE_PAGE: Final = 1_000

_LIMIT_NAMES: Final = (
    "max_bucket_bytes",
    "max_key_chars",
    "max_depth",
    "history_versions",
    "history_entries",
    "device_quota_bytes",
)
_MAY_BE_ZERO: Final = ("history_versions", "device_quota_bytes")


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on what a bucket may hold. The defaults are the contract's."""

    max_bucket_bytes: int = 1024 * 1024
    max_key_chars: int = 1024
    max_depth: int = 64
    # How many recent versions of a bucket stay restorable (at least; up to twice as many).
    # 0 turns the history off: no record of changes, and writes cost one row less.
    history_versions: int = 20
    # How many changes of a bucket the history lists (who, when, which keys), at least; older
    # entries are dropped a hundred at a time, so a bucket's history never grows past this
    # plus 100 rows, whatever writes it.
    history_entries: int = 1000
    # The most bytes all buckets of one device may hold together (their JSON texts); a write
    # past it is refused whole. 0: no quota.
    device_quota_bytes: int = 64 * 1024 * 1024

    def __post_init__(self) -> None:
        problem = _problem({n: getattr(self, n) for n in _LIMIT_NAMES}, lambda n: f"limit {n}")
        if problem is not None:
            raise ValueError(problem)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Limits from ``DEVICEBUCKET_MAX_BUCKET_BYTES``, ``_MAX_KEY_CHARS``, ``_MAX_DEPTH``,
        ``_HISTORY_VERSIONS``, ``_HISTORY_ENTRIES`` and ``_DEVICE_QUOTA_BYTES``."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name in _LIMIT_NAMES:
            raw = env.get(_env_name(name))
            if raw is not None:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise SettingError(
                        f"{_env_name(name)} must be an integer, not {raw[:40]!r}"
                    ) from None
        # Checked here first, so a problem names the settings rather than the limits.
        problem = _problem({**_DEFAULTS, **values}, _env_name)
        if problem is not None:
            raise SettingError(problem)
        return cls(**values)


_DEFAULTS: Final = {f.name: f.default for f in fields(Limits)}


def _env_name(name: str) -> str:
    return f"DEVICEBUCKET_{name.upper()}"


def _problem(values: Mapping[str, Any], naming: Callable[[str], str]) -> str | None:
    """What is wrong with these limit values (each named by ``naming``), if anything."""
    for name in _LIMIT_NAMES:
        value = values[name]
        least = 0 if name in _MAY_BE_ZERO else 1
        if type(value) is not int or value < least:
            what = "a positive integer" if least else "an integer >= 0"
            return f"{naming(name)} must be {what}, not {value!r}"
    versions = values["history_versions"]
    if versions > values["history_entries"]:
        entries, at_least = naming("history_entries"), naming("history_versions")
        return f"{entries} must be at least {at_least} ({versions})"
    return None


def check_page_size(limit: object, most: int = MAX_PAGE) -> int:
    """``limit`` if it is an integer from 1 to ``most``, else InvalidValueError."""
    if type(limit) is not int or not 1 <= limit <= most:
        raise InvalidValueError(f"limit must be an integer from 1 to {most}")
    return limit
