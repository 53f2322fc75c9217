"""Where a durable write's history cost goes: seven table layouts in bare sqlite3, same run.

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
  bucket every 20th version (what the store does since schema 8, ``core.history``);
* ``batched``: ``deltas``' entries, but one row a transaction holding all of its entries
  (a JSON array), each bucket's newest entry named by its row's id and its place there;
* ``hybrid``: ``batched`` for a transaction of several writes; a lone write appends its
  entry to the bucket row's text of entries instead (no page of the history's in its
  commit), which moves into a batch row once 16 are there or its bucket is next written
  in a transaction of several.

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
    "batched": ["CREATE TABLE history (id INTEGER PRIMARY KEY, entries TEXT)"],
    "hybrid": ["CREATE TABLE history (id INTEGER PRIMARY KEY, entries TEXT)"],
}
#: Where an entry is: its batch row's id times this, plus its place in the row.
PLACES = 1024


class Batch:
    """A transaction's entries for the ``batched`` and ``hybrid`` layouts, one row at the
    commit; the id that row will have (the table's largest, plus one, kept here)."""

    def __init__(self) -> None:
        self.last_id = 0
        self.entries: list[str] = []
        self.count = 0

    def add(self, entry: str, count: int = 1) -> int:
        """Add ``count`` entries (their JSON texts, comma-separated); where the last is."""
        self.entries.append(entry)
        self.count += count
        return (self.last_id + 1) * PLACES + self.count - 1

    def insert(self, conn: sqlite3.Connection) -> None:
        if self.entries:
            self.last_id += 1
            conn.execute(
                "INSERT INTO history VALUES (?, ?)",
                (self.last_id, "[" + ",".join(self.entries) + "]"),
            )
            self.entries.clear()
            self.count = 0


def open_layout(path: Path, layout: str, devices: int) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE buckets (device TEXT, job TEXT, data TEXT, version INT, head INT,"
        " tail TEXT, tail_count INT NOT NULL DEFAULT 0, PRIMARY KEY (device, job))"
    )
    for statement in LAYOUTS[layout]:
        conn.execute(statement)
    conn.execute("BEGIN")
    text = json.dumps(PAYLOAD)
    for d in range(devices):
        conn.execute(
            "INSERT INTO buckets VALUES (?, '', ?, 1, NULL, ?, 0)",
            (f"d{d:05d}", text, None if layout == "hybrid" else "[]"),
        )
    conn.execute("COMMIT")
    return conn


def write(
    conn: sqlite3.Connection, layout: str, device: str, n: int, batch: Batch, alone: bool
) -> None:
    """One read-merge-write of ``{"counter": n}`` and its history, inside a transaction
    (``alone`` if it is the transaction's only write)."""
    row = conn.execute(
        "SELECT data, version, head, tail, tail_count FROM buckets WHERE device = ? AND job = ''",
        (device,),
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
    elif layout in ("batched", "hybrid"):
        full = text if version % 20 == 0 else None
        # The entry as JSON, its texts (which are JSON already) as they are, not quoted.
        entry = (
            f'["{device}","",{version},{now!r},"local via library",{changes},'
            f'{full or "null"},{{"counter":{n}}},{row[2] or "null"}]'
        )
        if layout == "hybrid" and alone and row[4] + 1 < TAIL:
            # A lone write keeps its entry in the bucket row.
            conn.execute(
                "UPDATE buckets SET data = ?, version = ?, tail = COALESCE(tail || ',', '') || ?,"
                " tail_count = tail_count + 1 WHERE device = ? AND job = ''",
                (text, version, entry, device),
            )
        else:
            # A batch's entry, or a lone one with the bucket row's entries full: the entries
            # the bucket row holds (hybrid) come along into the transaction's row.
            if row[3]:
                batch.add(row[3], row[4])
            head = batch.add(entry)
            conn.execute(
                "UPDATE buckets SET data = ?, version = ?, head = ?, tail = NULL, tail_count = 0"
                " WHERE device = ? AND job = ''",
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


def block(
    conn: sqlite3.Connection, layout: str, devices: int, batch: int, n: int, rows: Batch
) -> float:
    """100 writes to random devices, ``batch`` to a transaction; the seconds they took."""
    names = [f"d{random.randrange(devices):05d}" for _ in range(100)]
    start = time.perf_counter()
    for first in range(0, 100, batch):
        conn.execute("BEGIN IMMEDIATE")
        for i, device in enumerate(names[first : first + batch]):
            write(conn, layout, device, n + first + i, rows, batch == 1)
        rows.insert(conn)
        conn.execute("COMMIT")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=30, help="blocks of 100 writes per cell")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devicebucket-layouts-") as tmp:
        cells = [(name, batch) for name in LAYOUTS for batch in (1, 64)]
        # A file a cell: one writer's and batches' steady states, each as in its own run
        # (the ``hybrid`` batches meet only the entries their own lone writes left).
        conns = {
            (name, batch): open_layout(Path(tmp) / f"{name}-{batch}.db", name, args.devices)
            for name, batch in cells
        }
        batches = {cell: Batch() for cell in cells}
        seconds: dict[tuple[str, int], float] = dict.fromkeys(cells, 0.0)
        for b in range(args.blocks):
            order = list(cells)
            random.shuffle(order)
            for name, batch in order:
                seconds[name, batch] += block(
                    conns[name, batch], name, args.devices, batch, b * 100, batches[name, batch]
                )
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
