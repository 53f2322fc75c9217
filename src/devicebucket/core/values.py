"""JSON values: what a bucket may hold, its canonical text and its size.

Pure: nothing here does I/O. Every store checks values with these same functions, so a bucket
behaves the same on SQLite, on PostgreSQL and behind the HTTP server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeAlias

import orjson

from .errors import InvalidValueError
from .limits import Limits

__all__ = [
    "JSONObject",
    "check_size",
    "copy_json",
    "decode",
    "encode",
    "is_flat",
    "is_valid_text",
    "json_path",
    "normalize_data",
    "normalize_keys",
]

_PLAIN_KEY_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A lone UTF-16 surrogate: text a JavaScript string can hold, but no valid Unicode (nor UTF-8).
_SURROGATE_RE: Final = re.compile("[\ud800-\udfff]")
_SHOWN_CHARS: Final = 64

JSONObject: TypeAlias = dict[str, Any]


def is_valid_text(text: str) -> bool:
    """Whether ``text`` is valid Unicode: no lone surrogate (``"\ud800"``)."""
    return text.isascii() or _SURROGATE_RE.search(text) is None


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
            # A key that is not valid Unicode is shown escaped (``"\ud800"``), so the message
            # itself stays valid text.
            out.append(f"[{json.dumps(shown, ensure_ascii=not is_valid_text(shown))}]")
    return "".join(out)


class _Normalizer:
    """Copies a value into plain JSON types, rejecting anything JSON cannot hold."""

    __slots__ = ("max_depth", "path")

    def __init__(self, max_depth: int) -> None:
        self.max_depth = max_depth
        self.path: list[str | int] = []

    def fail(self, problem: str) -> InvalidValueError:
        return InvalidValueError(f"value at {json_path(self.path)} {problem}")

    def invalid_text(self) -> InvalidValueError:
        return self.fail(
            "is text that is not valid Unicode (a lone UTF-16 surrogate, such as a broken"
            " JavaScript string)"
        )

    def copy(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            if not is_valid_text(value):
                raise self.invalid_text()
            return value
        if kind is int or kind is bool or value is None:
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
            return self.copy(str(value), depth)
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
            if not is_valid_text(key):
                raise self.fail("has a key that is not valid Unicode (a lone UTF-16 surrogate)")
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
        if not is_valid_text(key):
            raise InvalidValueError(
                f"key {json_path([key])} to delete is not valid Unicode (a lone UTF-16 surrogate)"
            )
        out.append(str(key))
    return tuple(out)


# One encoder for every write (json.dumps with options builds a new one on each call).
_ENCODE: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode(data: JSONObject) -> str:
    """The canonical JSON text of a bucket, as stored: compact, with every character as it is
    (not ``\\u`` escaped). orjson writes it, ten times as fast as the standard library,
    which writes what orjson refuses (an int beyond 64 bits) the same way. The two differ
    only in how a float below 0.001 or so is written (``1e-8``, ``0.0000125``, as JavaScript
    writes them; the standard library's ``1e-08``, ``1.25e-05``): a bucket stored before,
    holding such a float, reads as changed by its next write."""
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        pass
    try:
        return _ENCODE(data)
    except ValueError as exc:  # e.g. an int with more digits than Python will print
        raise InvalidValueError(f"bucket cannot be encoded as JSON: {type(exc).__name__}") from None


# One decoder for every read (json.loads looks for keyword arguments on each call first).
_DECODE: Final = json.JSONDecoder().decode


_CONTAINERS: Final = frozenset((dict, list))


def copy_json(value: Any) -> Any:
    """A copy of plain JSON (dicts, lists and scalars, as ``decode`` makes them) that shares
    no dict or list with it: cheaper than decoding its text again."""
    kind = type(value)
    if kind is dict:
        return {k: copy_json(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if kind is list:
        return [copy_json(v) if type(v) in _CONTAINERS else v for v in value]
    return value


def is_flat(data: JSONObject) -> bool:
    """Whether ``data`` holds no dict or list: then ``dict(data)`` is a copy that shares no
    container with it, ten times as fast as ``copy_json``."""
    return _CONTAINERS.isdisjoint(map(type, data.values()))


def decode(text: str | bytes) -> JSONObject:
    """Parse a stored bucket. orjson reads it where what it read writes back to the very
    same text (``encode``): twice as fast as the standard library, which reads the rest
    (an int beyond 64 bits, which orjson would read as a float; a text stored in the
    standard library's own spelling of a small float; anything orjson refuses)."""
    value: Any = None
    if type(text) is str:
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
        if value is None or orjson.dumps(value) != text.encode():
            value = _DECODE(text)
    else:
        value = json.loads(text)
    if type(value) is not dict:
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
