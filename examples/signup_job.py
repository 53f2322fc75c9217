"""A job bucket with a schema: per-(device, job) session state that must keep its shape.

devicebucket run examples/signup_job.py --device pixel-7-01 --job signup
"""

from __future__ import annotations

from typing import Any

BUCKET_SCHEMA = {
    "type": "object",
    "properties": {
        "attempts": {"type": "integer", "minimum": 0},
        "stage": {"enum": ["start", "form", "verify", "done"]},
        "sessionCookie": {"type": "string"},
    },
    "additionalProperties": False,
}


async def main(agent: Any) -> None:
    # Count this attempt atomically, even if other runs of the job race us.
    counted = await agent.utils.bucket.update(lambda b: {"attempts": b.get("attempts", 0) + 1})
    if not counted["success"]:
        raise RuntimeError(counted["error"])
    attempt = counted["bucket"]["attempts"]

    # A value that breaks the schema is refused whole; nothing is written.
    refused = await agent.utils.bucket.set({"stage": "unknown-stage"})
    assert not refused["success"]

    stored = await agent.utils.bucket.set({"stage": "done", "sessionCookie": f"sid-{attempt}"})
    if not stored["success"]:
        raise RuntimeError(stored["error"])
    print(f"signup attempt {attempt} on {agent.device_id}: stage {stored['bucket']['stage']}")
