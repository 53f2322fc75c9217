"""Slow clients against ``serve``: how many connections that trickle their headers (one
byte every few seconds) or send nothing are still open after a while (#11 item 11).

    python bench/slow_clients.py [--connections 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import socket
import time

import httpx
from serving import served

ADMIN = "bench-admin-token-0123456789abcdef"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    with served(ADMIN) as server:
        host, port = "127.0.0.1", server.port
        socks = [socket.create_connection((host, port)) for _ in range(args.connections)]
        for n, sock in enumerate(socks):
            sock.setblocking(False)
            if n % 2:  # half trickle their headers, half send nothing at all
                sock.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        open_ = set(range(len(socks)))
        while time.monotonic() - started < args.seconds and open_:
            for n in list(open_):
                try:
                    if socks[n].recv(4096) == b"":
                        open_.discard(n)
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    open_.discard(n)
                    continue
                if n % 2:
                    try:
                        socks[n].send(b"X")
                    except OSError:
                        open_.discard(n)
            time.sleep(2)
        healthy = httpx.get(f"{server.url}/healthz").status_code
        for sock in socks:
            sock.close()
    print(f"slow connections:          {args.connections}")
    print(f"still open after {args.seconds:.0f} s:      {len(open_)}")
    print(f"/healthz meanwhile:        {healthy}")


if __name__ == "__main__":
    main()
