"""Every value the contract rejects: a clear message, and the bucket exactly as it was."""

from __future__ import annotations

import datetime
import decimal
import re
from typing import Any

import pytest

from devicebucket import Agent, InvalidValueError, Limits, Store
from devicebucket.core.values import normalize_data

SECRET = "hunter2-do-not-echo"


def nested_dicts(depth: int) -> dict[str, Any]:
    """A dict of ``depth`` nested containers in all (the outer dict counts as one)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def nested_lists(depth: int) -> dict[str, Any]:
    value: list[Any] = []
    for _ in range(depth - 2):
        value = [value]
    return {"l": value}


class Unknown:
    pass


BAD_INPUTS: list[tuple[str, Any, str]] = [
    ("list", [1, 2], r"^data must be a JSON object \(dict with str keys\), got list$"),
    ("string", "text", r"^data must be a JSON object .* got str$"),
    ("none", None, r"^data must be a JSON object .* got NoneType$"),
    ("int key", {1: "a"}, r"^value at \$ has a key of type int; keys must be str$"),
    ("nested int key", {"a": {"b": {2: 1}}}, r"^value at \$\.a\.b has a key of type int"),
    ("tuple key in list", {"a": [{(1, 2): 1}]}, r"^value at \$\.a\[0\] has a key of type tuple"),
    ("bytes", {"a": b"raw"}, r"^value at \$\.a has type bytes, which is not JSON"),
    ("set", {"a": {1, 2}}, r"^value at \$\.a has type set, which is not JSON"),
    ("datetime", {"when": datetime.datetime(2026, 1, 1)}, r"^value at \$\.when has type datetime"),
    ("decimal", {"d": decimal.Decimal("1.5")}, r"^value at \$\.d has type Decimal"),
    ("object", {"o": [1, Unknown()]}, r"^value at \$\.o\[1\] has type Unknown, which is not JSON"),
    ("nan", {"x": float("nan")}, r"^value at \$\.x is nan, which JSON cannot hold$"),
    ("infinity", {"x": [float("inf")]}, r"^value at \$\.x\[0\] is inf, which JSON cannot hold$"),
    ("-infinity", {"x": float("-inf")}, r"^value at \$\.x is -inf, which JSON cannot hold$"),
    (
        "long key",
        {"k" * 1025: 1},
        r"^key \$\[\"k{64}…\"\] is 1025 characters long, over the limit of 1024$",
    ),
    ("deep dicts", nested_dicts(65), r"^value at \$(\.n){64} nests deeper than 64 levels$"),
    ("deep lists", nested_lists(65), r"^value at \$\.l(\[0\]){63} nests deeper than 64 levels$"),
    (
        "lone surrogate",
        {"a": "\ud800"},
        r"^value at \$\.a is text that is not valid Unicode \(a lone UTF-16 surrogate",
    ),
    (
        "surrogate at depth",
        {"a": {"b": [1, "ok\udfffok"]}},
        r"^value at \$\.a\.b\[1\] is text that is not valid Unicode",
    ),
    (
        "surrogate in a key",
        {"a": {"\ud83d": 1}},
        r'^value at \$\.a\["\\ud83d"\] has a key that is not valid Unicode',
    ),
    (
        "too large",
        {"blob": "x" * (1024 * 1024)},
        r"^bucket would be 1,048,6\d\d bytes of JSON, over the limit of 1,048,576 bytes",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
async def test_rejected_whole_with_a_clear_message(store: Store, data: Any, message: str) -> None:
    await store.register_job("j")
    agent = Agent(store, "d", "j")
    await agent.utils.deviceBucket.set({"password": SECRET, "keep": [1]})
    await agent.utils.bucket.set({"password": SECRET})
    before = (await store.get("d"), await store.get("d", job="j"))

    for result in (await agent.utils.deviceBucket.set(data), await agent.utils.bucket.set(data)):
        assert result["success"] is False
        assert set(result) == {"success", "error"}
        assert re.search(message, result["error"]), result["error"]
        assert SECRET not in result["error"]

    assert (await store.get("d"), await store.get("d", job="j")) == before


def test_the_limits_themselves_are_accepted() -> None:
    """The boundary values are fine: 1,024-character keys, 64 levels."""
    limits = Limits()
    assert normalize_data({"k" * 1024: 1}, limits) == {"k" * 1024: 1}
    assert normalize_data(nested_dicts(64), limits) == nested_dicts(64)
    assert normalize_data(nested_lists(64), limits) == nested_lists(64)


async def test_tuple_is_stored_as_list(store: Store) -> None:
    result = await Agent(store, "d").utils.deviceBucket.set({"t": (1, (2, 3))})
    assert result == {"success": True, "deviceBucket": {"t": [1, [2, 3]]}}


@pytest.mark.parametrize(
    ("device", "job", "message"),
    [
        ("has space", None, r"^device id must be 1-256 characters from .*; got the character ' '$"),
        ("", None, r"^device id .* got an empty string$"),
        ("d" * 257, None, r"^device id .* got 257 characters$"),
        ("ok", "bad/job", r"^job id must be 1-256 characters .* got the character '/'$"),
    ],
)
async def test_bad_ids_are_refused(
    store: Store, device: str, job: str | None, message: str
) -> None:
    with pytest.raises(InvalidValueError) as info:
        await store.merge(device, {"a": 1}, job=job)
    assert re.search(message, str(info.value)), str(info.value)
    assert await store.devices() == []
