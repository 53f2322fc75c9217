"""The pure rules: ids, paths, limits and schema messages."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicebucket import InvalidSchemaError, InvalidValueError, Limits, SchemaViolationError
from devicebucket.core import ids
from devicebucket.core.ids import check_id
from devicebucket.core.masking import is_secret_key, secret_key_patterns
from devicebucket.core.schema import check_schema, schema_text, validate_against_schema
from devicebucket.core.values import copy_json, decode, encode, json_path, normalize_data


@pytest.mark.parametrize("good", ["a", "pixel-7-01", "emu_5554", "user@host:profile.1", "x" * 256])
def test_valid_ids(good: str) -> None:
    assert check_id(good) == good


def test_ids_found_valid_are_remembered_within_a_bound() -> None:
    for n in range(ids._MAX_VALID + 1_000):
        assert check_id(f"pixel-{n}") == f"pixel-{n}"
        assert len(ids._VALID) <= ids._MAX_VALID  # a client's many ids cost bounded memory
    assert check_id("pixel-1") == "pixel-1"  # forgotten, then found valid again

    class Id(str):
        pass

    for bad in ("pixel 1", "..", Id("pixel-1")):  # never let through by a remembered one
        with pytest.raises(InvalidValueError):
            check_id(bad)


def test_json_path_quotes_only_what_needs_it() -> None:
    assert json_path([]) == "$"
    assert json_path(["config", "dark_mode", 0]) == "$.config.dark_mode[0]"
    assert json_path(["with space", 'q"uote']) == '$["with space"]["q\\"uote"]'
    assert json_path(["9lives"]) == '$["9lives"]'


def test_limits_are_settings() -> None:
    limits = Limits.from_env(
        {"DEVICEBUCKET_MAX_BUCKET_BYTES": "100", "DEVICEBUCKET_MAX_DEPTH": "3"}
    )
    assert limits == Limits(max_bucket_bytes=100, max_key_chars=1024, max_depth=3)
    with pytest.raises(ValueError, match="DEVICEBUCKET_MAX_DEPTH must be an integer"):
        Limits.from_env({"DEVICEBUCKET_MAX_DEPTH": "deep"})
    with pytest.raises(ValueError, match="max_depth must be a positive integer"):
        Limits(max_depth=0)
    assert normalize_data({"a": {"b": [1]}}, limits) == {"a": {"b": [1]}}
    with pytest.raises(ValueError, match="nests deeper than 3 levels"):
        normalize_data({"a": {"b": [[1]]}}, limits)


def test_normalize_makes_plain_types() -> None:
    class Name(str):
        pass

    class Count(int):
        pass

    out = normalize_data({Name("k"): (Count(3), 1.5, True, None)}, Limits())
    assert out == {"k": [3, 1.5, True, None]}
    assert type(next(iter(out))) is str
    assert type(out["k"][0]) is int


@pytest.mark.parametrize(
    "data",
    [
        {"s": 'é\n\u2028\x00\x7f"\\', "f": 1.5, "one": 1.0, "t": True, "n": None, "l": [{}]},
        {"i64": -(2**63), "u64": 2**64 - 1, "tiny": 2.5e-300, "huge": -1.5e300},
        {"beyond 64 bits": 2**70, "below": -(2**70), "nested": [{"x": 10**30}]},
    ],
    ids=["text and scalars", "64-bit edges", "ints beyond 64 bits"],
)
def test_the_canonical_text_is_compact_and_reads_back_exactly(data: dict[str, object]) -> None:
    text = encode(data)
    stdlib = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert json.loads(text) == json.loads(stdlib) == data
    assert text == stdlib  # the same text, character for character
    assert decode(text) == data


def test_a_small_float_is_written_as_javascript_writes_it() -> None:
    assert encode({"f": 1e-8, "g": 1.25e-05}) == '{"f":1e-8,"g":0.0000125}'
    assert decode('{"f":1e-08,"g":1.25e-05}') == {"f": 1e-8, "g": 1.25e-5}  # as stored before


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_a_bucket_reads_back_as_the_standard_library_reads_it(data: dict[str, object]) -> None:
    for text in (encode(data), json.dumps(data, ensure_ascii=False, separators=(",", ":"))):
        read = decode(text)
        assert read == json.loads(text) == data
        assert json.dumps(read) == json.dumps(data)  # the types too: 1, 1.0 and True differ


@pytest.mark.parametrize(
    "text",
    [
        '{"n":18446744073709551616}',  # orjson would read a float
        '{"n":-9223372036854775809}',
        '{"f":1e-08,"g":1.25e-05}',  # a small float as the standard library spelled it
        '{"a":1,"a":2}',
        '{"s":"\\ud800"}',
        '{"s":"\\u00e9", "t": [1.0, 1, true]}',
    ],
)
def test_a_text_orjson_would_read_otherwise_reads_as_before(text: str) -> None:
    read = decode(text)
    assert read == json.loads(text)
    assert json.dumps(read) == json.dumps(json.loads(text))


def test_a_stored_text_that_is_not_an_object_is_refused() -> None:
    for text in ("[1]", "null", "1", '"x"'):
        with pytest.raises(ValueError, match="not a JSON object"):
            decode(text)
    with pytest.raises(json.JSONDecodeError, match="Expecting property name"):
        decode("{bad")  # the standard library's error, as before
    assert math.isnan(decode('{"v":NaN}')["v"])  # the standard library's reading, as before


def test_a_copy_of_json_shares_no_container() -> None:
    data = {"a": [1, {"b": [2]}], "c": {"d": "e"}, "f": 1}
    copied = copy_json(data)
    assert copied == data
    copied["a"][1]["b"].append(3)
    copied["c"]["d"] = "changed"
    assert data == {"a": [1, {"b": [2]}], "c": {"d": "e"}, "f": 1}


SCHEMA = {
    "type": "object",
    "properties": {
        "stage": {"enum": ["start", "done"]},
        "pin": {"type": "string", "pattern": "^[0-9]{4}$"},
        "tries": {"type": "integer", "maximum": 3},
    },
    "required": ["stage"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("data", "path", "rule", "message"),
    [
        ({}, "$", "required", r"at \$: rule 'required' failed: missing \$\.stage"),
        (
            {"stage": "secret-stage"},
            "$.stage",
            "enum",
            r"rule 'enum' failed: value is not one of \[\"start\", \"done\"\]",
        ),
        (
            {"stage": "done", "pin": "secret"},
            "$.pin",
            "pattern",
            r"rule 'pattern' failed: pattern is \"\^\[0-9\]\{4\}\$\"",
        ),
        (
            {"stage": "done", "tries": 99},
            "$.tries",
            "maximum",
            r"rule 'maximum' failed: maximum is 3",
        ),
        (
            {"stage": "done", "extra": "secret"},
            "$",
            "additionalProperties",
            r"unexpected \$\.extra",
        ),
    ],
)
def test_schema_violations_name_path_and_rule_but_no_value(
    data: dict[str, object], path: str, rule: str, message: str
) -> None:
    with pytest.raises(SchemaViolationError, match=message) as info:
        validate_against_schema(data, schema_text(SCHEMA), "signup")
    assert info.value.path == path
    assert info.value.rule == rule
    assert "secret" not in str(info.value)
    assert "99" not in str(info.value)


def test_schemas_are_checked() -> None:
    assert check_schema(True) is True
    assert check_schema(SCHEMA) == SCHEMA
    with pytest.raises(InvalidSchemaError, match=r"at \$\.properties\.a\.minimum"):
        check_schema({"properties": {"a": {"minimum": "zero"}}})
    with pytest.raises(InvalidSchemaError, match="bucket schema is not JSON"):
        check_schema({"enum": [float("nan")]})


@pytest.mark.parametrize("dots", [".", "..", "...", "." * 256])
def test_an_id_of_only_dots_is_refused(dots: str) -> None:
    with pytest.raises(InvalidValueError, match="not only dots"):
        check_id(dots)
    assert check_id(".hidden") == ".hidden"
    assert check_id("a..b") == "a..b"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("accountToken", True),
        ("api_key", True),
        ("APIKey", True),
        ("session-cookies", True),
        ("password2", True),
        ("sessionId", True),
        ("refresh.token", True),
        ("tokenCount", False),
        ("keyboardLayout", False),
        ("monkey", False),
        ("keyId", False),
        ("passenger", False),
    ],
)
def test_secret_keys_are_matched_by_whole_words(key: str, secret: bool) -> None:
    assert is_secret_key(key, secret_key_patterns({})) is secret


def test_secret_key_words_of_the_environment_add_to_the_defaults() -> None:
    patterns = secret_key_patterns({"DEVICEBUCKET_SECRET_KEYS": "pin, otp_code"})
    assert is_secret_key("simPin", patterns)
    assert is_secret_key("lastOtpCode", patterns)
    assert is_secret_key("accountToken", patterns)  # the defaults still count
    assert not is_secret_key("otpLength", patterns)
