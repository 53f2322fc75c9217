"""The JSON Schema keywords devicebucket applies its own way, each in time linear in the
bucket and without failing on any JSON value (:data:`KEYWORDS` replaces jsonschema's own).

A schema is written by whoever registers the job, but the buckets it is applied to come
from every writer of the job, device tokens included, and a job write is checked inside
the store's write transaction: what a write costs there, every other writer waits for.
jsonschema's own keywords let one write cost minutes or hours:

- Python's ``re`` backtracks: ``^(a+)+$`` against thirty ``a`` and a ``!`` takes about a
  minute, against forty half a day. ``pattern``, ``patternProperties`` and
  ``additionalProperties`` match by RE2 (Google's, the ``google-re2`` package), in time
  linear in the text; it refuses what it cannot match so (lookaround, backreferences),
  and such a pattern is refused when the job is registered. Its classes are those of JSON
  Schema's ECMA-262 patterns (``\\d``, ``\\w``, ``\\s`` are ASCII; ``$`` is the end of the
  text), not Python's. jsonschema's ``unevaluatedProperties`` matches
  ``patternProperties`` with ``re`` in code of its own, so a schema may not use the two
  together (``core.schema`` refuses that).
- ``uniqueItems`` compared an array's objects two by two: 16,000 small ones took 334 s.
  Here each item becomes a hashable value, equal where JSON Schema's equality says so.
- ``unevaluatedItems`` and ``unevaluatedProperties`` looked each index or key up in a list
  of those evaluated: 40,000 took 8 and 10.6 s. Here the list is a set.
- ``anyOf`` and ``oneOf`` collected every error of each subschema for their context: a
  0.75 MB array of wrong items took 6.3 s. Here at most :data:`CONTEXT_ERRORS` each.
- ``multipleOf`` divided an integer by a float ``multipleOf`` as floats: one of 400 digits
  raised ``OverflowError`` (the server answered 500). Here it is divided as fractions, as
  jsonschema does when only the quotient overflows.

``tests/core/test_schema.py`` runs these keywords' tests of the JSON Schema Test Suite.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from fractions import Fraction
from functools import cache, lru_cache
from itertools import islice
from typing import Any, Final, Protocol, cast

__all__ = ["KEYWORDS", "PatternError", "additional_keys", "compile_pattern", "matches"]


class PatternError(ValueError):
    """A pattern RE2 cannot match in linear time, or cannot read."""


class _Regexp(Protocol):
    """RE2's own binding (``re2._re2.RE2``): the ``re2`` module's ``search`` wraps it in
    Python that costs ~5 µs a call, against ~0.9 µs for the binding (``timeit``)."""

    def Match(  # noqa: N802  # RE2's name
        self, anchor: object, text: bytes, pos: int, endpos: int
    ) -> list[tuple[int, int]]: ...


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> _Regexp:
    """``pattern`` compiled by RE2; PatternError saying why where it cannot be."""
    from re2 import _re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

    options = _re2.RE2.Options()
    options.log_errors = False  # RE2 would print its reasons on stderr: they are raised
    regexp = _re2.RE2(pattern.encode("utf-8", "surrogatepass"), options)
    if not regexp.ok():
        raise PatternError(regexp.error().decode("utf-8", "replace") or "RE2 cannot compile it")
    return cast(_Regexp, regexp)


@cache
def _unanchored() -> object:
    from re2 import _re2

    return _re2.RE2.Anchor.UNANCHORED


def matches(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (JSON Schema's patterns are not
    anchored)."""
    data = text.encode("utf-8", "surrogatepass")
    return compile_pattern(pattern).Match(_unanchored(), data, 0, len(data))[0] != (-1, -1)


# jsonschema's keyword functions: (validator, the keyword's value, instance, schema) and the
# errors they yield, whose messages never quote the value (``schema._describe`` says what
# failed).


def _error(message: str, context: list[Any] | None = None) -> Any:
    from jsonschema.exceptions import ValidationError

    return ValidationError(message, context=context or ())


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not matches(pattern, instance):
        yield _error(f"does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def additional_keys(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The keys of ``instance`` that neither ``properties`` nor ``patternProperties`` of
    ``schema`` name, in the instance's order."""
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in known and not any(matches(pattern, key) for pattern in patterns)
    ]


