"""Pure rules of devicebucket: ids, JSON values, limits, the merge and the job schema check.

Nothing in this module does I/O; every store applies these same rules, so a bucket behaves
the same on SQLite, on PostgreSQL and behind the HTTP server.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final, TypeAlias, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from .errors import ConflictError, InvalidSchemaError, InvalidValueError, SchemaViolationError

__all__ = [
    "ID_ALPHABET",
    "MASK",
    "Clear",
    "Delete",
    "KeyChanges",
    "Limits",
    "Merge",
    "Operation",
    "Planned",
    "Replace",
    "apply_operation",
    "check_id",
    "check_schema",
    "check_version",
    "decode",
    "diff",
    "encode",
    "is_secret_key",
    "json_path",
    "key_changes",
    "mask_secrets",
    "normalize_data",
    "normalize_keys",
    "plan_write",
    "schema_errors",
    "secret_key_patterns",
    "validate_against_schema",
]

ID_ALPHABET: Final = "A-Z a-z 0-9 . _ - : @"
_ID_RE: Final = re.compile(r"[A-Za-z0-9._\-:@]{1,256}")
_PLAIN_KEY_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SHOWN_CHARS: Final = 64

JSONObject: TypeAlias = dict[str, Any]


_LIMIT_NAMES: Final = ("max_bucket_bytes", "max_key_chars", "max_depth", "history_versions")


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits on what a bucket may hold. The defaults are the contract's."""

    max_bucket_bytes: int = 1024 * 1024
    max_key_chars: int = 1024
    max_depth: int = 64
    # How many recent versions of a bucket stay restorable (at least; up to twice as many).
    # 0 turns the history off: no record of changes, and writes cost one row less.
    history_versions: int = 20

    def __post_init__(self) -> None:
        for name in _LIMIT_NAMES:
            value = getattr(self, name)
            least = 0 if name == "history_versions" else 1
            if type(value) is not int or value < least:
                what = "a positive integer" if least else "an integer >= 0"
                raise ValueError(f"limit {name} must be {what}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Limits from ``DEVICEBUCKET_MAX_BUCKET_BYTES``, ``_MAX_KEY_CHARS``, ``_MAX_DEPTH`` and
        ``_HISTORY_VERSIONS``."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for name in _LIMIT_NAMES:
            raw = env.get(f"DEVICEBUCKET_{name.upper()}")
            if raw is not None:
                try:
                    values[name] = int(raw)
                except ValueError:
                    raise ValueError(f"DEVICEBUCKET_{name.upper()} must be an integer") from None
        return cls(**values)


# --- ids -------------------------------------------------------------------------------


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


# --- JSON values -----------------------------------------------------------------------


def json_path(parts: Iterable[str | int]) -> str:
    """Format a path as JSONPath: ``$.config["odd key"][2]``."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY_RE.fullmatch(part) and len(part) <= _SHOWN_CHARS:
            out.append(f".{part}")
        else:
            shown = part if len(part) <= _SHOWN_CHARS else part[:_SHOWN_CHARS] + "…"
            out.append(f"[{json.dumps(shown, ensure_ascii=False)}]")
    return "".join(out)


class _Normalizer:
    """Copies a value into plain JSON types, rejecting anything JSON cannot hold."""

    __slots__ = ("max_depth", "path")

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.path: list[str | int] = []

    def fail(self, problem: str) -> InvalidValueError:
        return InvalidValueError(f"value at {json_path(self.path)} {problem}")

    def copy(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            if not math.isfinite(value):
                raise self.fail(f"is {value!r}, which JSON cannot hold")
            return value
        if isinstance(value, dict):
            return self.copy_dict(value, depth + 1)
        if isinstance(value, (list, tuple)):
            if depth + 1 > self.max_depth:
                raise self.fail(f"nests deeper than {self.max_depth} levels")
            out: list[Any] = []
            for index, item in enumerate(value):
                self.path.append(index)
                out.append(self.copy(item, depth + 1))
                self.path.pop()
            return out
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return self.copy(float(value), depth)
        if isinstance(value, str):
            return str(value)
        raise self.fail(
            f"has type {kind.__name__}, which is not JSON"
            " (use dict, list, str, int, float, bool or None)"
        )

    def copy_dict(self, value: Mapping[Any, Any], depth: int) -> JSONObject:
        if depth > self.max_depth:
            raise self.fail(f"nests deeper than {self.max_depth} levels")
        out: JSONObject = {}
        for key, item in value.items():
            if type(key) is not str:
                if not isinstance(key, str):
                    raise self.fail(f"has a key of type {type(key).__name__}; keys must be str")
                key = str(key)
            self.path.append(key)
            out[key] = self.copy(item, depth)
            self.path.pop()
        return out


def normalize_data(data: object, limits: Limits) -> JSONObject:
    """Check ``data`` for a write and return a fresh copy made of plain JSON types.

    Tuples become lists; subclasses of str, int and float become the base type.
    Raises InvalidValueError naming the offending path, type or limit.
    """
    if not isinstance(data, dict):
        raise InvalidValueError(
            f"data must be a JSON object (dict with str keys), got {type(data).__name__}"
        )
    for key in data:
        if isinstance(key, str) and len(key) > limits.max_key_chars:
            raise InvalidValueError(
                f"key {json_path([key])} is {len(key)} characters long,"
                f" over the limit of {limits.max_key_chars}"
            )
    return _Normalizer(limits.max_depth).copy_dict(data, 1)


def normalize_keys(keys: Iterable[object]) -> tuple[str, ...]:
    """Check the keys of a delete: each must be a str."""
    out: list[str] = []
    for key in keys:
        if not isinstance(key, str):
            raise InvalidValueError(f"keys to delete must be str, got {type(key).__name__}")
        out.append(str(key))
    return tuple(out)


def encode(data: JSONObject) -> str:
    """The canonical JSON text of a bucket, as stored."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # e.g. an int with more digits than Python will print
        raise InvalidValueError(f"bucket cannot be encoded as JSON: {type(exc).__name__}") from None


def decode(text: str | bytes) -> JSONObject:
    """Parse a stored bucket."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("stored bucket is not a JSON object")
    return value


def check_size(text: str, limits: Limits) -> int:
    """Return the size of an encoded bucket in bytes, or raise if it is over the limit."""
    size = len(text) if text.isascii() else len(text.encode())
    if size > limits.max_bucket_bytes:
        raise InvalidValueError(
            f"bucket would be {size:,} bytes of JSON, over the limit of"
            f" {limits.max_bucket_bytes:,} bytes; nothing was written"
        )
    return size


# --- operations ------------------------------------------------------------------------


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


def key_changes(before: JSONObject, after: JSONObject) -> KeyChanges:
    """The top-level keys that differ between two bucket contents."""
    return KeyChanges(
        tuple(sorted(k for k in after if k not in before)),
        tuple(sorted(k for k in after if k in before and not _same(before[k], after[k]))),
        tuple(sorted(k for k in before if k not in after)),
    )


def diff(before: JSONObject, after: JSONObject) -> dict[str, dict[str, Any]]:
    """What changed from ``before`` to ``after``: added and removed keys with their values,
    changed keys with ``{"from": old, "to": new}``."""
    changes = key_changes(before, after)
    return {
        "added": {k: after[k] for k in changes.added},
        "changed": {k: {"from": before[k], "to": after[k]} for k in changes.changed},
        "removed": {k: before[k] for k in changes.removed},
    }


@dataclass(frozen=True, slots=True)
class Planned:
    """A write that changes its bucket: the new data, its canonical text and size, the version."""

    data: JSONObject
    text: str
    size: int
    version: int
    changes: KeyChanges


def plan_write(
    current: JSONObject,
    text: str,
    version: int,
    operation: Operation,
    expected_version: int | None,
    limits: Limits,
) -> Planned | None:
    """What a write does to a bucket stored as ``text`` at ``version``; None if nothing changes.

    ``current`` is ``text`` decoded, and is consumed. Raises ConflictError when
    ``expected_version`` is not ``version``, InvalidValueError when the result is too large.
    A write that changes nothing keeps the version (1, 1.0 and true differ: the texts differ).
    """
    check_version(expected_version, version)
    changes = _changes(current, operation)  # before ``current`` is consumed
    data = apply_operation(current, operation)
    new_text = encode(data)
    if new_text == text:
        return None
    size = check_size(new_text, limits)
    return Planned(data, new_text, size, version + 1, changes)


def _changes(current: JSONObject, operation: Operation) -> KeyChanges:
    """The keys ``operation`` touches, found in time proportional to the operation."""
    if isinstance(operation, Merge):  # only the patch's keys can change
        patch = operation.patch
        return key_changes({k: current[k] for k in patch if k in current}, patch)
    if isinstance(operation, Delete):
        return KeyChanges(removed=tuple(sorted({k for k in operation.keys if k in current})))
    if isinstance(operation, Replace):
        return key_changes(current, operation.data)
    return KeyChanges(removed=tuple(sorted(current)))


# --- job bucket schemas ----------------------------------------------------------------


def check_schema(schema: object, limits: Limits | None = None) -> JSONObject | bool:
    """Return a copy of ``schema`` if it is a valid JSON Schema (2020-12), else raise."""
    if isinstance(schema, bool):
        return schema
    if not isinstance(schema, dict):
        raise InvalidSchemaError(
            f"bucket schema must be a JSON Schema object, got {type(schema).__name__}"
        )
    try:
        copy = normalize_data(schema, limits or Limits())
    except InvalidValueError as exc:
        raise InvalidSchemaError(f"bucket schema is not JSON: {exc}") from None
    try:
        Draft202012Validator.check_schema(copy)
    except SchemaError as exc:
        where = json_path(list(exc.absolute_path))
        raise InvalidSchemaError(
            f"bucket schema is not a valid JSON Schema (draft 2020-12): at {where}: {exc.message}"
        ) from None
    return copy


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


def _describe(error: ValidationError) -> str:
    """Say what rule failed without quoting the value that failed it."""
    rule = str(error.validator)
    expected = error.validator_value
    instance = error.instance
    if rule == "type":
        return f"rule 'type' failed: expected {_show(expected)}"
    if rule == "required" and isinstance(instance, dict):
        missing = [k for k in cast(list[str], expected) if k not in instance]
        return "rule 'required' failed: missing " + ", ".join(json_path([k]) for k in missing)
    if rule == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        known = set(schema.get("properties", {}))
        patterns = list(schema.get("patternProperties", {}))
        extra = [
            k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)
        ]
        return "rule 'additionalProperties' failed: unexpected " + ", ".join(
            json_path([k]) for k in extra
        )
    if isinstance(expected, (int, float, str)) and not isinstance(expected, bool):
        return f"rule '{rule}' failed: {rule} is {_show(expected)}"
    if rule in ("enum", "const"):
        allowed = f"one of {_show(expected)}" if rule == "enum" else _show(expected)
        return f"rule '{rule}' failed: value is not {allowed}"
    return f"rule '{rule}' failed"


def _show(value: object) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:120] + "…"


def validate_against_schema(data: JSONObject, schema_text: str, job: str) -> None:
    """Raise SchemaViolationError if ``data`` does not match the job's schema."""
    error = best_match(_validator(schema_text).iter_errors(data))
    if error is None:
        return
    path = json_path(list(error.absolute_path))
    raise SchemaViolationError(
        f"job bucket does not match the schema of job {job!r} at {path}: {_describe(error)};"
        " nothing was written",
        path=path,
        rule=str(error.validator),
    )


def schema_errors(
    data: JSONObject, schema_text: str, limit: int = 20
) -> list[tuple[str, str, str]]:
    """Every way ``data`` fails the schema, as ``(path, rule, message)``, at most ``limit``.

    For showing a stored job bucket that no longer matches its job's (replaced) schema.
    """
    errors = sorted(_validator(schema_text).iter_errors(data), key=lambda e: list(e.absolute_path))
    return [
        (json_path(list(e.absolute_path)), str(e.validator), _describe(e)) for e in errors[:limit]
    ]


# --- secret-looking keys ----------------------------------------------------------------

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


def mask_secrets(data: Mapping[str, Any], patterns: Iterable[str]) -> dict[str, Any]:
    """``data`` with the value of every secret-looking key replaced by :data:`MASK`."""
    patterns = tuple(patterns)
    return {k: MASK if is_secret_key(k, patterns) else v for k, v in data.items()}
