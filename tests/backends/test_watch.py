"""Watching, on every store: an event for every write, in order, once; resume from a version;
a resync past the kept history; watches of many buckets; wait_for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import TypeVar

import pytest

from devicebucket import Store
from devicebucket.core.errors import InvalidValueError, WaitTimeoutError
from devicebucket.core.limits import Limits
from devicebucket.core.watching import BucketChange, Overflow, Resync

from ..conftest import STORE_KINDS, open_test_store
from ..hearing import hearing

T = TypeVar("T")


async def take(events: AsyncGenerator[T, None], count: int, seconds: float = 10) -> list[T]:
    """The next ``count`` items of a watch (failing after ``seconds``)."""
    taken: list[T] = []
    async with asyncio.timeout(seconds):
        async for item in events:
            taken.append(item)
            if len(taken) == count:
                break
    return taken


def probe(event: object, n: int) -> bool:
    """Whether ``event`` is the write of ``{"probe": n}``."""
    return isinstance(event, BucketChange) and event.changed.get("probe") == n


async def test_every_write_is_one_event_in_order_with_its_values(store: Store) -> None:
    await store.merge("pixel-1", {"old": 1})
    async with aclosing(store.watch("pixel-1", since=1)) as events:
        reader = asyncio.create_task(take(events, 4))
        await store.merge("pixel-1", {"otp": "4921", "n": 1})
        await store.merge("pixel-1", {"n": 2})
        await store.delete("pixel-1", ["old"])
        await store.clear("pixel-1")
        got = await reader
    assert [e.version for e in got] == [2, 3, 4, 5]
    assert all(isinstance(e, BucketChange) for e in got)
    first, second, third, fourth = got
    assert isinstance(first, BucketChange)
    assert first.changed == {"otp": "4921", "n": 1}
    assert first.removed == ()
    assert isinstance(second, BucketChange)
    assert second.changed == {"n": 2}
    assert isinstance(third, BucketChange)
    assert (third.changed, third.removed) == ({}, ("old",))
    assert isinstance(fourth, BucketChange)
    assert set(fourth.removed) == {"n", "otp"}
    assert "library" in first.actor
    assert first.at > 0


async def test_a_watch_without_since_starts_after_the_current_version(store: Store) -> None:
    await store.merge("pixel-1", {"old": 1})
    async with aclosing(store.watch("pixel-1")) as events:
        heard = await hearing(events, lambda n: store.merge("pixel-1", {"probe": n}), probe)
        assert heard[0].version >= 2  # version 1 was there before: never given
        assert [e.version for e in heard] == list(range(heard[0].version, heard[-1].version + 1))
        assert all(probe(e, e.version - 1) for e in heard)
        await store.merge("pixel-1", {"n": 1})
        (event,) = await take(events, 1)
    assert isinstance(event, BucketChange)
    assert (event.version, event.changed) == (heard[-1].version + 1, {"n": 1})


async def test_since_replays_the_versions_after_it_then_live(store: Store) -> None:
    for n in range(1, 6):
        await store.merge("pixel-1", {"n": n})
    async with aclosing(store.watch("pixel-1", since=2)) as events:
        replayed = await take(events, 3)
        assert [e.version for e in replayed] == [3, 4, 5]
        assert [e.changed for e in replayed if isinstance(e, BucketChange)] == [
            {"n": 3},
            {"n": 4},
            {"n": 5},
        ]
        await store.merge("pixel-1", {"live": True})
        (live,) = await take(events, 1)
    assert isinstance(live, BucketChange)
    assert (live.version, live.changed) == (6, {"live": True})


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_since_past_the_kept_history_starts_with_one_resync(
    kind: str, tmp_path: Path
) -> None:
    if True:
        limits = Limits(history_versions=2, history_entries=2)
        async with open_test_store(kind, tmp_path, limits) as store:
            for n in range(1, 11):
                await store.merge("pixel-1", {f"k{n}": n})
            async with aclosing(store.watch("pixel-1", since=1)) as events:
                (resync,) = await take(events, 1)
                assert isinstance(resync, Resync), kind
                assert resync.version == 10
                assert resync.bucket == {f"k{n}": n for n in range(1, 11)}
                await store.merge("pixel-1", {"after": 1})
                (live,) = await take(events, 1)
            assert isinstance(live, BucketChange), kind
            assert (live.version, live.changed) == (11, {"after": 1})


async def test_a_job_bucket_is_watched_apart_from_the_device_bucket(store: Store) -> None:
    await store.register_job("signup")
    async with aclosing(store.watch("pixel-1", job="signup", since=0)) as events:
        await store.merge("pixel-1", {"device": "only"})
        await store.merge("pixel-1", {"step": 1}, job="signup")
        (event,) = await take(events, 1)
    assert isinstance(event, BucketChange)
    assert (event.version, event.job, event.changed) == (1, "signup", {"step": 1})


@pytest.mark.parametrize("kind", STORE_KINDS)
async def test_concurrent_writers_give_every_version_once_in_order(
    kind: str, tmp_path: Path
) -> None:
    # The history keeps all 50 versions: with the default 20, a watcher that the writers
    # outrun by more than that gets a Resync instead, as it should (and this test timed out
    # now and then through a server).
    limits = Limits(history_versions=64)
    async with (
        open_test_store(kind, tmp_path, limits) as store,
        aclosing(store.watch("pixel-1", since=0)) as events,
    ):
        reader = asyncio.create_task(take(events, 50, seconds=30))
        await asyncio.gather(*(store.merge("pixel-1", {f"k{n}": n}) for n in range(50)))
        got = await reader
    assert [e.version for e in got] == list(range(1, 51))
    keys = [k for e in got if isinstance(e, BucketChange) for k in e.changed]
    assert sorted(keys) == sorted(f"k{n}" for n in range(50))


async def test_a_watch_of_a_device_gets_all_its_buckets_and_no_others(store: Store) -> None:
    await store.register_job("signup")
    async with aclosing(store.watch_buckets("pixel-1")) as events:
        await hearing(events, lambda n: store.merge("pixel-1", {"probe": n}), probe)
        reader = asyncio.create_task(take(events, 2))
        await store.merge("pixel-2", {"other": 1})
        await store.merge("pixel-1", {"a": 1})
        await store.merge("pixel-1", {"step": 1}, job="signup")
        got = await reader
    places = sorted((e.device, e.job or "") for e in got if not isinstance(e, Overflow))
    assert places == [("pixel-1", ""), ("pixel-1", "signup")]


async def test_a_watch_of_the_fleet_gets_every_device(store: Store) -> None:
    async with aclosing(store.watch_buckets()) as events:
        await hearing(events, lambda n: store.merge("probe", {"probe": n}), probe)
        reader = asyncio.create_task(take(events, 3))
        for n in range(3):
            await store.merge(f"pixel-{n}", {"n": n})
        got = await reader
    changes = [e for e in got if isinstance(e, BucketChange)]
    assert sorted(e.device for e in changes) == ["pixel-0", "pixel-1", "pixel-2"]
    assert all(e.version == 1 for e in changes)


async def test_wait_for_a_key_returns_the_bucket_once_it_is_there(store: Store) -> None:
    await store.merge("pixel-1", {"phone": "+1555"})
    waiting = asyncio.create_task(store.wait_for("pixel-1", "otp", timeout=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await store.merge("pixel-1", {"unrelated": 1})
    await store.merge("pixel-1", {"otp": "4921"})
    found = await waiting
    assert found.data == {"phone": "+1555", "unrelated": 1, "otp": "4921"}
    assert found.version == 3


async def test_wait_for_a_predicate_and_for_what_is_already_there(store: Store) -> None:
    await store.merge("pixel-1", {"count": 1})
    assert (await store.wait_for("pixel-1", "count", timeout=1)).data == {"count": 1}
    waiting = asyncio.create_task(
        store.wait_for("pixel-1", lambda bucket: bucket.get("count", 0) >= 3, timeout=10)
    )
    for n in (2, 3):
        await store.merge("pixel-1", {"count": n})
    assert (await waiting).data == {"count": 3}


async def test_wait_for_times_out_with_an_error_naming_the_key(store: Store) -> None:
    with pytest.raises(WaitTimeoutError, match="'otp'"):
        await store.wait_for("pixel-1", "otp", timeout=0.3)


async def test_bad_watch_arguments_are_refused(store: Store) -> None:
    with pytest.raises(InvalidValueError):
        store.watch("pixel-1", since=-1)
    with pytest.raises(InvalidValueError):
        store.watch("../etc")
    with pytest.raises(InvalidValueError):
        await store.wait_for("pixel-1", 42, timeout=1)  # type: ignore[arg-type]


async def test_a_removed_device_brings_a_resync(store: Store) -> None:
    await store.merge("pixel-1", {"a": 1})
    async with aclosing(store.watch("pixel-1", since=1)) as events:
        reader = asyncio.create_task(take(events, 1))
        await store.delete_device("pixel-1")
        (resync,) = await reader
        assert isinstance(resync, Resync)
        assert (resync.version, resync.bucket) == (0, {})
        await store.merge("pixel-1", {"b": 2})
        (change,) = await take(events, 1)
    assert isinstance(change, BucketChange)
    assert (change.version, change.changed) == (1, {"b": 2})
