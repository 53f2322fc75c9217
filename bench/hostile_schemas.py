"""What a hostile job bucket costs to check against its job's schema, ours and jsonschema's.

    .venv/bin/python bench/hostile_schemas.py [--stock]

Each row is a schema an admin might well register and a value a device token holder could
write against it (each under the 1 MiB bucket limit), checked by ``validate_against_schema``
as a job write checks it, inside the store's write transaction. With ``--stock`` each is
also checked by jsonschema's own keywords (``Draft202012Validator``, Python's ``re``), on a
smaller value where they would take minutes or more on the full one (the row says which).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry

from devicebucket.core.errors import SchemaViolationError
from devicebucket.core.schema import schema_text, validate_against_schema

Case = tuple[str, dict[str, Any], Callable[[int], dict[str, Any]], int, int]

# name, schema, the value for a size, the size ours checks, the size jsonschema's checks
CASES: list[Case] = [
    (
        "pattern ^(a+)+$, a long text",
        {"properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}},
        lambda n: {"s": "a" * n + "!"},
        500_000,
        22,
    ),
    (
        "uniqueItems, small objects",
        {"properties": {"xs": {"type": "array", "uniqueItems": True}}},
        lambda n: {"xs": [{"i": i} for i in range(n)]},
        80_000,
        4_000,
    ),
    (
        "unevaluatedItems",
        {"properties": {"xs": {"items": {"type": "string"}, "unevaluatedItems": False}}},
        lambda n: {"xs": ["x"] * n},
        150_000,
        20_000,
    ),
    (
        "unevaluatedProperties",
        {
            "properties": {
                "o": {"additionalProperties": {"type": "string"}, "unevaluatedProperties": False}
            }
        },
        lambda n: {"o": {f"k{i}": "x" for i in range(n)}},
        60_000,
        20_000,
    ),
    (
        "anyOf, every item wrong",
        {
            "properties": {
                "xs": {"anyOf": [{"items": {"type": "integer"}}, {"items": {"type": "boolean"}}]}
            }
        },
        lambda n: {"xs": ["x"] * n},
        150_000,
        150_000,
    ),
    (
        "items, every item wrong",
        {"properties": {"xs": {"items": {"type": "integer"}}}},
        lambda n: {"xs": ["x"] * n},
        150_000,
        150_000,
    ),
    (
        "items, every item right",
        {"properties": {"xs": {"items": {"type": "integer"}}}},
        lambda n: {"xs": list(range(n))},
        150_000,
        150_000,
    ),
]


def ours(schema: dict[str, Any], value: dict[str, Any]) -> str:
    try:
        validate_against_schema(value, schema_text(schema), "bench")
    except SchemaViolationError as exc:
        return f"refused ({exc.rule})"
    return "accepted"


def stock(schema: dict[str, Any], value: dict[str, Any]) -> str:
    validator = Draft202012Validator(schema, registry=Registry())
    error = best_match(validator.iter_errors(value))
    return "accepted" if error is None else f"refused ({error.validator})"


def timed(check: Callable[[dict[str, Any], dict[str, Any]], str], case: Case, n: int) -> str:
    _, schema, value_of, _, _ = case
    value = value_of(n)
    start = time.perf_counter()
    verdict = check(schema, value)
    seconds = time.perf_counter() - start
    return f"{len(json.dumps(value)):,} bytes: {seconds:.3f} s, {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stock", action="store_true", help="time jsonschema's own too")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    header = "| schema, value | devicebucket |" + (" jsonschema's own |" if args.stock else "")
    print(header)
    print("|---|---|" + ("---|" if args.stock else ""))
    for case in CASES:
        row = f"| {case[0]} | {timed(ours, case, case[3])} |"
        if args.stock:
            row += f" {timed(stock, case, case[4])} |"
        print(row)


if __name__ == "__main__":
    main()
