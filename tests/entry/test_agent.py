"""The agent API: result shapes, contexts and failures that never raise."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicebucket import Agent, InvalidValueError, SQLiteStore, Store

SCHEMA = {"type": "object", "properties": {"attempts": {"type": "integer"}}}


async def test_shapes_of_success(store: Store) -> None:
    agent = Agent(store, "pixel-7-01", "signup")
    assert await agent.utils.deviceBucket.get() == {"success": True, "deviceBucket": {}}
    assert await agent.utils.deviceBucket.set({"a": 1}) == {
        "success": True,
        "deviceBucket": {"a": 1},
    }
    assert await agent.utils.bucket.get() == {"success": True, "bucket": {}}
    assert await agent.utils.bucket.set({"s": 1}) == {"success": True, "bucket": {"s": 1}}


async def test_snake_case_alias_is_the_same_object(store: Store) -> None:
    agent = Agent(store, "d")
    assert agent.utils.device_bucket is agent.utils.deviceBucket


async def test_job_bucket_requires_a_job_context(store: Store) -> None:
    agent = Agent(store, "d")
    for call in (
        agent.utils.bucket.get(),
        agent.utils.bucket.set({"a": 1}),
        agent.utils.bucket.delete("a"),
        agent.utils.bucket.clear(),
        agent.utils.bucket.update(lambda b: {}),
    ):
        result = await call
        assert result["success"] is False
        assert "requires a job context" in result["error"]
    # The device bucket works without one.
    assert (await agent.utils.deviceBucket.set({"a": 1}))["success"] is True


async def test_extensions_delete_clear_update(store: Store) -> None:
    bucket = Agent(store, "d").utils.deviceBucket
    await bucket.set({"a": 1, "b": 2, "c": 3})
    assert await bucket.delete("a", "b") == {"success": True, "deviceBucket": {"c": 3}}
    assert await bucket.update(lambda b: {"c": b["c"] + 1}) == {
        "success": True,
        "deviceBucket": {"c": 4},
    }
    assert await bucket.clear() == {"success": True, "deviceBucket": {}}


async def test_job_buckets_are_per_device_and_job(store: Store) -> None:
    await store.register_job("signup", schema=SCHEMA)
    one = Agent(store, "d1", "signup")
    two = Agent(store, "d2", "signup")
    await one.utils.bucket.set({"attempts": 1})
    assert (await two.utils.bucket.get()) == {"success": True, "bucket": {}}
    failed = await two.utils.bucket.set({"attempts": "many"})
    assert failed["success"] is False
    assert "$.attempts" in failed["error"]
    assert "'type'" in failed["error"]


async def test_bad_update_function_result_is_a_failure(store: Store) -> None:
    bucket = Agent(store, "d").utils.deviceBucket
    result = await bucket.update(lambda b: ["not", "a", "dict"])  # type: ignore[arg-type,return-value]
    assert result == {
        "success": False,
        "error": "data must be a JSON object (dict with str keys), got list",
    }


async def test_update_function_errors_propagate(store: Store) -> None:
    def broken(bucket: dict[str, object]) -> dict[str, object]:
        raise RuntimeError("bug in the automation")

    with pytest.raises(RuntimeError, match="bug in the automation"):
        await Agent(store, "d").utils.deviceBucket.update(broken)


async def test_broken_store_gives_failure_not_exception(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a sqlite database, just some bytes" * 100)
    store = SQLiteStore(path)
    agent = Agent(store, "d")
    for call in (agent.utils.deviceBucket.get(), agent.utils.deviceBucket.set({"a": 1})):
        result = await call
        assert result["success"] is False
        assert "SQLite store" in result["error"]
        assert "not a database" in result["error"]
    await store.close()


async def test_closed_store_gives_failure(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    await store.close()
    result = await Agent(store, "d").utils.deviceBucket.set({"a": 1})
    assert result == {"success": False, "error": f"SQLite store {tmp_path / 's.db'} is closed"}


def test_agent_checks_its_ids(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    with pytest.raises(InvalidValueError, match="device id"):
        Agent(store, "has space")
    with pytest.raises(InvalidValueError, match="job id"):
        Agent(store, "d", "")


async def test_results_narrow_for_mypy(store: Store) -> None:
    result = await Agent(store, "d").utils.deviceBucket.get()
    if result["success"]:
        bucket = result["deviceBucket"]
    else:
        pytest.fail(result["error"])
    assert bucket == {}


async def test_history_names_the_automation_and_its_job(store: Store) -> None:
    agent = Agent(store, "pixel-7-01", "signup", automation="signup.py")
    await agent.utils.deviceBucket.set({"a": 1})
    await agent.utils.bucket.update(lambda current: {"n": 1})
    await Agent(store, "pixel-7-01").utils.deviceBucket.delete("a")
    device_changes = await store.history("pixel-7-01")
    assert "automation signup.py in job signup" in device_changes[1].actor
    assert "agent" in device_changes[0].actor
    (job_change,) = await store.history("pixel-7-01", job="signup")
    assert "automation signup.py in job signup" in job_change.actor
