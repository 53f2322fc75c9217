"""The store conformance suite: every store passes every test here."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from devicebucket import (
    BucketRecord,
    ConflictError,
    InvalidSchemaError,
    InvalidValueError,
    Job,
    JobConflictError,
    NotFoundError,
    SchemaViolationError,
    Store,
)
from devicebucket.core.errors import QuotaExceededError
from devicebucket.core.limits import MAX_PAGE, Limits
from devicebucket.core.model import HistoryRecord

from ..conftest import STORE_KINDS, open_test_store

SCHEMA = {
    "type": "object",
    "properties": {"step": {"type": "integer", "minimum": 0}, "cookie": {"type": "string"}},
    "required": ["step"],
}


async def test_never_written_bucket_is_empty_at_version_zero(store: Store) -> None:
    snapshot = await store.get("pixel-1")
    assert snapshot.data == {}
    assert snapshot.version == 0
    assert await store.devices() == []


async def test_merge_is_shallow_and_keeps_other_keys(store: Store) -> None:
    await store.merge("pixel-1", {"a": 1, "nested": {"x": 1, "y": 2}})
    after = await store.merge("pixel-1", {"b": 2, "nested": {"z": 3}})
    assert after.data == {"a": 1, "b": 2, "nested": {"z": 3}}
    assert (await store.get("pixel-1")).data == after.data


async def test_what_a_write_answers_is_the_callers_own(store: Store) -> None:
    first = await store.merge("d", {"list": [1, [2]], "obj": {"k": {"deep": "v"}}})
    answered = first.data
    answered["list"][1].append(3)
    answered["obj"]["k"]["deep"] = "changed"
    answered["new"] = True
    assert first.data is answered  # the caller's copy, made once
    stored = {"list": [1, [2]], "obj": {"k": {"deep": "v"}}}
    assert (await store.get("d")).data == stored
    second = await store.merge("d", {"x": 1})
    assert second.data == {**stored, "x": 1}
    second.data["obj"]["k"] = None
    assert (await store.merge("d", {"y": 2})).data == {**stored, "x": 1, "y": 2}
    assert (await store.get("d")).data == {**stored, "x": 1, "y": 2}


async def test_a_flat_bucket_answers_a_copy_as_it_gains_and_loses_containers(
    store: Store,
) -> None:
    flat = await store.merge("d", {"a": 1, "b": "x"})
    flat.data["a"] = "changed"
    flat.data["new"] = True
    nested = await store.merge("d", {"c": [1, {"k": "v"}]})  # no longer flat
    assert nested.data == {"a": 1, "b": "x", "c": [1, {"k": "v"}]}
    nested.data["c"][1]["k"] = "changed"
    nested.data["c"].append(2)
    kept = await store.merge("d", {"z": 0})
    assert kept.data == {"a": 1, "b": "x", "c": [1, {"k": "v"}], "z": 0}
    kept.data["c"][1]["k"] = "changed"
    again = await store.merge("d", {"c": 3})  # flat again
    assert again.data == {"a": 1, "b": "x", "c": 3, "z": 0}
    again.data["c"] = 4
    gone = await store.delete("d", ["b"])
    gone.data["a"] = None
    assert (await store.merge("d", {"e": 5})).data == {"a": 1, "c": 3, "z": 0, "e": 5}
    assert (await store.get("d")).data == {"a": 1, "c": 3, "z": 0, "e": 5}


async def test_numbers_of_every_size_read_back_exactly(store: Store) -> None:
    numbers = {"big": 2**70, "i64": -(2**63), "u64": 2**64 - 1, "small": 1.25e-5, "one": 1.0}
    assert (await store.merge("d", numbers)).data == numbers
    assert (await store.merge("d", {"more": 1})).data == {**numbers, "more": 1}
    assert (await store.get("d")).data == {**numbers, "more": 1}
    assert (await store.merge("d", {"small": 1.25e-5})).version == 2  # the same value: no change


async def test_none_is_stored_as_null_not_deleted(store: Store) -> None:
    await store.merge("pixel-1", {"a": 1})
    after = await store.merge("pixel-1", {"a": None})
    assert after.data == {"a": None}


async def test_versions_grow_by_one_per_change(store: Store) -> None:
    assert (await store.merge("d", {"a": 1})).version == 1
    assert (await store.merge("d", {"a": 2})).version == 2
    assert (await store.delete("d", ["a"])).version == 3
    assert (await store.merge("d", {"b": 1})).version == 4
    assert (await store.clear("d")).version == 5
    assert await store.version("d") == 5


async def test_writes_that_change_nothing_keep_the_version(store: Store) -> None:
    await store.merge("d", {"a": 1, "b": [1, 2]})
    assert (await store.merge("d", {})).version == 1
    assert (await store.merge("d", {"a": 1, "b": [1, 2]})).version == 1
    assert (await store.delete("d", ["missing"])).version == 1
    # 1 and 1.0 and True are different JSON values: each is a change.
    assert (await store.merge("d", {"a": 1.0})).version == 2
    assert (await store.merge("d", {"a": True})).version == 3


async def test_set_empty_on_missing_bucket_creates_nothing(store: Store) -> None:
    assert (await store.merge("d", {})).version == 0
    assert (await store.clear("d")).version == 0
    assert await store.devices() == []


async def test_result_is_a_fresh_copy(store: Store) -> None:
    patch: dict[str, Any] = {"list": [1, 2], "obj": {"k": "v"}}
    result = await store.merge("d", patch)
    result.data["list"].append(3)
    result.data["obj"]["k"] = "changed"
    patch["list"].append(99)
    read = await store.get("d")
    assert read.data == {"list": [1, 2], "obj": {"k": "v"}}
    read.data["new"] = 1
    assert (await store.get("d")).data == {"list": [1, 2], "obj": {"k": "v"}}


async def test_device_and_job_buckets_are_separate(store: Store) -> None:
    await store.merge("d", {"shared": 1})
    await store.merge("d", {"session": 2}, job="signup")
    await store.merge("d", {"session": 3}, job="warmup")
    await store.merge("e", {"shared": 4})
    assert (await store.get("d")).data == {"shared": 1}
    assert (await store.get("d", job="signup")).data == {"session": 2}
    assert (await store.get("d", job="warmup")).data == {"session": 3}
    assert (await store.get("e", job="signup")).data == {}


async def test_delete_and_clear(store: Store) -> None:
    await store.merge("d", {"a": 1, "b": 2, "c": 3})
    assert (await store.delete("d", ["a", "c", "zz"])).data == {"b": 2}
    cleared = await store.clear("d")
    assert cleared.data == {}
    assert (await store.get("d")).data == {}
    with pytest.raises(InvalidValueError, match="list of str"):
        await store.delete("d", "b")


async def test_conditional_write_on_expected_version(store: Store) -> None:
    first = await store.merge("d", {"a": 1})
    second = await store.merge("d", {"a": 2}, expected_version=first.version)
    assert second.version == 2
    with pytest.raises(ConflictError, match="expected version 1, the bucket is at version 2"):
        await store.merge("d", {"a": 3}, expected_version=first.version)
    with pytest.raises(ConflictError):
        await store.delete("d", ["a"], expected_version=0)
    with pytest.raises(ConflictError):
        await store.clear("d", expected_version=5)
    assert (await store.get("d")).data == {"a": 2}
    # Expecting version 0 means "only if it was never written".
    assert (await store.merge("new", {"x": 1}, expected_version=0)).version == 1


async def test_update_never_loses_an_increment(store: Store) -> None:
    async def increment() -> None:
        await store.update("d", lambda bucket: {"n": bucket.get("n", 0) + 1})

    await asyncio.gather(*(increment() for _ in range(40)))
    assert (await store.get("d")).data == {"n": 40}


async def test_update_accepts_an_async_function(store: Store) -> None:
    async def fn(bucket: dict[str, object]) -> dict[str, object]:
        return {"seen": sorted(bucket)}

    await store.merge("d", {"a": 1})
    assert (await store.update("d", fn)).data == {"a": 1, "seen": ["a"]}


async def test_concurrent_writers_of_distinct_keys_lose_nothing(store: Store) -> None:
    await asyncio.gather(*(store.merge("d", {f"k{i}": i}) for i in range(200)))
    snapshot = await store.get("d")
    assert snapshot.data == {f"k{i}": i for i in range(200)}
    assert snapshot.version == 200


async def test_a_rejected_write_in_a_batch_leaves_the_others(store: Store) -> None:
    results = await asyncio.gather(
        store.merge("d", {"a": 1}),
        store.merge("d", {"b": 1}, expected_version=99),
        store.merge("d", {"c": 1}),
        return_exceptions=True,
    )
    assert isinstance(results[1], ConflictError)
    assert (await store.get("d")).data == {"a": 1, "c": 1}


async def test_size_limit_rejects_the_merged_bucket(store: Store) -> None:
    limit = store.limits.max_bucket_bytes
    await store.merge("d", {"a": "x" * (limit // 2)})
    with pytest.raises(InvalidValueError, match="over the limit of 1,048,576 bytes"):
        await store.merge("d", {"b": "y" * (limit // 2)})
    assert set((await store.get("d")).data) == {"a"}


async def test_job_schema_validates_the_merged_bucket(store: Store) -> None:
    await store.register_job("signup", automation="signup.py", schema=SCHEMA)
    assert (await store.get("d", job="signup")).data == {}  # never written: {} though required
    with pytest.raises(
        SchemaViolationError, match=r"at \$: rule 'required' failed: missing \$.step"
    ):
        await store.merge("d", {"cookie": "c"}, job="signup")
    await store.merge("d", {"step": 1}, job="signup")
    with pytest.raises(SchemaViolationError, match=r"at \$.step: rule 'type' failed") as info:
        await store.merge("d", {"step": "hunter2-secret"}, job="signup")
    assert "hunter2-secret" not in str(info.value)
    assert info.value.path == "$.step"
    assert info.value.rule == "type"
    assert (await store.get("d", job="signup")).data == {"step": 1}
    # The device bucket is never checked against a job schema.
    await store.merge("d", {"step": "anything"})


async def test_unregistered_job_has_no_schema(store: Store) -> None:
    assert await store.get_job("adhoc") is None
    assert (await store.merge("d", {"anything": [1]}, job="adhoc")).data == {"anything": [1]}


async def test_register_job_refuses_invalid_and_conflicting_schemas(store: Store) -> None:
    with pytest.raises(InvalidSchemaError, match="not a valid JSON Schema"):
        await store.register_job("j", schema={"type": "no-such-type"})
    with pytest.raises(InvalidSchemaError, match="must be a JSON Schema object"):
        await store.register_job("j", schema=["type"])
    assert await store.get_job("j") is None
    job = await store.register_job("j", automation="a.py", schema=SCHEMA)
    assert job.schema == SCHEMA
    # The same schema again (keys in another order) is fine.
    reordered = dict(reversed(list(SCHEMA.items())))
    await store.register_job("j", automation="a.py", schema=reordered)
    with pytest.raises(JobConflictError, match="different bucket schema"):
        await store.register_job("j", schema={"type": "object"})
    # No schema given keeps the stored one.
    kept = await store.register_job("j", automation="b.py")
    assert kept.schema == SCHEMA
    assert kept.automation == "b.py"
    replaced = await store.register_job("j", schema={"type": "object"}, replace_schema=True)
    assert replaced.schema == {"type": "object"}
    assert [j.job for j in await store.jobs()] == ["j"]


async def test_devices_lists_counts_sizes_and_jobs_in_pages(store: Store) -> None:
    await store.merge("b-dev", {"x": 1, "y": 2})
    await store.merge("b-dev", {"s": 1}, job="j2")
    await store.merge("b-dev", {"s": 1}, job="j1")
    await store.merge("a-dev", {"x": 1})
    await store.merge("c-dev", {"s": 1}, job="j1")
    listed = await store.devices()
    assert [d.device for d in listed] == ["a-dev", "b-dev", "c-dev"]
    b = listed[1]
    assert b.keys == 2
    assert b.jobs == ("j1", "j2")
    assert b.size == len('{"x":1,"y":2}') + 2 * len('{"s":1}')
    assert b.updated_at > 0
    assert listed[2].keys == 0
    page = await store.devices(after="a-dev", limit=1)
    assert [d.device for d in page] == ["b-dev"]
    with pytest.raises(InvalidValueError, match="limit"):
        await store.devices(limit=0)


async def test_device_page_searches_sorts_filters_and_counts(store: Store) -> None:
    await store.merge("Pixel-A", {"a": 1, "b": 2, "c": 3})
    await store.merge("pixel-b", {"a": "x" * 50})
    await store.merge("pixel-c", {"a": 1})
    await store.merge("pixel-c", {"step": 1}, job="signup")
    await store.merge("emu-1", {"a": 1, "b": 2})

    page = await store.device_page(search="PIXEL", limit=2)
    assert [d.device for d in page.devices] == ["Pixel-A", "pixel-b"]
    assert page.total == 3
    following = await store.device_page(search="pixel", offset=2, limit=2)
    assert [d.device for d in following.devices] == ["pixel-c"]
    assert following.total == 3

    by_keys = await store.device_page(sort="keys", descending=True)
    assert [d.device for d in by_keys.devices] == ["Pixel-A", "emu-1", "pixel-b", "pixel-c"]
    by_size = await store.device_page(sort="size", descending=True, limit=1)
    assert [d.device for d in by_size.devices] == ["pixel-b"]
    newest = await store.device_page(sort="updated_at", descending=True, limit=1)
    assert [d.device for d in newest.devices] == ["emu-1"]
    by_id_desc = await store.device_page(descending=True)
    assert [d.device for d in by_id_desc.devices] == ["pixel-c", "pixel-b", "emu-1", "Pixel-A"]

    with_job = await store.device_page(job="signup")
    assert [(d.device, d.jobs) for d in with_job.devices] == [("pixel-c", ("signup",))]
    assert with_job.total == 1
    beyond = await store.device_page(offset=10)
    assert (beyond.devices, beyond.total) == ([], 4)
    assert (await store.device_page(search="nothing")).total == 0


async def test_sorted_device_pages_follow_writes_deletes_and_imports(store: Store) -> None:
    for n, device in enumerate(("d1", "d2", "d3")):
        await store.merge(device, {f"k{i}": "v" for i in range(n + 1)})

    async def by_keys() -> tuple[list[str], int]:
        page = await store.device_page(sort="keys", descending=True)
        return [d.device for d in page.devices], page.total

    assert await by_keys() == (["d3", "d2", "d1"], 3)  # a first sorted page
    await store.merge("d1", {f"x{i}": 1 for i in range(5)})
    assert await by_keys() == (["d1", "d3", "d2"], 3)  # a write since
    await store.delete_device("d3")
    assert await by_keys() == (["d1", "d2"], 2)
    await store.import_records([BucketRecord("d9", None, {f"k{i}": 1 for i in range(9)}, 1, 1.0)])
    assert await by_keys() == (["d9", "d1", "d2"], 3)
    newest = await store.device_page(sort="updated_at", descending=True, limit=1)
    assert [d.device for d in newest.devices] == ["d1"]  # the import's time is its own (1.0)
    await store.merge("d2", {"big": "x" * 500}, job="signup")
    by_size = await store.device_page(sort="size", descending=True, limit=1, search="D")
    assert ([d.device for d in by_size.devices], by_size.total) == (["d2"], 3)


async def test_device_is_found_by_id(store: Store) -> None:
    for device in ("pixel-1", "a-pixel-1", "pixel-10"):
        await store.merge(device, {"a": 1})
    await store.merge("pixel-1", {"s": 1}, job="signup")
    found = await store.device("pixel-1")
    assert found is not None
    assert (found.device, found.keys, found.jobs) == ("pixel-1", 1, ("signup",))
    assert await store.device("pixel-2") is None


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"sort": "data"}, "sort must be one of"),
        ({"offset": -1}, "offset"),
        ({"limit": 0}, "limit"),
        ({"job": "bad job"}, "job id"),
        ({"search": "x" * 257}, "search"),
        ({"search": "pixel-\ud800"}, "search must be valid Unicode"),
        ({"search": "\udfff", "sort": "keys"}, "search must be valid Unicode"),
    ],
)
async def test_device_page_refuses_bad_arguments(
    store: Store, arguments: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidValueError, match=message):
        await store.device_page(**arguments)  # type: ignore[arg-type]


async def test_token_is_found_by_id_without_its_secret(store: Store) -> None:
    created, secret = await store.create_token("pixel-1")
    found = await store.token(created.id)
    assert found == created
    assert secret not in repr(found)
    assert await store.token("000000000000") is None
    await store.revoke_token(created.id)
    assert await store.token(created.id) is None


async def test_export_then_import_restores_exactly(store: Store, tmp_path: object) -> None:
    await store.register_job("signup", automation="s.py", schema=SCHEMA)
    await store.merge("d1", {"token": "t", "n": [1, {"deep": None}]})
    await store.merge("d1", {"n": 2})
    await store.merge("d1", {"step": 3}, job="signup")
    await store.merge("d2", {"ü": "ñ"})
    exported = [record async for record in store.export(history=False)]
    assert [type(r) for r in exported] == [Job, BucketRecord, BucketRecord, BucketRecord]
    await store.clear("d1")
    await store.merge("d3", {"kept": True})
    assert await store.import_records(exported) == 4
    assert (await store.get("d1")).data == {"token": "t", "n": 2}
    assert (await store.get("d1")).version == 2
    assert (await store.get("d1", job="signup")).version == 1
    assert (await store.get("d3")).data == {"kept": True}
    again = [
        r
        async for r in store.export(history=False)
        if not (isinstance(r, BucketRecord) and r.device == "d3")
    ]
    assert again == exported


async def test_export_and_import_carry_the_history(store: Store) -> None:
    await store.merge("d1", {"password": "pw-in-history", "n": 1}, actor="first")
    await store.merge("d1", {"n": 2}, actor="second")
    await store.delete("d1", ["password"], actor="third")
    await store.merge("d1", {"s": 1}, job="j")
    history = await store.history("d1")
    exported = [record async for record in store.export()]
    kinds = [type(r).__name__ for r in exported]
    assert kinds == ["BucketRecord"] * 2 + ["HistoryRecord"] * 4
    entry = next(r for r in exported if isinstance(r, HistoryRecord) and r.change.version == 1)
    assert entry.data == {"password": "pw-in-history", "n": 1}
    assert entry.change.actor.endswith("first")
    # Into a store that has other history for the same bucket: the export's replaces it.
    await store.merge("d1", {"later": True})
    assert await store.import_records(exported) == 6
    assert await store.history("d1") == history
    assert (await store.at_version("d1", 1)).data == {"password": "pw-in-history", "n": 1}
    assert [r async for r in store.export()] == exported
    restored = await store.restore("d1", 1)
    assert restored.data == {"password": "pw-in-history", "n": 1}


async def test_import_is_all_or_nothing(store: Store) -> None:
    await store.merge("d1", {"a": 1})
    good = BucketRecord("d2", None, {"b": 1}, 1, 1.0)
    bad = BucketRecord("d!", None, {"b": 1}, 1, 1.0)
    with pytest.raises(InvalidValueError, match="device id"):
        await store.import_records([good, bad])
    with pytest.raises(InvalidValueError, match="version"):
        await store.import_records([BucketRecord("d2", None, {}, 0, 1.0)])
    assert [d.device for d in await store.devices()] == ["d1"]


async def test_delete_device_removes_all_its_buckets(store: Store) -> None:
    await store.merge("d1", {"a": 1})
    await store.merge("d1", {"s": 1}, job="j")
    await store.merge("d2", {"a": 1})
    assert await store.delete_device("d1") == 2
    assert [d.device for d in await store.devices()] == ["d2"]
    assert (await store.get("d1", job="j")).data == {}
    assert await store.delete_device("d1") == 0


async def test_tokens_are_issued_listed_checked_and_revoked(store: Store) -> None:
    token, secret = await store.create_token("pixel-1")
    admin, admin_secret = await store.create_token(None)
    assert secret.startswith(f"dbk_{token.id}_")
    assert token.device == "pixel-1"
    assert admin.is_admin
    assert {t.id for t in await store.tokens()} == {token.id, admin.id}
    assert await store.authenticate(secret) == token
    assert await store.authenticate(admin_secret) == admin
    assert await store.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    assert await store.authenticate("not-a-token") is None
    await store.revoke_token(token.id)
    assert await store.authenticate(secret) is None
    with pytest.raises(NotFoundError, match="no token with id"):
        await store.revoke_token(token.id)


async def test_history_records_each_change_with_its_actor_and_keys(store: Store) -> None:
    await store.merge("pixel-1", {"a": 1, "b": 2}, actor="automation login.py")
    await store.merge("pixel-1", {"a": 1, "b": 3, "c": True})
    await store.merge("pixel-1", {"c": True})  # no change: no version, no history
    await store.delete("pixel-1", ["a"], actor="cli")
    await store.clear("pixel-1", actor="cli")
    changes = await store.history("pixel-1")
    assert [c.version for c in changes] == [4, 3, 2, 1]
    newest, deleted, merged, first = changes
    assert (first.added, first.changed, first.removed) == (("a", "b"), (), ())
    assert (merged.added, merged.changed, merged.removed) == (("c",), ("b",), ())
    assert (deleted.added, deleted.changed, deleted.removed) == ((), (), ("a",))
    assert (newest.added, newest.changed, newest.removed) == ((), (), ("b", "c"))
    assert "automation login.py" in first.actor
    assert "cli" in deleted.actor
    assert all(c.kept and c.at > 0 for c in changes)
    assert [c.version for c in await store.history("pixel-1", limit=2)] == [4, 3]
    assert await store.history("pixel-1", job="signup") == []


async def test_a_kept_version_can_be_read_and_restored_as_a_new_version(store: Store) -> None:
    await store.merge("pixel-1", {"token": "old", "n": 1})
    await store.merge("pixel-1", {"token": "new"}, job=None)
    await store.delete("pixel-1", ["n"])
    assert (await store.at_version("pixel-1", 1)).data == {"token": "old", "n": 1}
    assert (await store.at_version("pixel-1", 0)).data == {}
    with pytest.raises(ConflictError):
        await store.restore("pixel-1", 1, expected_version=2)
    restored = await store.restore("pixel-1", 1, expected_version=3, actor="admin")
    assert (restored.data, restored.version) == ({"token": "old", "n": 1}, 4)
    assert (await store.get("pixel-1")).data == {"token": "old", "n": 1}
    undo = await store.history("pixel-1", limit=1)
    assert "restore of version 1" in undo[0].actor
    assert undo[0].changed == ("token",)
    assert undo[0].added == ("n",)
    # The restore is itself a version, so it can be undone.
    await store.restore("pixel-1", 3)
    assert (await store.get("pixel-1")).data == {"token": "new"}
    with pytest.raises(NotFoundError, match="version 99"):
        await store.at_version("pixel-1", 99)
    with pytest.raises(InvalidValueError, match="version"):
        await store.at_version("pixel-1", -1)


async def test_a_restore_must_match_the_jobs_current_schema(store: Store) -> None:
    await store.merge("pixel-1", {"free": "form"}, job="signup")
    await store.register_job("signup", schema=SCHEMA)
    await store.merge("pixel-1", {"step": 1}, job="signup")
    with pytest.raises(SchemaViolationError):
        await store.restore("pixel-1", 0, job="signup")  # {} lacks the required "step"
    assert (await store.get("pixel-1", job="signup")).version == 2


async def test_at_least_the_last_versions_keep_their_contents(store: Store) -> None:
    keep = store.limits.history_versions
    newest = 2 * keep + 3
    for n in range(newest):
        await store.merge("pixel-1", {"n": n})
    changes = await store.history("pixel-1", limit=1000)
    assert [c.version for c in changes] == list(range(newest, 0, -1))  # every change listed
    kept = [c.version for c in changes if c.kept]
    assert kept == list(range(newest, newest - len(kept), -1))  # the newest, without gaps
    assert keep <= len(kept) < 2 * keep
    with pytest.raises(NotFoundError, match="older than the last"):
        await store.at_version("pixel-1", 1)
    oldest = kept[-1]
    assert (await store.at_version("pixel-1", oldest)).data == {"n": oldest - 1}


async def test_deleting_a_device_forgets_its_history(store: Store) -> None:
    await store.merge("pixel-1", {"a": 1})
    await store.delete_device("pixel-1")
    assert await store.history("pixel-1") == []
    await store.merge("pixel-1", {"b": 1})
    assert [c.version for c in await store.history("pixel-1")] == [1]


async def test_job_summaries_count_each_jobs_devices(store: Store) -> None:
    await store.register_job("signup", automation="signup.py")
    await store.register_job("warmup")
    for device in ("a", "b", "c"):
        await store.merge(device, {"step": 1}, job="signup")
    await store.merge("a", {"k": 1})  # a device bucket is no job's
    summaries = await store.job_summaries()
    assert [(job.job, job.automation, count) for job, count in summaries] == [
        ("signup", "signup.py", 3),
        ("warmup", None, 0),
    ]


async def test_page_limits_mean_the_same_on_every_store(store: Store) -> None:
    """MAX_PAGE is the most a listing returns, whatever the store (HTTP included)."""
    for start in range(0, 1001, 50):  # 50 at a time: within any client's connection pool
        await asyncio.gather(
            *(store.merge(f"dev-{n:04d}", {"n": n}) for n in range(start, min(start + 50, 1001)))
        )
    assert len(await store.devices(limit=MAX_PAGE)) == 1001  # the HTTP store capped it at 1000
    with pytest.raises(InvalidValueError, match=f"1 to {MAX_PAGE}"):
        await store.history("d", limit=MAX_PAGE + 1)
    with pytest.raises(InvalidValueError, match=f"1 to {MAX_PAGE}"):
        await store.devices(limit=MAX_PAGE + 1)


@pytest.mark.parametrize("dots", [".", ".."])
async def test_ids_of_only_dots_are_refused_everywhere(store: Store, dots: str) -> None:
    """Through the HTTP store, job ".." once vanished from the URL and wrote the device bucket."""
    with pytest.raises(InvalidValueError, match="not only dots"):
        await store.merge("pixel", {"a": 1}, job=dots)
    with pytest.raises(InvalidValueError, match="not only dots"):
        await store.merge(dots, {"a": 1})
    assert (await store.get("pixel")).version == 0


# --- quotas and a bounded history (every store, with limits of its own) ------------------


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_device_quota_covers_all_its_buckets_and_refuses_a_write_whole(
    kind: str, tmp_path: Path
) -> None:
    limits = Limits(device_quota_bytes=3_000)
    async with open_test_store(kind, tmp_path, limits) as store:
        await store.register_job("a")
        await store.register_job("b")
        await store.merge("d", {"x": "1" * 1_000})
        await store.merge("d", {"x": "1" * 1_000}, job="a")
        with pytest.raises(QuotaExceededError, match=r"quota of 3,000 bytes"):
            await store.merge("d", {"x": "1" * 1_000, "y": 1}, job="b")
        assert await store.version("d", job="b") == 0  # nothing stored
        await store.merge("d", {"y": "small"}, job="b")  # within the quota
        with pytest.raises(QuotaExceededError):
            await store.merge("d", {"more": "2" * 1_000})
        # Other devices have quotas of their own; shrinking is always allowed.
        assert (await store.merge("other", {"x": "1" * 2_900})).version == 1
        assert (await store.merge("d", {"x": "short"})).version == 2
        assert (await store.merge("d", {"more": "2" * 1_000})).version == 3


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_the_history_keeps_a_bounded_number_of_entries(kind: str, tmp_path: Path) -> None:
    limits = Limits(history_versions=2, history_entries=5)
    async with open_test_store(kind, tmp_path, limits) as store:
        for n in range(1, 301):
            await store.merge("d", {"n": n})
        versions = [c.version for c in await store.history("d", limit=MAX_PAGE)]
        assert 5 <= len(versions) <= 105
        assert versions == list(range(300, 300 - len(versions), -1))  # the newest, in order
        assert (await store.at_version("d", 299)).data == {"n": 299}
