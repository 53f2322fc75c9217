"""Keys that expire, on every store: gone from every read at their instant, swept into the
history by the actor ``expiry``, delivered to watchers, kept by export and import."""

from __future__ import annotations

import asyncio
import math
import time
from contextlib import aclosing
from pathlib import Path

import pytest

from devicebucket import InvalidValueError, Store
from devicebucket.backends.copying import copy_store
from devicebucket.core.errors import QuotaExceededError
from devicebucket.core.limits import Limits
from devicebucket.core.model import BucketRecord
from devicebucket.core.watching import BucketChange

from ..conftest import STORE_KINDS, open_test_store


async def until_expired(store: Store, device: str, key: str, job: str | None = None) -> None:
    """Sleep until ``key``'s expiry instant has passed (the clock is the behaviour here).
    A key the store no longer lists has passed it already: a slow machine can take longer
    than a short expiry between the write and this read. Each test then checks that the
    key is gone, so a key that never had an expiry still fails it."""
    at = (await store.expiries(device, job=job)).get(key)
    if at is not None:
        await asyncio.sleep(max(0.0, at - time.time()) + 0.02)


async def test_an_expired_key_leaves_every_read_at_its_instant(store: Store) -> None:
    before = time.time()
    await store.merge("pixel-1", {"otp": "4921", "phone": "+1555"}, expire_in={"otp": 1.0})
    seen, expiries = (await store.get("pixel-1")).data, await store.expiries("pixel-1")
    if time.time() < before + 1.0:  # both read before the instant (a slow machine may not)
        assert seen == {"otp": "4921", "phone": "+1555"}
        assert set(expiries) == {"otp"}
        assert before + 0.99 < expiries["otp"] <= time.time() + 1.0
    await until_expired(store, "pixel-1", "otp")
    # No sweep has run: the reads leave the key out all the same.
    assert (await store.get("pixel-1")).data == {"phone": "+1555"}
    text, _ = await store.get_json("pixel-1")
    assert "otp" not in text
    assert await store.expiries("pixel-1") == {}


async def test_the_sweep_records_the_removal_by_the_actor_expiry(store: Store) -> None:
    await store.merge("pixel-1", {"otp": "4921", "keep": 1}, expire_in={"otp": 0.3})
    await until_expired(store, "pixel-1", "otp")
    await store.sweep_expired()
    after = await store.get("pixel-1")
    assert (after.data, after.version) == ({"keep": 1}, 2)
    newest = (await store.history("pixel-1", limit=1))[0]
    assert (newest.version, newest.actor, newest.removed) == (2, "expiry", ("otp",))
    assert await store.sweep_expired() == 0  # nothing more is due


async def test_a_write_after_the_instant_removes_the_key_first_as_its_own_version(
    store: Store,
) -> None:
    await store.merge("pixel-1", {"otp": "4921"}, expire_in={"otp": 0.3})
    seen = await store.get("pixel-1")
    await until_expired(store, "pixel-1", "otp")
    # The writer read version 1 (before the instant): its conditional write still applies.
    written = await store.merge("pixel-1", {"step": 2}, expected_version=seen.version)
    assert (written.data, written.version) == ({"step": 2}, 3)
    two, three = sorted(await store.history("pixel-1", limit=2), key=lambda c: c.version)
    assert (two.actor, two.removed) == ("expiry", ("otp",))
    assert three.added == ("step",)


async def test_setting_a_key_again_without_expire_in_clears_its_expiry(store: Store) -> None:
    await store.merge("pixel-1", {"session": "abc"}, expire_in={"session": 1.5})
    at = (await store.expiries("pixel-1"))["session"]
    again = await store.merge("pixel-1", {"session": "abc"})  # same value: still a change
    assert again.version == 2
    assert await store.expiries("pixel-1") == {}
    await asyncio.sleep(max(0.0, at - time.time()) + 0.02)  # past the old instant
    assert await store.sweep_expired() == 0
    assert (await store.get("pixel-1")).data == {"session": "abc"}
    longer = await store.merge("pixel-1", {"session": "abc"}, expire_in={"session": 3600})
    assert longer.version == 3
    assert 3590 < (await store.expiries("pixel-1"))["session"] - time.time() <= 3600


async def test_deleting_or_clearing_removes_the_expiry_too(store: Store) -> None:
    await store.merge("pixel-1", {"a": 1, "b": 2}, expire_in={"a": 60, "b": 60})
    await store.delete("pixel-1", ["a"])
    assert set(await store.expiries("pixel-1")) == {"b"}
    await store.clear("pixel-1")
    assert await store.expiries("pixel-1") == {}


