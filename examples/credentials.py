"""Reuse stored credentials, or log in once and store them for every automation on the device.

devicebucket run examples/credentials.py --device pixel-7-01   # logs in
devicebucket run examples/credentials.py --device pixel-7-01   # reuses
"""

from __future__ import annotations

import time
from typing import Any


async def perform_login(device_id: str) -> tuple[str, str]:
    """Stands in for a real login flow on the device."""
    return f"token-for-{device_id}", f"{device_id}@example.com"


async def main(agent: Any) -> None:
    db = await agent.utils.deviceBucket.get()
    if db["success"] and db["deviceBucket"].get("accountToken"):
        print(f"Reusing stored credentials for: {db['deviceBucket']['username']}")
        return
    print("No credentials found, performing login...")
    token, username = await perform_login(agent.device_id)
    result = await agent.utils.deviceBucket.set(
        {"accountToken": token, "username": username, "loginTimestamp": int(time.time() * 1000)}
    )
    if not result["success"]:
        raise RuntimeError(f"could not save credentials: {result['error']}")
    print(f"Credentials saved for: {username}")
