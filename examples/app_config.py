"""The seed's two-step set: add app configuration without losing the stored credentials."""

from __future__ import annotations

import time
from typing import Any


async def main(agent: Any) -> None:
    await agent.utils.deviceBucket.set(
        {"appVersion": "2.1.0", "lastChecked": int(time.time() * 1000)}
    )
    result = await agent.utils.deviceBucket.get()
    if not result["success"]:
        raise RuntimeError(result["error"])
    print("Device bucket keys:", ", ".join(sorted(result["deviceBucket"])))
