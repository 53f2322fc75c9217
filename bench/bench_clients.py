"""The two HTTP clients side by side in one run, against one ``devicebucket serve``: the
Python HTTP store (``HTTPStore.get`` / ``merge``) and the JavaScript client
(``agent.utils.deviceBucket.get`` / ``set``), each with the same ~1 KB bucket, alternating.

    .venv/bin/python bench/bench_clients.py [--seconds 3] [--rounds 3] [--concurrency 1,16]

Needs ``node`` (20 or newer). Every write is durable on the server before it answers.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from noderun import node_rates  # noqa: E402
from serving import served  # noqa: E402

from devicebucket import HTTPStore  # noqa: E402

TOKEN = "bench-admin-token-0123456789abcdef"
PAYLOAD = {f"key{i}": "v" * 40 for i in range(20)}


async def python_client(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    store = HTTPStore(url, token=TOKEN)

    async def measure(call: str) -> float:
        deadline = time.perf_counter() + seconds
        done = 0

        async def lane(i: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                if call == "set":
                    await store.merge(f"py-{i}", {**PAYLOAD, "counter": done})
                else:
                    await store.get(f"py-{i}")
                done += 1

        await asyncio.gather(*(lane(i) for i in range(concurrency)))
        return done / seconds

    try:
        return {"set": await measure("set"), "get": await measure("get")}
    finally:
        await store.close()


def js_client(url: str, seconds: float, concurrency: int) -> dict[str, float]:
    return node_rates(HERE / "js_client.mjs", url, TOKEN, seconds, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", default="1,16")
    args = parser.parse_args()
    if shutil.which("node") is None:
        print("skipped: node is not installed (the JavaScript client needs Node.js 20+)")
        return
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"calls/s, {args.seconds:g} s each, {args.rounds} rounds alternating, one server")
    print("| client | in flight | set | get |")
    print("|---|---|---|---|")
    with served(TOKEN) as server:
        for level in levels:
            rows: dict[str, list[dict[str, float]]] = {"Python HTTPStore": [], "JavaScript": []}
            for _ in range(args.rounds):
                rows["Python HTTPStore"].append(
                    asyncio.run(python_client(server.url, args.seconds, level))
                )
                rows["JavaScript"].append(js_client(server.url, args.seconds, level))
            for name, runs in rows.items():
                shown = [
                    "–".join(
                        f"{min(r[op] for r in runs):,.0f} {max(r[op] for r in runs):,.0f}".split()
                    )
                    for op in ("set", "get")
                ]
                print(f"| {name} | {level} | {shown[0]} | {shown[1]} |")


if __name__ == "__main__":
    main()