@pytest.mark.parametrize(
    "expire_in",
    [
        {"other": 10},
        {"otp": 0},
        {"otp": -1},
        {"otp": math.nan},
        {"otp": math.inf},
        {"otp": 10**12},
        {"otp": "300"},
        {"otp": True},
        {1: 10},
        ["otp"],
    ],
    ids=[
        "not-written",
        "zero",
        "negative",
        "nan",
        "inf",
        "huge",
        "text",
        "bool",
        "int-key",
        "list",
    ],
)
async def test_a_bad_expire_in_is_refused_and_writes_nothing(
    store: Store, expire_in: object
) -> None:
    with pytest.raises(InvalidValueError, match="expire_in"):
        await store.merge("pixel-1", {"otp": "4921"}, expire_in=expire_in)  # type: ignore[arg-type]
    assert (await store.get("pixel-1")).version == 0


async def test_an_expiring_job_key_is_swept_even_if_the_schema_requires_it(store: Store) -> None:
    schema = {"type": "object", "required": ["session"]}
    await store.register_job("signup", schema=schema)
    await store.merge("pixel-1", {"session": "s"}, job="signup", expire_in={"session": 0.3})
    await until_expired(store, "pixel-1", "session", job="signup")
    assert (await store.get("pixel-1", job="signup")).data == {}
    await store.sweep_expired()
    assert (await store.get("pixel-1", job="signup")).version == 2


async def test_watchers_get_the_expiry_without_anyone_sweeping(store: Store) -> None:
    """A server sweeps by itself; a store that is watched sweeps while it is."""
    async with aclosing(store.watch("pixel-1", since=0)) as events:
        await store.merge("pixel-1", {"otp": "4921", "keep": 1}, expire_in={"otp": 0.3})
        got = []
        async with asyncio.timeout(15):
            async for event in events:
                got.append(event)
                if len(got) == 2:
                    break
    first, second = got
    assert isinstance(first, BucketChange)
    assert isinstance(second, BucketChange)
    assert first.changed == {"otp": "4921", "keep": 1}
    assert (second.version, second.actor, second.removed) == (2, "expiry", ("otp",))


async def test_export_and_import_keep_expiries(store: Store, tmp_path: Path) -> None:
    await store.merge("pixel-1", {"otp": "4921", "keep": 1}, expire_in={"otp": 3600})
    at = (await store.expiries("pixel-1"))["otp"]
    records = [r async for r in store.export(history=False)]
    (bucket,) = [r for r in records if isinstance(r, BucketRecord)]
    assert bucket.expires is not None
    assert abs(bucket.expires["otp"] - at) < 1e-3
    (tmp_path / "copy").mkdir()
    async with open_test_store("sqlite", tmp_path / "copy") as other:
        await other.import_records(records)
        assert abs((await other.expiries("pixel-1"))["otp"] - at) < 1e-3


async def test_copy_keeps_expiries(store: Store, tmp_path: Path) -> None:
    await store.merge("pixel-1", {"otp": "4921"}, expire_in={"otp": 3600})
    (tmp_path / "target").mkdir()
    async with open_test_store("sqlite", tmp_path / "target") as target:
        await copy_store(store, target)
        assert set(await target.expiries("pixel-1")) == {"otp"}


async def test_an_export_leaves_out_keys_whose_expiry_has_come(store: Store) -> None:
    await store.merge("pixel-1", {"otp": "4921", "keep": 1}, expire_in={"otp": 0.3})
    await until_expired(store, "pixel-1", "otp")
    records = [r async for r in store.export(history=False)]
    (bucket,) = [r for r in records if isinstance(r, BucketRecord)]
    assert (bucket.data, bucket.expires) == ({"keep": 1}, None)


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_a_write_over_the_quota_after_an_expiry_changes_nothing(
    kind: str, tmp_path: Path
) -> None:
    """The write is refused whole, the due removal with it; the next write sweeps."""
    async with open_test_store(kind, tmp_path, Limits(device_quota_bytes=1_000)) as store:
        await store.merge("d", {"otp": "1" * 400, "keep": 1}, expire_in={"otp": 0.3})
        await until_expired(store, "d", "otp")
        with pytest.raises(QuotaExceededError):
            await store.merge("d", {"big": "2" * 1_000})
        assert [c.version for c in await store.history("d")] == [1]
        written = await store.merge("d", {"small": 3})
        assert (written.data, written.version) == ({"keep": 1, "small": 3}, 3)
        changes = await store.history("d")
        assert [(c.version, c.actor == "expiry") for c in changes] == [
            (3, False),
            (2, True),
            (1, False),
        ]
        assert (await store.at_version("d", 2)).data == {"keep": 1}
