"""The SQLite store's reads from memory (``sqlitereads``): served while nothing was
committed, never once anything was, by any connection, thread or process."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from devicebucket import SQLiteStore
from devicebucket.backends.sqlitereads import ROW_OVERHEAD, MappedFiles, ReadCache

SELECT = "SELECT data, version FROM buckets WHERE device = ? AND job = ?"


def opened(path: Path, files: MappedFiles | None = None) -> SQLiteStore:
    """A store whose ``-shm`` files are mapped apart from the process's (which earlier
    tests of this process may have used up)."""
    store = SQLiteStore(path)
    store._reads = ReadCache(path, files=files or MappedFiles())
    return store


async def read_twice(store: SQLiteStore, device: str) -> object:
    """The bucket's data, read twice (the second time through what the first kept, if
    anything), once both reads agree."""
    first, second = (await store.get(device)).data, (await store.get(device)).data
    assert first == second
    return first


def traced(store: SQLiteStore) -> list[str]:
    """The statements this thread's connection runs from now on."""
    statements: list[str] = []
    store._conn().set_trace_callback(statements.append)
    return statements


async def test_a_bucket_read_again_with_nothing_committed_is_not_read_from_the_file(
    tmp_path: Path,
) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    await store.merge("e", {"b": 2})
    statements = traced(store)
    await store.get("e")  # the store's first read: the header is found after it
    await store.get("e")  # the first since the commits: it notes the header
    assert len(statements) == 2
    first = await store.get("d")  # the file is quiet: the row is kept
    assert len(statements) == 3
    again, text = await store.get("d"), await store.get_json("d")
    assert len(statements) == 3  # then from memory
    assert (again.data, again.version, text) == (first.data, 1, ('{"a":1}', 1))
    # Each bucket is kept on its own: another one is read from the file once.
    assert (await store.get("e")).data == {"b": 2}
    assert (await store.get("e")).data == {"b": 2}
    assert len(statements) == 4
    # A missing bucket too: read once, then known to be missing.
    assert (await store.get("nobody")).version == 0
    assert (await store.get("nobody")).version == 0
    assert len(statements) == 5
    await store.close()


async def test_a_read_between_every_two_commits_keeps_nothing(tmp_path: Path) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"n": 0})
    await store.get("d")  # maps the file
    for n in range(1, 5):
        await store.merge("d", {"n": n})
        assert (await store.get("d")).data == {"n": n}
        assert store._reads.rows == {}
    await store.close()


async def test_a_write_of_the_store_itself_is_read_at_once(tmp_path: Path) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    assert await read_twice(store, "d") == {"a": 1}
    await store.merge("d", {"a": 2})
    assert await read_twice(store, "d") == {"a": 2}
    await store.delete("d", ["a"])
    assert (await store.get_json("d")) == ("{}", 3)
    await store.close()


async def test_a_commit_by_another_connection_is_read_by_the_next_read(tmp_path: Path) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    assert await read_twice(store, "d") == {"a": 1}
    assert await read_twice(store, "d") == {"a": 1}  # now from memory
    # Another store on the file: a connection of its own.
    other = SQLiteStore(tmp_path / "s.db")
    await other.merge("d", {"a": 2})
    assert await read_twice(store, "d") == {"a": 2}
    # Plain sqlite3, changing the row behind both stores' backs.
    with closing(sqlite3.connect(tmp_path / "s.db", isolation_level=None)) as conn:
        conn.execute("UPDATE buckets SET data = '{\"a\":3}', version = 3 WHERE device = 'd'")
    assert await read_twice(store, "d") == {"a": 3}
    # A commit that changes another bucket: this one is read again all the same (once to
    # note the header, once to be kept), and holds what it held.
    await other.merge("e", {"b": 1})
    statements = traced(store)
    assert await read_twice(store, "d") == {"a": 3}
    assert await read_twice(store, "d") == {"a": 3}
    assert len(statements) == 2
    await other.close()
    await store.close()


async def test_a_commit_by_another_process_is_read_by_the_next_read(tmp_path: Path) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    assert await read_twice(store, "d") == {"a": 1}
    assert await read_twice(store, "d") == {"a": 1}
    code = (
        "import asyncio, sys\n"
        "from devicebucket import SQLiteStore\n"
        "async def main():\n"
        "    store = SQLiteStore(sys.argv[1])\n"
        "    await store.merge('d', {'a': 'from the child'})\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", code, str(tmp_path / "s.db"))
    assert await child.wait() == 0
    assert await read_twice(store, "d") == {"a": "from the child"}
    await store.close()


