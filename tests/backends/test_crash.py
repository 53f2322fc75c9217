"""Crash: SIGKILL `devicebucket serve` in the middle of a write storm, five times over.

Every acknowledged write must be there afterwards, SQLite's integrity check must pass, and
each bucket's history must count its versions without a gap.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from devicebucket import SQLiteStore

from ..servers import ADMIN, ServeProcess, free_port

CLIENTS = 8
DEVICES = 4
ROUNDS = 5


class Storm:
    """CLIENTS threads writing distinct keys as fast as the server answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.acked: list[list[tuple[str, str]]] = [[] for _ in range(CLIENTS)]
        self.sent = 0
        self.stop = threading.Event()
        self.progress = threading.Condition()
        self.threads = [threading.Thread(target=self.write, args=(i,)) for i in range(CLIENTS)]

    def count(self) -> int:
        return sum(len(a) for a in self.acked)

    def write(self, client: int) -> None:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as http:
            n = 0
            while not self.stop.is_set():
                device, key = f"storm-{n % DEVICES}", f"c{client}-{n}"
                n += 1
                try:
                    response = http.patch(f"/v1/devices/{device}/bucket", json={key: n})
                except httpx.TransportError:
                    self.stop.wait(0.01)  # the server is down: back off until it is back
                    continue
                if response.status_code == 200:
                    self.acked[client].append((device, key))
                    with self.progress:
                        self.progress.notify_all()

    def wait_for(self, total: int) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.count() >= total, timeout=120)


@pytest.mark.slow
def test_sigkill_during_a_write_storm_loses_no_acknowledged_write(tmp_path: Path) -> None:
    db = tmp_path / "storm.db"
    port = free_port()
    rng = random.Random(20261124)
    storm = Storm(f"http://127.0.0.1:{port}")
    for thread in storm.threads:
        thread.start()
    kills = []
    try:
        for _ in range(ROUNDS):
            server = ServeProcess(f"sqlite:///{db}", port=port)
            server.wait_ready()
            # A random moment: after a random number of further acknowledged writes.
            storm.wait_for(storm.count() + rng.randrange(200, 1500))
            server.process.kill()
            server.process.wait(timeout=30)
            server.log_file.close()
            kills.append(storm.count())
    finally:
        storm.stop.set()
        for thread in storm.threads:
            thread.join(timeout=60)

    acked = [pair for client in storm.acked for pair in client]

    async def check() -> tuple[int, list[str]]:
        problems: list[str] = []
        found = 0
        async with SQLiteStore(db) as store:
            buckets = {d: (await store.get(d)) for d in {d for d, _ in acked}}
            found = sum(key in buckets[device].data for device, key in acked)
            for device, snapshot in buckets.items():
                versions = [c.version for c in await store.history(device, limit=10_000)]
                if versions != list(range(snapshot.version, 0, -1)):
                    problems.append(f"{device}: history {versions[:5]}… at {snapshot.version}")
        return found, problems

    found, problems = asyncio.run(check())
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    print(
        f"\n{ROUNDS} SIGKILLs after {kills} acknowledged writes;"
        f" acknowledged {len(acked)}, found {found}"
    )
    assert found == len(acked)
    assert problems == []
