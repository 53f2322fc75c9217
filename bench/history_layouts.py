"""Where a durable write's history cost goes: five table layouts in bare sqlite3, same run.

    .venv/bin/python bench/history_layouts.py [--devices 1000] [--blocks 30]

Each layout does the same read-merge-write of ~1 KB buckets (WAL, ``synchronous=FULL``), by
one writer (a transaction and an fsync per write) and in batches of 64 writes to random
devices (one transaction per batch, as group commit does). Blocks of 100 writes alternate
between the layouts, so all see the same disk. The layouts:

* ``none``: the bucket row only (bare sqlite3 without history: the target's reference);
* ``indexed``: today's history, a row per write with the bucket's contents, keyed
  ``PRIMARY KEY (device, job, version)`` (a rowid table and an index);
* ``chained``: the history row without the index: ``INTEGER PRIMARY KEY`` rows appended at
  the table's end, chained through ``prev``, the bucket row holding the newest's id;
* ``tail``: the bucket row carries its newest history entries (who, when, which keys, the
  old values of the keys changed) and moves them, 16 at a time, into the indexed table;
* ``deltas``: ``chained`` rows that keep the new values of the keys written, and the whole
  bucket every 20th version (what the store does since schema 8, ``core.history``).

It prints writes/s and the ratio to ``none`` for each. The layouts are sketches of storage,
not devicebucket's code: they show what each costs before the store is changed.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path

PAYLOAD = {f"key{i:02d}": "v" * 40 for i in range(20)}
TAIL = 16  # entries a bucket row carries before they move to the history table

LAYOUTS: dict[str, list[str]] = {
    "none": [],
    "indexed": [
        "CREATE TABLE history (device TEXT, job TEXT, version INT, at REAL, actor TEXT,"
        " changes TEXT, data TEXT, PRIMARY KEY (device, job, version))"
    ],
    "chained": [
        "CREATE TABLE history (id INTEGER PRIMARY KEY, device TEXT, job TEXT, version INT,"
        " at REAL, actor TEXT, changes TEXT, data TEXT, prev INT)"
    ],
    "deltas": [
        "CREATE TABLE history (id INTEGER PRIMARY KEY, device TEXT, job TEXT, version INT,"
        " at REAL, actor TEXT, changes TEXT, data TEXT, delta TEXT, prev INT)"
    ],
    "tail": [
        "CREATE TABLE history (device TEXT, job TEXT, version INT, at REAL, actor TEXT,"
        " changes TEXT, data TEXT, PRIMARY KEY (device, job, version))"
    ],
}


def open_layout(path: Path, layout: str, devices: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE buckets (device TEXT, job TEXT, data TEXT, version INT, head INT,"
        " tail TEXT, PRIMARY KEY (device, job))"
    )
    for statement in LAYOUTS[layout]:
        conn.execute(statement)
    conn.execute("BEGIN")
    text = json.dumps(PAYLOAD)
    for d in range(devices):
        conn.execute("INSERT INTO buckets VALUES (?, '', ?, 1, NULL, '[]')", (f"d{d:05d}", text))
    conn.execute("COMMIT")
    return conn


def write(conn: sqlite3.Connection, layout: str, device: str, n: int) -> None:
    """One read-merge-write of ``{"counter": n}`` and its history, inside a transaction."""
    row = conn.execute(
        "SELECT data, version, head, tail FROM buckets WHERE device = ? AND job = ''", (device,)
    ).fetchone()
    data = json.loads(row[0])
    old = data.get("counter")
    data["counter"] = n
    text, version, now = json.dumps(data), row[1] + 1, time.time()
    changes = '[[], ["counter"], []]'
    if layout == "none":
        conn.execute(
            "UPDATE buckets SET data = ?, version = ? WHERE device = ? AND job = ''",
            (text, version, device),
        )
    elif layout == "indexed":
        conn.execute(
            "INSERT INTO history VALUES (?, '', ?, ?, 'local via library', ?, ?)",
            (device, version, now, changes, text),
        )
        conn.execute(
            "UPDATE buckets SET data = ?, version = ? WHERE device = ? AND job = ''",
            (text, version, device),
        )
    elif layout == "chained":
        head = conn.execute(
            "INSERT INTO history (device, job, version, at, actor, changes, data, prev)"
            " VALUES (?, '', ?, ?, 'local via library', ?, ?, ?)",
            (device, version, now, changes, text, row[2]),
        ).lastrowid
        conn.execute(
            "UPDATE buckets SET data = ?, version = ?, head = ? WHERE device = ? AND job = ''",
            (text, version, head, device),
        )
    elif layout == "deltas":
        full = text if version % 20 == 0 else None
        head = conn.execute(
            "INSERT INTO history (device, job, version, at, actor, changes, data, delta, prev)"
            " VALUES (?, '', ?, ?, 'local via library', ?, ?, ?, ?)",
            (device, version, now, changes, full, json.dumps({"counter": n}), row[2]),
        ).lastrowid
        conn.execute(
            "UPDATE buckets SET data = ?, version = ?, head = ? WHERE device = ? AND job = ''",
            (text, version, head, device),
        )
    else:
        tail = json.loads(row[3])
        tail.append([version, now, "local via library", changes, {"counter": old}])
        if len(tail) >= TAIL:
            conn.executemany(
                "INSERT INTO history VALUES (?, '', ?, ?, ?, ?, ?)",
                [(device, v, at, actor, ch, json.dumps(undo)) for v, at, actor, ch, undo in tail],
            )
            tail = []
        conn.execute(
            "UPDATE buckets SET data = ?, version = ?, tail = ? WHERE device = ? AND job = ''",
            (text, version, json.dumps(tail), device),
        )


def block(conn: sqlite3.Connection, layout: str, devices: int, batch: int, n: int) -> float:
    """100 writes to random devices, ``batch`` to a transaction; the seconds they took."""
    names = [f"d{random.randrange(devices):05d}" for _ in range(100)]
    start = time.perf_counter()
    for first in range(0, 100, batch):
        conn.execute("BEGIN IMMEDIATE")
        for i, device in enumerate(names[first : first + batch]):
            write(conn, layout, device, n + first + i)
        conn.execute("COMMIT")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=30, help="blocks of 100 writes per cell")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devicebucket-layouts-") as tmp:
        conns = {
            name: open_layout(Path(tmp) / f"{name}.db", name, args.devices) for name in LAYOUTS
        }
        seconds = {(name, batch): 0.0 for name in LAYOUTS for batch in (1, 64)}
        for b in range(args.blocks):
            order: list[tuple[str, int]] = list(seconds)
            random.shuffle(order)
            for name, batch in order:
                seconds[name, batch] += block(conns[name], name, args.devices, batch, b * 100)
        for conn in conns.values():
            conn.close()
    writes = args.blocks * 100

    def rate(name: str, batch: int) -> float:
        return writes / seconds[name, batch]

    print(f"{args.devices:,} devices, ~1 KB buckets, {writes:,} writes per cell, synchronous=FULL")
    print()
    print("| layout | 1 writer writes/s | ratio to none | batches of 64 writes/s | ratio to none |")
    print("|---|---:|---:|---:|---:|")
    for name in LAYOUTS:
        one, many = rate(name, 1), rate(name, 64)
        print(
            f"| {name} | {one:,.0f} | {one / rate('none', 1):.2f}× | {many:,.0f}"
            f" | {many / rate('none', 64):.2f}× |"
        )


if __name__ == "__main__":
    main()