WRITER = """
import asyncio, sys
from devicebucket import SQLiteStore
async def main():
    store = SQLiteStore(sys.argv[1])
    for n in range(1, int(sys.argv[2]) + 1):
        written = await store.merge("d", {"n": n})
        print(written.version, flush=True)  # acknowledged: every later read must see it
        sys.stdin.readline()
    await store.close()
asyncio.run(main())
"""


async def test_every_read_after_an_acknowledged_write_of_another_process_sees_it(
    tmp_path: Path,
) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"n": 0})
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRITER,
        str(tmp_path / "s.db"),
        "100",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    seen = 0
    for n in range(1, 101):
        acknowledged = int(await child.stdout.readline())
        assert acknowledged == n + 1
        for _ in range(3):  # the first notes the header, the next are kept or served
            got = await store.get("d")
            assert got.version >= acknowledged
            assert got.version >= seen  # never older than a read before it
            assert got.data == {"n": got.version - 1}
            seen = got.version
        child.stdin.write(b"next\n")
    assert await child.wait() == 0
    assert (await store.get("d")).data == {"n": 100}
    await store.close()


async def test_a_commit_by_another_thread_of_the_store_is_read_by_the_next_read(
    tmp_path: Path,
) -> None:
    store = opened(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    assert await read_twice(store, "d") == {"a": 1}
    assert await read_twice(store, "d") == {"a": 1}
    writer = threading.Thread(target=asyncio.run, args=(store.merge("d", {"a": 2}),))
    writer.start()
    writer.join()
    assert await read_twice(store, "d") == {"a": 2}
    await store.close()


def test_a_row_read_while_another_connection_commits_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = opened(path)
    asyncio.run(store.merge("d", {"a": 1}))
    conn = store._conn()
    cache = ReadCache(path, files=MappedFiles())
    assert cache.fetch(conn, SELECT, ("d", ""))[0] == '{"a":1}'  # maps the file
    assert cache.fetch(conn, SELECT, ("d", ""))[0] == '{"a":1}'  # notes the header
    assert cache.rows == {}
    elsewhere = sqlite3.connect(path, isolation_level=None)

    def commit_elsewhere() -> int:
        elsewhere.execute("UPDATE buckets SET data = '{\"a\":2}', version = 2")
        return 0

    # The statement reads the bucket in its own read transaction, and meanwhile another
    # connection commits: the row read is of the state before, and must not be kept.
    conn.create_function("commit_elsewhere", 0, commit_elsewhere)
    during = f"{SELECT} AND commit_elsewhere() = 0"
    assert cache.fetch(conn, during, ("d", "")) == ('{"a":1}', 1)
    assert cache.rows == {}
    assert cache.fetch(conn, SELECT, ("d", "")) == ('{"a":2}', 2)  # notes the new header
    assert cache.fetch(conn, SELECT, ("d", "")) == ('{"a":2}', 2)
    assert ("d", "") in cache.rows  # nothing committed while this one was read
    elsewhere.close()
    cache.close()
    asyncio.run(store.close())


def test_a_header_that_cannot_be_read_whole_keeps_nothing(tmp_path: Path) -> None:
    store = opened(tmp_path / "s.db")
    asyncio.run(store.merge("d", {"a": 1}))
    conn = store._conn()
    # A cache whose -shm file is written by hand, beside a real database to read from.
    cache = ReadCache(tmp_path / "x.db", files=MappedFiles())
    shm = tmp_path / "x.db-shm"
    copy = bytearray(48)
    copy[12] = 1  # isInit
    copy[16:20] = (7).to_bytes(4, "little")  # mxFrame
    whole = bytes(copy) * 2
    shm.write_bytes(whole + bytes(32_672))
    assert cache.fetch(conn, SELECT, ("d", "")) == ('{"a":1}', 1)  # maps the file
    assert cache.map is not None
    for _ in range(2):  # notes the header, then keeps the row
        assert cache.fetch(conn, SELECT, ("d", "")) == ('{"a":1}', 1)
    assert cache.rows[("d", "")][0] == whole
    torn = bytes(copy[:16]) + (8).to_bytes(4, "little") + bytes(copy[20:])
    for header in (torn + bytes(copy), bytes(96)):  # a commit publishing it; isInit 0
        cache.rows.clear()
        shm.write_bytes(header)
        for _ in range(2):
            assert cache.fetch(conn, SELECT, ("d", "")) == ('{"a":1}', 1)
        assert cache.rows == {}
    cache.close()
    assert cache.map is None
    asyncio.run(store.close())


def test_the_rows_kept_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = opened(path)
    for n in range(10):
        asyncio.run(store.merge(f"d{n}", {"v": "x" * 100}))
    conn = store._conn()
    text = len('{"v":"' + "x" * 100 + '"}')
    cache = ReadCache(path, max_bytes=3 * (ROW_OVERHEAD + text), files=MappedFiles())
    for _ in range(2):  # maps the file, notes the header
        cache.fetch(conn, SELECT, ("d0", ""))
    for n in range(10):
        cache.fetch(conn, SELECT, (f"d{n}", ""))
        assert len(cache.rows) <= 3
        assert cache.size == len(cache.rows) * (ROW_OVERHEAD + text)
    cache.fetch(conn, SELECT, ("d9", ""))  # kept again: counted once
    assert cache.size == len(cache.rows) * (ROW_OVERHEAD + text)
    cache.close()
    asyncio.run(store.close())


def test_a_forked_child_trusts_nothing_its_parent_kept(tmp_path: Path) -> None:
    store = opened(tmp_path / "s.db")
    asyncio.run(store.merge("d", {"parent": 1}))
    for _ in range(3):  # maps the file, notes the header, keeps the row
        assert asyncio.run(store.get("d")).data == {"parent": 1}
    assert store._reads.rows
    assert store._reads.map is not None
    pid = os.fork()
    if pid == 0:  # the child: same store object, same thread
        code = 1
        try:
            kept = bool(store._reads.rows) or store._reads.map is not None
            child = asyncio.run(store.get("d")).data
            code = 0 if not kept and child == {"parent": 1} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store._reads.rows  # the parent's are its own
    asyncio.run(store.close())
    assert not store._reads.rows
    assert store._reads.map is None


async def written_and_read(files: MappedFiles, *paths: Path) -> list[SQLiteStore]:
    """Stores of ``paths`` mapping into ``files``, each with a bucket written and read."""
    stores = [opened(path, files) for path in paths]
    for store in stores:
        await store.merge("d", {"a": 1})
        await store.get("d")
    return stores


async def test_a_store_of_a_file_past_those_mapped_reads_through_sqlite(tmp_path: Path) -> None:
    first, second = await written_and_read(
        MappedFiles(max_files=1), tmp_path / "a.db", tmp_path / "b.db"
    )
    assert first._reads.map is not None
    assert second._reads.map is None
    statements = traced(second)
    for _ in range(3):
        assert (await second.get("d")).data == {"a": 1}
    assert len(statements) == 3
    await first.close()
    await second.close()


async def test_a_mapping_outlives_its_store_until_its_file_is_deleted(tmp_path: Path) -> None:
    files = MappedFiles(max_files=2)
    first, kept = await written_and_read(files, tmp_path / "s.db", tmp_path / "kept.db")
    mapping = first._reads.map
    assert mapping is not None
    assert kept._reads.map is not None
    second = opened(tmp_path / "s.db", files)  # the same file, while the first is open
    await second.get("d")
    assert second._reads.map is mapping
    await second.close()
    assert not mapping.closed
    assert (await first.get("d")).data == {"a": 1}
    # Closing its last connection, SQLite deletes the -shm file: its mapping goes then, and
    # makes room for the next file's, the other stays.
    await first.close()
    again = opened(tmp_path / "s.db", files)
    await again.get("d")
    assert mapping.closed
    assert again._reads.map is not None
    assert (await again.get("d")).data == {"a": 1}
    assert kept._reads.map is not None
    assert not kept._reads.map.closed
    await again.close()
    await kept.close()


LOCKED = """
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
# Would a write lock on SQLite's DMS byte (128) be refused, and by whom?
found = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("@hhqqi", fcntl.F_WRLCK, 0, 128, 1, 0))
kind, _, _, _, pid = struct.unpack("@hhqqi", found)
print(kind != fcntl.F_UNLCK, pid)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the layout of struct flock is Linux's")
async def test_mapping_the_file_leaves_sqlite_its_locks(tmp_path: Path) -> None:
    # SQLite keeps a read lock on a byte of the -shm file while a connection is open, so
    # that no other process truncates the file. Closing any descriptor of the file would
    # release it: the store must never close one of its own.
    store, other = opened(tmp_path / "s.db"), opened(tmp_path / "s.db")
    await store.merge("d", {"a": 1})
    await store.get("d")
    await other.get("d")
    await other.get("d")
    assert store._reads.map is not None
    await other.close()  # the process still has the store's connection
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCKED,
        str(tmp_path / "s.db-shm"),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    assert out.decode().split() == ["True", str(os.getpid())]
    await store.close()
