"""The examples of the seed documentation, translated to Python and run as written."""

from __future__ import annotations

import time

from devicebucket import Agent, Store


async def perform_account_setup() -> tuple[str, str]:
    return "token-from-setup", "setup@example.com"


async def test_reuse_or_login(store: Store) -> None:
    agent = Agent(store, "pixel-7-01")
    result = await agent.utils.deviceBucket.get()
    assert result["success"]
    assert not result["deviceBucket"].get("accountToken")  # "performing login..."

    saved = await agent.utils.deviceBucket.set(
        {
            "accountToken": "abc123xyz",
            "username": "user@example.com",
            "loginTimestamp": int(time.time() * 1000),
        }
    )
    assert saved["success"]
    assert saved["deviceBucket"]["accountToken"] == "abc123xyz"

    again = await Agent(store, "pixel-7-01").utils.deviceBucket.get()
    assert again["success"]
    assert again["deviceBucket"]["accountToken"] == "abc123xyz"
    assert again["deviceBucket"]["username"] == "user@example.com"


async def test_two_step_set_keeps_all_four_keys(store: Store) -> None:
    agent = Agent(store, "pixel-7-01")
    await agent.utils.deviceBucket.set({"accountToken": "abc123", "username": "user1"})
    await agent.utils.deviceBucket.set(
        {"appVersion": "2.1.0", "lastChecked": int(time.time() * 1000)}
    )
    result = await agent.utils.deviceBucket.get()
    assert result["success"]
    assert sorted(result["deviceBucket"]) == [
        "accountToken",
        "appVersion",
        "lastChecked",
        "username",
    ]


async def test_setup_is_shared_with_every_automation_and_job(store: Store) -> None:
    async def automation(agent: Agent) -> str:
        db = await agent.utils.deviceBucket.get()
        if db["success"] and db["deviceBucket"].get("accountToken"):
            return f"Using stored credentials for: {db['deviceBucket']['username']}"
        token, username = await perform_account_setup()
        await agent.utils.deviceBucket.set(
            {"accountToken": token, "username": username, "setupDate": int(time.time() * 1000)}
        )
        return "set up"

    assert await automation(Agent(store, "pixel-7-01")) == "set up"  # direct run
    reused = await automation(Agent(store, "pixel-7-01", job_id="any-job"))
    assert reused == "Using stored credentials for: setup@example.com"
    other_device = await automation(Agent(store, "pixel-7-02", job_id="any-job"))
    assert other_device == "set up"
