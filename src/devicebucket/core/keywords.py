"""The JSON Schema keywords devicebucket applies its own way, each in time linear in the
bucket and without failing on any JSON value: those that match regular expressions
(``pattern``, ``patternProperties``, ``additionalProperties``), by RE2; ``uniqueItems``, by
hashing; ``multipleOf``, exactly where a float cannot hold the value.

A schema is written by whoever registers the job, but the buckets it is applied to come
from every writer of the job, device tokens included, and a job write is checked inside
the store's write transaction: what a write costs there, every other writer waits for.
jsonschema's own would let one write cost hours:

- Python's ``re`` backtracks: ``^(a+)+$`` against thirty ``a`` and a ``!`` takes about a
  minute, against forty half a day. RE2 (Google's, the ``google-re2`` package) matches in
  time linear in the text, and refuses what it cannot match so (lookaround,
  backreferences): such a pattern is refused when the job is registered. Its classes are
  those of JSON Schema's ECMA-262 patterns (``\\d``, ``\\w``, ``\\s`` are ASCII; ``$`` is the
  end of the text), not Python's. ``unevaluatedProperties`` matches patterns too, in code
  of jsonschema's own that cannot be given another engine, so a schema may not use it
  together with ``patternProperties`` (``core.schema`` refuses that).
- jsonschema compares an array's items two by two where they cannot be sorted (objects):
  16,000 small objects took 334 s. Here each item becomes a hashable value that is equal
  where JSON Schema's equality says so.
- jsonschema divides a number by a float ``multipleOf`` as floats: an integer of 400
  digits raised ``OverflowError`` (the server answered 500). Here such a value is divided
  as fractions, as jsonschema does when only the quotient overflows.

:data:`KEYWORDS` replaces jsonschema's own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from fractions import Fraction
from functools import cache, lru_cache
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
# errors they yield. Each is jsonschema's own but for the matching.


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not matches(pattern, instance):
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"does not match {pattern!r}")


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
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"additional properties are not allowed ({len(keys)} unexpected)")


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if unique and validator.is_type(instance, "array"):
        seen = set()
        for item in instance:
            key = _comparable(item)
            if key in seen:
                from jsonschema.exceptions import ValidationError

                yield ValidationError("has items that are not unique")
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
        from jsonschema.exceptions import ValidationError

        yield ValidationError(f"is not a multiple of {divisor}")


KEYWORDS: Final[dict[str, Callable[..., Iterator[Any]]]] = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
    "multipleOf": _multiple_of,
}
