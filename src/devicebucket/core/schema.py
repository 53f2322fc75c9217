"""Job bucket schemas (JSON Schema draft 2020-12): checking a schema, checking a bucket
against one, and saying what failed without quoting the value that failed it.

A schema is checked before it is kept, and again before a kept one is applied, so that no
writer's value can make applying it cost more than time linear in the bucket: the
keywords jsonschema applies in more are applied our way (``core.keywords``: patterns by
RE2), the schema refers only within itself (a ``$ref`` elsewhere would be fetched by
jsonschema, inside the write transaction), it does not use ``unevaluatedProperties`` with
``patternProperties`` (jsonschema matches those with Python's backtracking ``re``), and a
refusal reads only the bucket's first errors (:data:`ERRORS_READ`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from itertools import islice
from typing import TYPE_CHECKING, Any, Final, cast

from .errors import (
    InvalidSchemaError,
    InvalidValueError,
    SchemaViolationError,
    StoreUnavailableError,
)
from .keywords import KEYWORDS, PatternError, additional_keys, compile_pattern
from .limits import Limits
from .values import JSONObject, json_path, normalize_data

if TYPE_CHECKING:
    from jsonschema import FormatChecker
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

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
    """Import jsonschema and RE2 now. A server does so as it starts: else the first job
    write of each worker would import them inside its write transaction, holding the
    store's write lock (and every other writer) for as long."""
    _best_match()  # the imports a job write would make, made here
    _validator_class()
    compile_pattern("")


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
    """Return a copy of ``schema`` if it is a valid JSON Schema (2020-12) that devicebucket
    can apply in bounded time (see the module's docstring), else raise InvalidSchemaError."""
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
    _check(copy)
    return copy


def _check(schema: JSONObject) -> None:
    """Raise InvalidSchemaError unless ``schema`` is valid against the 2020-12 meta-schema,
    with patterns RE2 can match, and safe to apply."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema, format_checker=_meta_checker())
    except SchemaError as exc:
        where = json_path(list(exc.absolute_path))
        if exc.validator == "format" and exc.validator_value == "regex":
            raise InvalidSchemaError(
                f"bucket schema has a pattern devicebucket cannot match, at {where}:"
                f" {_show(exc.instance)}: {exc.cause} (patterns are matched by RE2, in time"
                " linear in the text: lookaround and backreferences are not supported)"
            ) from None
        raise InvalidSchemaError(
            f"bucket schema is not a valid JSON Schema (draft 2020-12): at {where}: {exc.message}"
        ) from None
    _check_subschemas(schema)


@cache
def _meta_checker() -> FormatChecker:
    """The meta-schema's format checker, with RE2 saying which patterns are regexes."""
    from jsonschema import Draft202012Validator, FormatChecker

    checker = FormatChecker(Draft202012Validator.FORMAT_CHECKER.checkers)

    @checker.checks("regex", raises=PatternError)
    def is_pattern(instance: object) -> bool:
        if isinstance(instance, str):
            compile_pattern(instance)
        return True

    return checker


def _check_subschemas(schema: JSONObject) -> None:
    """Raise InvalidSchemaError if a ``$ref`` or ``$dynamicRef`` of ``schema`` points
    outside it, or nowhere; or if it uses ``unevaluatedProperties`` with
    ``patternProperties``. Walks the schema's subschemas as jsonschema does (each with its
    own base URI), so that no value in ``enum``, ``const`` or ``default`` counts."""
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    keywords: set[str] = set()

    def walk(resource: Resource[Any], resolver: Any) -> None:  # referencing's Resolver
        contents = resource.contents
        if isinstance(contents, dict):
            for keyword in ("$ref", "$dynamicRef"):
                ref = contents.get(keyword)
                if not isinstance(ref, str):
                    continue
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    raise InvalidSchemaError(
                        f"bucket schema refers to {_show(ref)}, which it does not contain:"
                        " devicebucket follows references only within the schema, and never"
                        " fetches one"
                    ) from None
            keywords.update(
                k for k in ("patternProperties", "unevaluatedProperties") if k in contents
            )
        for sub in resource.subresources():
            walk(sub, resolver.in_subresource(sub))

    root = DRAFT202012.create_resource(schema)
    walk(root, Registry().resolver_with_root(root))
    if len(keywords) == 2:
        raise InvalidSchemaError(
            "bucket schema uses unevaluatedProperties together with patternProperties,"
            " which devicebucket cannot apply in bounded time: use additionalProperties"
        )


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Validator | str:
    """The validator of a kept schema, or why devicebucket does not apply it (a schema kept
    before devicebucket checked what it checks now)."""
    from referencing import Registry

    schema = json.loads(schema_text)
    if isinstance(schema, dict):
        try:
            _check(schema)
        except InvalidSchemaError as exc:
            return str(exc)
    # An empty registry: a reference is never fetched (jsonschema would, from the network).
    return _validator_class()(schema, registry=Registry())


@cache
def _validator_class() -> type[Validator]:
    from jsonschema import Draft202012Validator, validators

    extended = validators.extend(Draft202012Validator, KEYWORDS)  # type: ignore[no-untyped-call]
    return cast("type[Validator]", extended)


def _applied(schema_text: str, job: str) -> Validator:
    """The validator of a kept schema; InvalidSchemaError where it is not applied."""
    validator = _validator(schema_text)
    if isinstance(validator, str):
        raise InvalidSchemaError(
            f"job {job!r}'s bucket schema is not applied: {validator}; register the job with"
            " a new schema (replace_schema / --replace-schema); nothing was written"
        )
    return validator


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
        return "rule 'additionalProperties' failed: unexpected " + ", ".join(
            json_path([k]) for k in additional_keys(instance, schema)
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


#: The most errors of one bucket read to pick the one a write's refusal names. jsonschema
#: finds them one at a time: reading all of a bucket's made 150,000 wrong items of a 0.75 MB
#: bucket cost 2.2 s, inside the write transaction.
ERRORS_READ: Final = 100


def validate_against_schema(data: JSONObject, schema_text: str, job: str) -> None:
    """Raise SchemaViolationError if ``data`` does not match the job's schema (naming the
    most relevant of its first ``ERRORS_READ`` errors, by jsonschema's ``best_match``)."""
    errors = _applied(schema_text, job).iter_errors(data)
    error = _best_match()(islice(errors, ERRORS_READ))
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
    """The ways ``data`` fails the schema, as ``(path, rule, message)``: the first ``limit``
    by path of its first ``ERRORS_READ`` errors.

    For showing a stored job bucket that no longer matches its job's (replaced) schema; a
    schema that is not applied (``_applied``) is one error at ``$``.
    """
    validator = _validator(schema_text)
    if isinstance(validator, str):
        return [("$", "schema", validator)]
    errors = sorted(
        islice(validator.iter_errors(data), ERRORS_READ), key=lambda e: list(e.absolute_path)
    )
    return [
        (json_path(list(e.absolute_path)), str(e.validator), _describe(e)) for e in errors[:limit]
    ]
