"""No lost update: many processes, threads and coroutines writing one device."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

from devicebucket import Agent, SQLiteStore, open_store

from ..conftest import ROOT

WORKERS = str(ROOT / "tests" / "workers.py")


def run_processes(commands: list[list[str]]) -> None:
    processes = [
        subprocess.Popen([sys.executable, WORKERS, *command], stderr=subprocess.PIPE, text=True)
        for command in commands
    ]
    errors = [p.communicate(timeout=300)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * len(processes), errors


def test_eight_processes_of_distinct_keys_keep_all_4000(db_url: str) -> None:
    run_processes([["set-distinct", db_url, "pixel", f"p{p}", "500", "10"] for p in range(8)])

    async def check() -> None:
        store = open_store(db_url)
        snapshot = await store.get("pixel")
        await store.close()
        assert len(snapshot.data) == 4000
        assert snapshot.data == {f"p{p}-{i}": i for p in range(8) for i in range(500)}
        assert snapshot.version == 4000

    asyncio.run(check())


def test_fifty_update_increments_from_five_processes_count_exactly_fifty(db_url: str) -> None:
    run_processes([["increment", db_url, "pixel", "10"] for _ in range(5)])

    async def check() -> None:
        store = open_store(db_url)
        snapshot = await store.get("pixel")
        await store.close()
        assert snapshot.data == {"n": 50}
        assert snapshot.version == 50

    asyncio.run(check())


def test_threads_with_their_own_loops_share_one_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "threads.db")
    errors: list[BaseException] = []

    def writer(thread: int) -> None:
        async def run() -> None:
            bucket = Agent(store, "pixel").utils.deviceBucket
            results = await asyncio.gather(*(bucket.set({f"t{thread}-{i}": i}) for i in range(100)))
            assert all(r["success"] for r in results)
            for _ in range(20):
                await bucket.update(lambda b: {"n": b.get("n", 0) + 1})

        try:
            asyncio.run(run())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    async def check() -> None:
        snapshot = await store.get("pixel")
        await store.close()
        assert snapshot.data["n"] == 80
        assert len(snapshot.data) == 401

    asyncio.run(check())


def test_many_processes_opening_a_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    # Switching a new file to WAL is refused at once ("database is locked") to all but one
    # of several processes doing it together; the store retries it. The processes start
    # together at a barrier (a line on stdin), several rounds: before the fix, most rounds
    # had a failed open.
    for round_ in range(4):
        url = f"sqlite:///{tmp_path / f'new-{round_}.db'}"
        processes = [
            subprocess.Popen(
                [sys.executable, WORKERS, "set-on-go", url, "pixel", f"p{p}"],
                stdin=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for p in range(8)
        ]
        for process in processes:  # every process has imported everything and now waits
            assert process.stdin is not None
            process.stdin.write("go\n")
        for process in processes:
            assert process.stdin is not None
            process.stdin.flush()
        errors = [p.communicate(timeout=120)[1] for p in processes]
        assert [p.returncode for p in processes] == [0] * 8, errors
