"""Where a durable write's history cost goes: nine table layouts in bare sqlite3, same run.

    .venv/bin/python bench/history_layouts.py [--devices 1000] [--blocks 30] [--reads]

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
  in a transaction of several;
* ``packed``: ``batched``, its row's entries found without parsing the row: where each
  entry's text begins, and where the bucket's entry before it is, at fixed widths;
* ``array``: one row a transaction holding its entries' values one after another in one
  JSON array, made by one ``orjson.dumps`` of the transaction's list of values (each
  entry's texts as JSON strings): the row a scratch patch of the store measured.

It prints writes/s and the ratio to ``none`` for each. With ``--reads`` it then times what a
page of a bucket's history (its newest 20 entries) costs each layout to read, on 100 buckets
written 60 times each (a third of the writes alone), and checks that every page read holds
the bucket's versions, newest first. The layouts are sketches of storage, not devicebucket's
code: they show what each costs before the store is changed.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Final

import orjson

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
    "packed": [
        "CREATE TABLE history (id INTEGER PRIMARY KEY, prevs BLOB, offsets BLOB, entries BLOB)"
    ],
    "array": ["CREATE TABLE history (id INTEGER PRIMARY KEY, entries TEXT)"],
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

    def add(self, entry: str) -> int:
        """Add an entry (its JSON text); where it is."""
        self.entries.append(entry)
        return self.placed()

    def placed(self) -> int:
        """Count the entry just added; where it is."""
        self.count += 1
        return (self.last_id + 1) * PLACES + self.count - 1

    def text(self) -> str:
        """The row's text: its entries in a JSON array."""
        return "[" + ",".join(self.entries) + "]"

    def clear(self) -> None:
        self.entries.clear()
        self.count = 0

    def insert(self, conn: sqlite3.Connection) -> None:
        if self.count:
            self.last_id += 1
            conn.execute("INSERT INTO history VALUES (?, ?)", (self.last_id, self.text()))
            self.clear()


class Pack(Batch):
    """A transaction's entries for the ``packed`` layout: ``batched``'s row, with each entry
    found without parsing the rest: the places of the entries before them (20 digits each)
    and where each entry's text begins in the row's (10 digits each) at fixed widths, so
    that a ``substr`` of a blob finds either."""

    def __init__(self) -> None:
        super().__init__()
        self.prevs: list[int | None] = []

    def add_entry(self, entry: str, prev: int | None) -> int:
        """Add an entry (its JSON text) and where the bucket's entry before it is."""
        self.prevs.append(prev)
        return self.add(entry)

    def insert(self, conn: sqlite3.Connection) -> None:
        if not self.entries:
            return
        texts = [e.encode() for e in self.entries]
        starts, at = [], 1
        for text in texts:
            starts.append(at)
            at += len(text)
        starts.append(at)
        self.last_id += 1
        conn.execute(
            "INSERT INTO history VALUES (?, ?, ?, ?)",
            (
                self.last_id,
                b"".join(b"%020d" % (-1 if p is None else p) for p in self.prevs),
                b"".join(b"%010d" % start for start in starts),
                b"".join(texts),
            ),
        )
        self.clear()

    def clear(self) -> None:
        super().clear()
        self.prevs.clear()


class Values(Batch):
    """A transaction's entries for the ``array`` layout: their values one after another
    (``FIELDS`` an entry), one ``orjson.dumps`` at the commit."""

    FIELDS: Final = 9  # device, job, version, at, actor, changes, data, delta, prev

    def __init__(self) -> None:
        super().__init__()
        self.values: list[object] = []

    def add_values(self, *values: object) -> int:
        """Add an entry's ``FIELDS`` values; where it is."""
        self.values += values
        return self.placed()

    def text(self) -> str:
        return orjson.dumps(self.values).decode()

    def clear(self) -> None:
        super().clear()
        self.values.clear()


def new_batch(layout: str) -> Batch:
    if layout == "array":
        return Values()
    return Pack() if layout == "packed" else Batch()


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