def _additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    keys = additional_keys(instance, schema)
    if validator.is_type(extra, "object"):
        for key in keys:
            yield from validator.descend(instance[key], extra, path=key)
    elif not extra and keys:
        yield _error(f"additional properties are not allowed ({len(keys)} unexpected)")


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if unique and validator.is_type(instance, "array"):
        seen = set()
        for item in instance:
            key = _comparable(item)
            if key in seen:
                yield _error("has items that are not unique")
                return
            seen.add(key)


def _comparable(value: Any) -> Hashable:
    """A hashable value equal to another's where JSON Schema says the two JSON values are
    equal: numbers by value (1 and 1.0), never a boolean and a number, objects whatever
    their keys' order, arrays item by item."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float, str)):
        return value  # no number equals a text, and neither equals a tuple
    if isinstance(value, list):
        return ("array", tuple(_comparable(item) for item in value))
    if isinstance(value, dict):
        return ("object", frozenset((key, _comparable(item)) for key, item in value.items()))
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _multiple_of(validator: Any, divisor: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "number"):
        return
    if isinstance(divisor, float):
        try:
            quotient = instance / divisor
            failed = int(quotient) != quotient
        except OverflowError:  # an integer past a float's range, or a quotient past it
            failed = (Fraction(instance) / Fraction(divisor)).denominator != 1
    else:
        failed = bool(instance % divisor)
    if failed:
        yield _error(f"is not a multiple of {divisor}")


#: The most errors a subschema of ``anyOf`` or ``oneOf`` collects for its context
#: (jsonschema's own collects all: a 0.75 MB array of wrong items took 6.3 s).
CONTEXT_ERRORS: Final = 100


def _first_valid(
    validator: Any, subschemas: list[Any], instance: Any
) -> tuple[int | None, list[Any]]:
    """The index of the first of ``subschemas`` that ``instance`` is valid under (None if
    none), and the errors of those before it, at most :data:`CONTEXT_ERRORS` each."""
    context: list[Any] = []
    for index, subschema in enumerate(subschemas):
        descended = validator.descend(instance, subschema, schema_path=index)
        errors = list(islice(descended, CONTEXT_ERRORS))
        if not errors:
            return index, context
        context.extend(errors)
    return None, context


def _any_of(validator: Any, subschemas: list[Any], instance: Any, schema: Any) -> Iterator[Any]:
    first, context = _first_valid(validator, subschemas, instance)
    if first is None:
        yield _error("is not valid under any of the given schemas", context=context)


def _one_of(validator: Any, subschemas: list[Any], instance: Any, schema: Any) -> Iterator[Any]:
    first, context = _first_valid(validator, subschemas, instance)
    if first is None:
        yield _error("is not valid under any of the given schemas", context=context)
    elif any(validator.evolve(schema=s).is_valid(instance) for s in subschemas[first + 1 :]):
        yield _error("is valid under more than one of the given schemas")


def _unevaluated_items(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if validator.is_type(instance, "array"):
        from jsonschema._utils import find_evaluated_item_indexes_by_schema as evaluated

        if not _all_in(evaluated(validator, instance, schema), range(len(instance))):
            yield _error("has items that no keyword evaluated")


def _unevaluated_properties(
    validator: Any, unevaluated: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    if validator.is_type(instance, "object"):
        from jsonschema._utils import find_evaluated_property_keys_by_schema as evaluated

        if not _all_in(evaluated(validator, instance, schema), instance):
            yield _error("has properties that no keyword evaluated")


def _all_in(evaluated: Iterable[Hashable], members: Iterable[Hashable]) -> bool:
    """Whether every index or key is among those evaluated (jsonschema's own looks each up
    in a list: 40,000 took 8 s for items, 10.6 s for properties). jsonschema's finders
    count those valid under the ``unevaluated...`` subschema itself as evaluated."""
    seen = set(evaluated)
    return all(member in seen for member in members)


KEYWORDS: Final[dict[str, Callable[..., Iterator[Any]]]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
    "multipleOf": _multiple_of,
    "anyOf": _any_of,
    "oneOf": _one_of,
    "unevaluatedItems": _unevaluated_items,
    "unevaluatedProperties": _unevaluated_properties,
}
