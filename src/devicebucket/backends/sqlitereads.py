"""Bucket rows served from memory while the SQLite file has not changed since they were read.

A read transaction costs two ``fcntl`` calls on the shared-memory file (a read lock and its
release) besides the statement: most of a primary-key lookup. Yet whether anything was
committed since a row was read can be told without them. In WAL mode every commit
publishes a new *WAL-index header* at the start of the ``-shm`` file: 48 bytes holding a
change counter, the last valid frame, the WAL's salts and checksums
(https://www.sqlite.org/walformat.html, "The WAL-Index Header"). SQLite writes it twice,
the second copy first, and reads the first copy first: a reader that finds them equal has
a header no commit was halfway through, and equal headers are the same committed state.
SQLite keeps its own page cache across transactions by this comparison.

So a row read is kept with the header read just before its statement, if the header read
just after is the same (nothing was published meanwhile: the row is of that state), and
a later read of the same bucket under the same header is answered from memory, for the
cost of comparing the header's bytes. Any commit, by any connection, thread or process,
changes the header, and with it every row kept. No lock is taken, and no row can be
stale: the header is compared on every read, as SQLite compares it at the start of each
read transaction. Rows are kept only while the file is quiet (the header the same as at
the read before), so that a read between every two commits costs little more than before.

The header is read through a mapping of the ``-shm`` file's first bytes. Two rules keep it
safe, both from how SQLite shares that file between processes:

* A store reads it only after a read of its own through SQLite, and while its connections
  are open: SQLite truncates the file only when no process has a connection to it, and an
  access past the end of a mapped file would kill the process (``SIGBUS``).
* The mapping and its descriptors are never closed: closing any descriptor of a file
  releases every POSIX lock the process holds on it, SQLite's included
  (https://www.sqlite.org/howtocorrupt.html, 2.2), until the file is deleted. They are
  made once per file and process (``MappedFiles``), for at most ``MAX_FILES`` files (two
  descriptors each); a store of any file past those reads through SQLite only.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Final
from weakref import WeakSet

__all__ = ["MappedFiles", "ReadCache"]

#: The bytes of one copy of the WAL-index header; the file begins with two.
_HEADER: Final = 48
_BOTH: Final = 2 * _HEADER
#: Where the header's ``isInit`` byte is: 0 while no connection has built the index.
_IS_INIT: Final = 12
#: What the rows kept may hold, counting each row's text and ``ROW_OVERHEAD`` for the rest;
#: past it, they are all let go (a store read evenly across more than this gains little).
MAX_BYTES: Final = 16 * 1024 * 1024
ROW_OVERHEAD: Final = 256
#: The most ``-shm`` files a process maps (see the module's docstring).
MAX_FILES: Final = 64


class ReadCache:
    """One store's bucket rows, each with the WAL-index header it was read under. Shared by
    the store's threads: an entry is checked against the header on its own, never trusted
    because of another (their total size is counted loosely across threads)."""

    __slots__ = (
        "__weakref__",
        "files",
        "last",
        "map",
        "mapped",
        "max_bytes",
        "rows",
        "shm",
        "size",
    )

    def __init__(
        self, path: Path, max_bytes: int = MAX_BYTES, files: MappedFiles | None = None
    ) -> None:
        """``files``: where the ``-shm`` file is mapped (by default, the process's)."""
        self.shm = path.with_name(path.name + "-shm")
        self.max_bytes = max_bytes
        self.files = FILES if files is None else files
        self.map: mmap.mmap | None = None
        self.mapped = False  # whether the mapping was asked for (once, see ``fetch``)
        self.last = b""  # the header's copies as the last read found them
        # (device, job): (the header's two copies, the row or None, the size counted for it)
        self.rows: dict[tuple[str, str], tuple[bytes, Any, int]] = {}
        self.size = 0
        _caches.add(self)

    def fetch(self, conn: sqlite3.Connection, query: str, key: tuple[str, str]) -> Any:
        """The row of ``query`` for ``key`` (a bucket's, its text first; None if there is
        none): from memory if it was read under the header there is now, else from
        ``conn``. A row is kept only while the file is quiet: if the header was whole and
        the same at the store's read before this one (a file written between every two
        reads would only fill memory) and no commit was published while it was read.
        Written out: every line is paid by each read that misses."""
        shared = self.map
        if shared is None:
            row = conn.execute(query, key).fetchone()
            if not self.mapped:  # after a read through SQLite: see the module's docstring
                self.mapped = True
                self.map = self.files.map(self.shm)
            return row
        try:
            before = shared[:_BOTH]  # both copies: the one SQLite writes second comes first
        except ValueError:  # closed: its file was deleted under an open store
            return conn.execute(query, key).fetchone()
        if before != self.last:  # a commit since the last read (by any thread: a hint)
            self.last = before
            return conn.execute(query, key).fetchone()
        kept = self.rows.get(key)
        if kept is not None and kept[0] == before:
            return kept[1]  # kept under a whole header: so this one is, and the same
        row = conn.execute(query, key).fetchone()
        if before[:_HEADER] == before[_HEADER:] and before[_IS_INIT]:
            try:
                published = shared[:_BOTH] != before
            except ValueError:
                published = True
            if not published:
                size = ROW_OVERHEAD + (0 if row is None else len(row[0]))
                if kept is not None:
                    self.size -= kept[2]
                if self.size + size > self.max_bytes:
                    self.rows.clear()
                    self.size = 0
                self.rows[key] = (before, row, size)
                self.size += size
        return row

    def close(self) -> None:
        """Let the rows go, and the mapping (which stays, for the process)."""
        self.rows.clear()
        self.size = 0
        self.map = None
        self.mapped = False
        self.last = b""


class MappedFiles:
    """The ``-shm`` files a process has mapped, by device and inode, each with its
    descriptor: never closed (see the module's docstring)."""

    def __init__(self, max_files: int = MAX_FILES) -> None:
        self.max_files = max_files
        self._files: dict[tuple[int, int], tuple[int, mmap.mmap | None]] = {}
        self._spare: list[int] = []  # descriptors opened in a race with a replaced file
        self._lock = threading.Lock()

    def map(self, shm: Path) -> mmap.mmap | None:
        """The first bytes of ``shm``, mapped, or None (no such file, too short, or past
        ``max_files``)."""
        try:
            found = os.stat(shm)
        except OSError:
            return None  # not in WAL mode yet: read through SQLite
        key = (found.st_dev, found.st_ino)
        with self._lock:
            known = self._files.get(key)
            if known is None:
                self._prune()
                if len(self._files) >= self.max_files:
                    return None
                try:
                    fd = os.open(shm, os.O_RDONLY)  # never closed: see the module's docstring
                except OSError:
                    return None
                opened = os.fstat(fd)  # the file may have been replaced since: this one
                key = (opened.st_dev, opened.st_ino)
                known = self._files.get(key)
                if known is None:
                    known = self._files[key] = (fd, None)
                else:  # already mapped: this descriptor is kept aside, never closed either
                    self._spare.append(fd)
            fd, shared = known
            if shared is None and os.fstat(fd).st_size >= _BOTH:
                shared = mmap.mmap(fd, _BOTH, access=mmap.ACCESS_READ)
                self._files[key] = (fd, shared)
            return shared

    def _prune(self) -> None:
        """Close the mappings of files that are gone. SQLite deletes the ``-shm`` file only
        once it has the database to itself, on closing its last connection: no connection
        anywhere holds a lock on a deleted one, so nothing is released by closing it."""
        for key, (fd, shared) in list(self._files.items()):
            if os.fstat(fd).st_nlink == 0:
                del self._files[key]
                if shared is not None:
                    shared.close()
                os.close(fd)


#: The process's.
FILES: Final = MappedFiles()


# A forked child trusts nothing its parent's stores kept: each reads through a connection of
# its own first, which keeps the file from being truncated while the child reads it.
_caches: WeakSet[ReadCache] = WeakSet()


def _forked() -> None:
    for cache in list(_caches):
        cache.close()


if hasattr(os, "register_at_fork"):  # POSIX; elsewhere a process never forks
    os.register_at_fork(after_in_child=_forked)
