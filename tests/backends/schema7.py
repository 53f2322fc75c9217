"""A store of schema 7 (history rows keyed by bucket and version, each with the bucket's full
contents or none) as the SQLite and PostgreSQL migration tests write it, and what must hold
once its history has moved to chained rows (schema 8)."""

from __future__ import annotations

from devicebucket import Store

#: Buckets as rows of schema 7's ``buckets`` (device, data, version).
BUCKETS = [("a", '{"v":3}', 3), ("b", '{"v":2}', 2)]
#: History rows (device, version, at, data), out of version order: the move orders them.
HISTORY = [
    (device, v, float(v), f'{{"v":{v}}}' if v > 1 else None)
    for device, versions in (("a", 3), ("b", 2))
    for v in range(versions, 0, -1)
]
CHANGES = '[[],["v"],[]]'


async def check_moved(store: Store) -> None:
    """Every entry, its kept contents and its order survived, and new writes chain on."""
    assert [c.version for c in await store.history("a")] == [3, 2, 1]
    assert [c.kept for c in await store.history("a")] == [True, True, False]
    assert (await store.at_version("a", 2)).data == {"v": 2}
    assert [c.version for c in await store.history("b")] == [2, 1]
    assert (await store.merge("a", {"v": 4})).version == 4  # chained onto the moved rows
    assert [c.version for c in await store.history("a")] == [4, 3, 2, 1]
