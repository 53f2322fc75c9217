"""Big job writes, checked against their job's schema ahead of the write (``core.ahead``), on
every store: they are refused and accepted as any job write, concurrent ones never pass the
schema together, and checking one holds no other device's write."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devicebucket import SQLiteStore, Store
from devicebucket.core.ahead import AHEAD_SIZE
from devicebucket.core.errors import SchemaViolationError
from devicebucket.core.model import Snapshot
from devicebucket.core.values import encode

# Items of integers, and at most one of "x" and "y".
SCHEMA = {
    "type": "object",
    "properties": {"items": {"type": "array", "items": {"type": "integer"}}},
    "not": {"required": ["x", "y"]},
}
ITEMS = list(range(AHEAD_SIZE // 2))  # a text well over AHEAD_SIZE


async def test_a_big_job_bucket_is_refused_and_accepted_as_any(store: Store) -> None:
    await store.register_job("big", schema=SCHEMA)
    assert len(encode({"items": ITEMS})) > AHEAD_SIZE
    await store.merge("pixel-1", {"items": ITEMS}, job="big")
    assert (await store.merge("pixel-1", {"x": 1}, job="big")).version == 2
    with pytest.raises(SchemaViolationError, match="nothing was written"):
        await store.merge("pixel-1", {"y": 1}, job="big")
    with pytest.raises(SchemaViolationError, match=r"\$\.items\[3\]"):
        await store.merge("pixel-1", {"items": [0, 1, 2, "three", *ITEMS]}, job="big")
    with pytest.raises(SchemaViolationError):  # a big write to a new bucket
        await store.merge("pixel-2", {"items": [*ITEMS, "last"]}, job="big")
    assert (await store.get("pixel-2", job="big")).version == 0
    after = await store.get("pixel-1", job="big")
    assert (after.version, after.data) == (2, {"items": ITEMS, "x": 1})
    assert (await store.delete("pixel-1", ["x"], job="big")).version == 3
    assert (await store.merge("pixel-1", {"y": 1}, job="big")).version == 4
    restored = await store.restore("pixel-1", 2, job="big")  # x again, y gone: it matches
    assert restored.data == {"items": ITEMS, "x": 1}


async def test_concurrent_big_writes_never_pass_the_schema_together(store: Store) -> None:
    """Each of "x" and "y" matches the bucket it is checked ahead against; whichever comes
    second finds the other there, and is checked again and refused."""
    await store.register_job("big", schema=SCHEMA)
    await store.merge("pixel-1", {"items": ITEMS}, job="big")
    for _ in range(5):
        results = await asyncio.gather(
            store.merge("pixel-1", {"x": 1}, job="big"),
            store.merge("pixel-1", {"y": 1}, job="big"),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["SchemaViolationError", "Snapshot"]
        data = (await store.get("pixel-1", job="big")).data
        assert len({"x", "y"} & data.keys()) == 1
        await store.delete("pixel-1", ["x", "y"], job="big")


async def test_checking_a_big_job_write_holds_no_other_writer(store: Store) -> None:
    """A bucket of ~1 MB takes jsonschema a good part of a second to check: another device's
    write, made after it began, is answered before it."""
    objects = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {"type": "object", "properties": {"a": {"type": "integer"}}},
            }
        },
    }
    await store.register_job("big", schema=objects)
    items = [{"a": n % 10} for n in range(110_000)]  # 8-9 characters each
    await store.merge("pixel-1", {"items": items}, job="big")
    big = asyncio.create_task(store.merge("pixel-1", {"n": 1}, job="big"))
    other = asyncio.create_task(store.merge("pixel-2", {"n": 1}))
    done, _ = await asyncio.wait({big, other}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {other}
    assert isinstance(await big, Snapshot)
    assert (await store.get("pixel-1", job="big")).data["n"] == 1


async def test_big_writes_from_two_stores_on_one_file_lose_nothing(tmp_path: Path) -> None:
    """Two stores on one SQLite file (as two processes would have): one's check may be made
    against a bucket the other has moved since; such a write is checked again, so every
    write lands once, and of "x" and "y" one only."""
    one, two = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")
    try:
        await one.register_job("big", schema=SCHEMA)
        await one.merge("pixel-1", {"items": ITEMS}, job="big")
        writes = [(one, two)[n % 2].merge("pixel-1", {f"k{n}": n}, job="big") for n in range(8)]
        written = await asyncio.gather(*writes)
        assert sorted(w.version for w in written) == list(range(2, 10))
        data = (await two.get("pixel-1", job="big")).data
        assert {k: v for k, v in data.items() if k != "items"} == {f"k{n}": n for n in range(8)}
        for _ in range(3):
            results = await asyncio.gather(
                one.merge("pixel-1", {"x": 1}, job="big"),
                two.merge("pixel-1", {"y": 1}, job="big"),
                return_exceptions=True,
            )
            names = sorted(type(r).__name__ for r in results)
            assert names == ["SchemaViolationError", "Snapshot"]
            assert len({"x", "y"} & (await one.get("pixel-1", job="big")).data.keys()) == 1
            await one.delete("pixel-1", ["x", "y"], job="big")
    finally:
        await one.close()
        await two.close()
