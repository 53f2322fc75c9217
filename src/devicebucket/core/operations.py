"""The four writes a bucket knows, and which keys a write touches (pure: no I/O)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeAlias

from .errors import ConflictError
from .values import JSONObject

__all__ = [
    "Clear",
    "Delete",
    "KeyChanges",
    "Merge",
    "Operation",
    "Replace",
    "apply_operation",
    "check_version",
    "diff",
    "key_changes",
    "operation_changes",
]


@dataclass(frozen=True, slots=True)
class Merge:
    """Shallow merge: every top-level key of ``patch`` is added or overwritten."""

    patch: JSONObject


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove these top-level keys; a missing key is not an error."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Clear:
    """Remove every key."""


@dataclass(frozen=True, slots=True)
class Replace:
    """Make the bucket exactly ``data`` (a restore of an earlier version)."""

    data: JSONObject


Operation: TypeAlias = Merge | Delete | Clear | Replace


def check_version(expected: int | None, actual: int) -> None:
    """Raise ConflictError when a conditional write expected another version."""
    if expected is not None and expected != actual:
        raise ConflictError(expected, actual)


def apply_operation(current: JSONObject, operation: Operation) -> JSONObject:
    """The bucket after ``operation``. ``current`` is consumed (it may be changed in place)."""
    if isinstance(operation, Merge):
        current.update(operation.patch)
        return current
    if isinstance(operation, Delete):
        for key in operation.keys:
            current.pop(key, None)
        return current
    if isinstance(operation, Replace):
        return dict(operation.data)
    return {}


@dataclass(frozen=True, slots=True)
class KeyChanges:
    """Which top-level keys a write added, changed and removed (names only, never values)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: 1, 1.0 and true are == in Python, but not the same JSON."""
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, (dict, list)) or json.dumps(a) == json.dumps(b)


def _set_keys(before: JSONObject, after: JSONObject) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys of ``after`` that ``before`` lacks, and those whose value it changes, each
    sorted: one pass over ``after``."""
    added: list[str] = []
    changed: list[str] = []
    for key, value in after.items():
        if key not in before:
            added.append(key)
        elif not _same(before[key], value):
            changed.append(key)
    return tuple(sorted(added)), tuple(sorted(changed))


def key_changes(before: JSONObject, after: JSONObject) -> KeyChanges:
    """The top-level keys that differ between two bucket contents."""
    added, changed = _set_keys(before, after)
    return KeyChanges(added, changed, tuple(sorted(k for k in before if k not in after)))


def operation_changes(current: JSONObject, operation: Operation) -> KeyChanges:
    """The keys ``operation`` touches, found in time proportional to the operation."""
    if isinstance(operation, Merge):  # only the patch's keys can change
        return KeyChanges(*_set_keys(current, operation.patch))
    if isinstance(operation, Delete):
        return KeyChanges(removed=tuple(sorted({k for k in operation.keys if k in current})))
    if isinstance(operation, Replace):
        return key_changes(current, operation.data)
    return KeyChanges(removed=tuple(sorted(current)))


def diff(before: JSONObject, after: JSONObject) -> dict[str, dict[str, Any]]:
    """What changed from ``before`` to ``after``: added and removed keys with their values,
    changed keys with ``{"from": old, "to": new}``."""
    changes = key_changes(before, after)
    return {
        "added": {k: after[k] for k in changes.added},
        "changed": {k: {"from": before[k], "to": after[k]} for k in changes.changed},
        "removed": {k: before[k] for k in changes.removed},
    }
