"""Job bucket schemas (JSON Schema draft 2020-12): checking a schema, checking a bucket
against one, and saying what failed without quoting the value that failed it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, cast

from .errors import (
    InvalidSchemaError,
    InvalidValueError,
    SchemaViolationError,
    StoreUnavailableError,
)
from .limits import Limits
from .values import JSONObject, json_path, normalize_data

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

# jsonschema is imported by the first schema checked, not with this module: it is a twentieth
# of a second, and most commands and most writes (device buckets) never need it.

__all__ = [
    "check_schema",
    "decode_schema",
    "load_jsonschema",
    "schema_errors",
    "schema_text",
    "validate_against_schema",
]


def load_jsonschema() -> None:
    """Import jsonschema now. A server does so as it starts: else the first job write of
    each worker would import it inside its write transaction, holding the store's write
    lock (and every other writer) for as long."""
    _best_match()  # the import a job write would make, made here


def schema_text(schema: dict[str, Any] | bool) -> str:
    """Canonical text of a schema: two schemas are the same when their texts are."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def decode_schema(text: str) -> dict[str, Any] | bool:
    """A stored schema's text, parsed."""
    value = json.loads(text)
    if not isinstance(value, (dict, bool)):
        raise StoreUnavailableError("a stored job schema is not a JSON object")
    return value


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
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

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
    from jsonschema import Draft202012Validator

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


@cache
def _best_match() -> Callable[[Iterable[ValidationError]], ValidationError | None]:
    """jsonschema's ``best_match``, imported once: every job write asks for it, inside its
    write transaction, where an import statement costs ~0.7 µs even when already done."""
    from jsonschema.exceptions import best_match

    return cast("Callable[[Iterable[ValidationError]], ValidationError | None]", best_match)


def validate_against_schema(data: JSONObject, schema_text: str, job: str) -> None:
    """Raise SchemaViolationError if ``data`` does not match the job's schema."""
    error = _best_match()(_validator(schema_text).iter_errors(data))
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