_SET_HEAD: Final = (
    "UPDATE buckets SET data = ?, version = ?, head = ? WHERE device = ? AND job = ''"
)


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
        conn.execute(_SET_HEAD, (text, version, head, device))
    elif layout == "deltas":
        full = text if version % 20 == 0 else None
        head = conn.execute(
            "INSERT INTO history (device, job, version, at, actor, changes, data, delta, prev)"
            " VALUES (?, '', ?, ?, 'local via library', ?, ?, ?, ?)",
            (device, version, now, changes, full, json.dumps({"counter": n}), row[2]),
        ).lastrowid
        conn.execute(_SET_HEAD, (text, version, head, device))
    elif isinstance(batch, Values):
        full = text if version % 20 == 0 else None
        delta = json.dumps({"counter": n})
        head = batch.add_values(
            device, "", version, now, "local via library", changes, full, delta, row[2]
        )
        conn.execute(_SET_HEAD, (text, version, head, device))
    elif layout in ("batched", "hybrid", "packed"):
        full = text if version % 20 == 0 else None
        # The entry as JSON, its texts (which are JSON already) as they are, not quoted.
        fields = (
            f'"{device}","",{version},{now!r},"local via library",{changes},'
            f'{full or "null"},{{"counter":{n}}}'
        )
        if isinstance(batch, Pack):  # where the entry before it is: beside the row's texts
            head = batch.add_entry(f"[{fields}]", row[2])
            conn.execute(_SET_HEAD, (text, version, head, device))
            return

        def entry(prev: int | None) -> str:
            """The entry with ``prev``, where the bucket's entry before it is."""
            return f"[{fields},{'null' if prev is None else prev}]"

        if layout == "hybrid" and alone and row[4] + 1 < TAIL:
            # A lone write keeps its entry in the bucket row (the entries there all follow
            # the bucket's ``head``).
            conn.execute(
                "UPDATE buckets SET data = ?, version = ?, tail = COALESCE(tail || ',', '') || ?,"
                " tail_count = tail_count + 1 WHERE device = ? AND job = ''",
                (text, version, entry(row[2]), device),
            )
        else:
            # A batch's entry, or a lone one with the bucket row's entries full: the entries
            # the bucket row holds (hybrid) come along into the transaction's row, chained
            # there, oldest first, below this one.
            prev = row[2]
            if layout == "hybrid" and row[3]:
                moved = json.loads(f"[{row[3]}]")
                for e in moved:
                    e[8] = prev
                    prev = batch.add(json.dumps(e, separators=(",", ":")))
            head = batch.add(entry(prev))
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


#: The newest entries a page of a bucket's history shows (``--reads``).
PAGE = 20


def newest(conn: sqlite3.Connection, layout: str, device: str) -> list[tuple[object, ...]]:
    """The bucket's newest ``PAGE`` entries, newest first: (version, at, actor, changes),
    read as each layout would: a range of the index, a walk down the chain of rows, or a
    walk down the entries of the rows that hold a batch's (each step SQLite's ``json_each``
    of its row, which parses the row's whole text), after the bucket row's own entries."""
    if layout in ("indexed", "tail"):
        rows = conn.execute(
            "SELECT version, at, actor, changes FROM history WHERE device = ? AND job = ''"
            " ORDER BY version DESC LIMIT ?",
            (device, PAGE),
        ).fetchall()
        if layout == "indexed":
            return rows
        tail = json.loads(conn.execute(_TAIL, (device,)).fetchone()[0])
        mine = [(v, at, actor, ch) for v, at, actor, ch, _ in reversed(tail)]
        return (mine + rows)[:PAGE]
    if layout in ("chained", "deltas"):
        return conn.execute(
            "WITH RECURSIVE chain(id, n) AS (SELECT head, 1 FROM buckets WHERE device = ?"
            " AND job = '' UNION ALL SELECT h.prev, c.n + 1 FROM chain c JOIN history h"
            " ON h.id = c.id WHERE c.n < ?) SELECT h.version, h.at, h.actor, h.changes"
            " FROM chain c JOIN history h ON h.id = c.id ORDER BY c.n",
            (device, PAGE),
        ).fetchall()
    if layout == "array":
        at = f"(c.place % {PLACES}) * {Values.FIELDS}"
        return conn.execute(
            "WITH RECURSIVE chain(place, n) AS (SELECT head, 0 FROM buckets WHERE device = ?"
            f" AND job = '' UNION ALL SELECT h.entries ->> ({at} + 8), c.n + 1 FROM chain c"
            f" JOIN history h ON h.id = c.place / {PLACES} WHERE c.n + 1 < ?)"
            f" SELECT h.entries ->> ({at} + 2), h.entries ->> ({at} + 3),"
            f" h.entries ->> ({at} + 4), h.entries ->> ({at} + 5) FROM chain c"
            f" JOIN history h ON h.id = c.place / {PLACES} ORDER BY c.n",
            (device, PAGE),
        ).fetchall()
    if layout == "packed":
        slot = f"(c.place % {PLACES})"
        begins = f"CAST(substr(h.offsets, {slot} * 10 + 1, 10) AS INTEGER)"
        ends = f"CAST(substr(h.offsets, {slot} * 10 + 11, 10) AS INTEGER)"
        return conn.execute(
            "WITH RECURSIVE chain(place, n) AS (SELECT head, 0 FROM buckets WHERE device = ?"
            f" AND job = '' UNION ALL SELECT CAST(substr(h.prevs, {slot} * 20 + 1, 20) AS"
            f" INTEGER), c.n + 1 FROM chain c JOIN history h ON h.id = c.place / {PLACES}"
            " WHERE c.n + 1 < ? AND c.place >= 0), entries(n, e) AS (SELECT c.n,"
            f" CAST(substr(h.entries, {begins}, {ends} - {begins}) AS TEXT) FROM chain c"
            f" JOIN history h ON h.id = c.place / {PLACES} WHERE c.place >= 0)"
            " SELECT e ->> 2, e ->> 3, e ->> 4, e -> 5 FROM entries ORDER BY n",
            (device, PAGE),
        ).fetchall()
    mine = []
    if layout == "hybrid":
        tail = conn.execute(_TAIL, (device,)).fetchone()[0]
        entries = json.loads(f"[{tail}]") if tail else []
        mine = [(e[2], e[3], e[4], json.dumps(e[5])) for e in reversed(entries)]
    rows = conn.execute(
        "WITH RECURSIVE chain(place, n, entry) AS (SELECT head, 0, NULL FROM buckets"
        " WHERE device = ? AND job = '' UNION ALL SELECT j.value ->> 8, c.n + 1, j.value"
        f" FROM chain c JOIN history h ON h.id = c.place / {PLACES} JOIN json_each(h.entries) j"
        f" ON j.key = c.place % {PLACES} WHERE c.n < ?)"
        " SELECT entry ->> 2, entry ->> 3, entry ->> 4, entry -> 5"
        " FROM chain WHERE n > 0 ORDER BY n",
        (device, PAGE - len(mine)),
    ).fetchall()
    return (mine + rows)[:PAGE]


