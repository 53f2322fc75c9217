"""The agent API's watch and wait_for, with the contract's shapes, on every store."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import datetime

from devicebucket import Agent, Store


async def test_watch_gives_the_contract_shapes(store: Store) -> None:
    agent = Agent(store, "pixel-1")
    bucket = agent.utils.deviceBucket
    await bucket.set({"old": 1})
    got = []
    async with aclosing(bucket.watch(since=0)) as changes:
        async for change in changes:
            got.append(change)
            if change["version"] == 1:
                await bucket.set({"otp": "4921"})
                await bucket.delete("old")
            if change["version"] == 3:
                break
    assert [c["version"] for c in got] == [1, 2, 3]
    assert got[1]["changed"] == {"otp": "4921"}
    assert got[2] == {
        "version": 3,
        "at": got[2]["at"],
        "actor": got[2]["actor"],
        "changed": {},
        "removed": ["old"],
    }
    assert datetime.fromisoformat(got[2]["at"]).tzinfo is not None
    got[1]["changed"]["otp"] = "mutated"  # a copy of its own
    read = await bucket.get()
    assert read["success"]
    assert read["deviceBucket"] == {"otp": "4921"}


async def test_a_job_bucket_watch_needs_a_job_and_says_so(store: Store) -> None:
    bucket = Agent(store, "pixel-1").utils.bucket
    items = [item async for item in bucket.watch()]
    assert len(items) == 1
    assert items[0]["success"] is False
    assert "job context" in items[0]["error"]


async def test_a_bad_since_ends_the_watch_with_a_failure(store: Store) -> None:
    bucket = Agent(store, "pixel-1").utils.deviceBucket
    items = [item async for item in bucket.watch(since=-5)]
    assert items == [{"success": False, "error": items[0]["error"]}]
    assert "since" in items[0]["error"]


async def test_wait_for_an_otp_another_automation_writes(store: Store) -> None:
    reader = Agent(store, "pixel-1", automation="login.py").utils.deviceBucket
    writer = Agent(store, "pixel-1", automation="sms.py").utils.deviceBucket
    waiting = asyncio.create_task(reader.wait_for("otp", timeout=10))
    await asyncio.sleep(0.1)
    await writer.set({"otp": "4921"})
    assert await waiting == {"success": True, "deviceBucket": {"otp": "4921"}}


async def test_wait_for_a_predicate_in_a_job_bucket(store: Store) -> None:
    await store.register_job("signup")
    bucket = Agent(store, "pixel-1", "signup").utils.bucket
    waiting = asyncio.create_task(bucket.wait_for(lambda b: b.get("step", 0) >= 2, timeout=10))
    for step in (1, 2):
        await bucket.set({"step": step})
    assert await waiting == {"success": True, "bucket": {"step": 2}}


async def test_wait_for_fails_after_its_timeout_without_raising(store: Store) -> None:
    result = await Agent(store, "pixel-1").utils.deviceBucket.wait_for("otp", timeout=0.2)
    assert result["success"] is False
    assert "'otp'" in result["error"]
    assert "0.2 s" in result["error"]
