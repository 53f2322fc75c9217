"""A write is acknowledged only once it is durable: SIGKILL loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing

from devicebucket import open_store
from devicebucket.core.urls import sqlite_path

from ..conftest import ROOT


def test_sigkill_after_acknowledged_writes_loses_nothing(db_url: str) -> None:
    writer = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "workers.py"), "acknowledge", db_url, "pixel"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    acknowledged: list[str] = []
    for line in writer.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 300:
            writer.send_signal(signal.SIGKILL)
            break
    rest, _ = writer.communicate(timeout=60)
    # Lines already printed when the kill landed were acknowledged too.
    acknowledged += [line for line in rest.splitlines() if line]
    assert writer.returncode == -signal.SIGKILL

    async def stored_keys() -> set[str]:
        store = open_store(db_url)
        snapshot = await store.get("pixel")
        await store.close()
        return set(snapshot.data)

    keys = asyncio.run(stored_keys())
    assert set(acknowledged) <= keys
    assert len(acknowledged) >= 300
    with closing(sqlite3.connect(sqlite_path(db_url))) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
