"""Two devicebucket servers side by side, in turns under wrk: what a change to the server gives.

    .venv/bin/python bench/server_pairs.py --a-src /tmp/before/src            # before, after
    .venv/bin/python bench/server_pairs.py --b-prefix eatmydata               # fsync off in B
    .venv/bin/python bench/server_pairs.py --method GET --rounds 4

Needs ``wrk`` (Debian package ``wrk``). Servers A and B are each ``devicebucket serve`` on a
fresh SQLite file with ``--devices`` ~1 KB buckets, run at once. Each takes its code from
``--a-src`` / ``--b-src`` (a ``src`` folder put first on ``PYTHONPATH``, such as a second
worktree's; default: the installed package) and runs under ``--a-prefix`` / ``--b-prefix``
(a command, such as ``eatmydata``). Each round runs ``wrk -t1 -c64`` for ``--seconds`` on A,
then on B, with ``bench_http.py``'s requests, and prints both rates and B / A. Taking turns
in short runs, both servers see the same machine, whatever its disk and CPU do meanwhile.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

from bench_http import TOKEN, fill, wrk
from serving import Served, served


def serve_one(stack: ExitStack, src: str | None, prefix: str, devices: int) -> Served:
    """A server with ``devices`` buckets written, its code from ``src``, under ``prefix``."""
    env = {} if src is None else {"PYTHONPATH": str(Path(src).resolve())}
    server = stack.enter_context(served(TOKEN, prefix=shlex.split(prefix), **env))
    fill(server.url, devices)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--a-src", help="server A's src folder (default: the installed package)")
    parser.add_argument("--b-src", help="server B's src folder (default: the installed package)")
    parser.add_argument("--a-prefix", default="", help="a command to run server A under")
    parser.add_argument("--b-prefix", default="", help="a command to run server B under")
    parser.add_argument("--method", choices=("PATCH", "GET"), default="PATCH")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="devicebucket-pairs-") as tmp:
        a = serve_one(stack, args.a_src, args.a_prefix, args.devices)
        b = serve_one(stack, args.b_src, args.b_prefix, args.devices)
        print(f"wrk -t1 -c{args.connections} -d{args.seconds}s, {args.method}, A then B\n")
        print("| round | A req/s | B req/s | B / A |")
        print("|---:|---:|---:|---:|")
        for n in range(1, args.rounds + 1):
            rates = [
                wrk(s.url, args.method, args.seconds, args.connections, args.devices, Path(tmp))[
                    "rps"
                ]
                for s in (a, b)
            ]
            print(f"| {n} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[1] / rates[0]:.2f}× |")


if __name__ == "__main__":
    main()