_TAIL: Final = "SELECT tail FROM buckets WHERE device = ? AND job = ''"


def reads(tmp: Path, devices: int, rounds: int) -> dict[str, float]:
    """Per layout: ``devices`` buckets written 60 times each, a third of the writes alone and
    the rest in batches of 64; then the µs to read the newest ``PAGE`` entries of a bucket
    (every bucket, ``rounds`` times), each read checked against the bucket's versions."""
    micros: dict[str, float] = {}
    for layout in LAYOUTS:
        if layout == "none":
            continue
        conn = open_layout(tmp / f"reads-{layout}.db", layout, devices)
        batch = new_batch(layout)
        for b in range(devices * 60 // 100):
            block(conn, layout, devices, 1 if b % 3 == 0 else 64, b * 100, batch)
        names = [f"d{d:05d}" for d in range(devices)]
        start = time.perf_counter()
        for _ in range(rounds):
            for device in names:
                newest(conn, layout, device)
        micros[layout] = (time.perf_counter() - start) / (rounds * devices) * 1e6
        for device in names:  # the reads were right: the bucket's versions, newest first
            version = conn.execute(_VERSION, (device,)).fetchone()[0]
            got = [row[0] for row in newest(conn, layout, device)]
            want = list(range(version, max(version - PAGE, 1), -1))
            assert got == want, (layout, device, got, want)
        conn.close()
    return micros


_VERSION: Final = "SELECT version FROM buckets WHERE device = ? AND job = ''"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=30, help="blocks of 100 writes per cell")
    parser.add_argument(
        "--reads", action="store_true", help="then time a page of a bucket's history in each"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devicebucket-layouts-") as tmp:
        cells = [(name, batch) for name in LAYOUTS for batch in (1, 64)]
        # A file a cell: one writer's and batches' steady states, each as in its own run
        # (the ``hybrid`` batches meet only the entries their own lone writes left).
        conns = {
            (name, batch): open_layout(Path(tmp) / f"{name}-{batch}.db", name, args.devices)
            for name, batch in cells
        }
        batches = {cell: new_batch(cell[0]) for cell in cells}
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
        micros = reads(Path(tmp), 100, 20) if args.reads else {}
    writes: int = args.blocks * 100

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
    if micros:
        print()
        print(f"A page of a bucket's history (its newest {PAGE} entries), 100 buckets written 60")
        print("times each, a third of the writes alone:")
        print()
        print("| layout | µs a page |")
        print("|---|---:|")
        for name, value in micros.items():
            print(f"| {name} | {value:,.0f} |")


if __name__ == "__main__":
    main()
