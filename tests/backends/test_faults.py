"""Storage faults: a full disk, a read-only file, a locked database, a corrupted file.

Each gives a clear error (never a traceback), reads keep working where they can, and nothing
that was acknowledged is lost. The full-disk and read-only tests need root (to mount a
size-capped tmpfs and to run the CLI as another user); CI runs as root, where they must run.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from devicebucket import SQLiteStore, StoreUnavailableError

from ..conftest import requires


def need_root(why: str) -> None:
    present = os.geteuid() == 0 and shutil.which("setpriv") and shutil.which("mount")
    requires(bool(present), f"{why} needs root, mount and setpriv")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB file system (tmpfs), unmounted afterwards."""
    need_root("a full disk")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


async def test_a_full_disk_refuses_writes_clearly_and_keeps_what_was_acknowledged(
    small_disk: Path,
) -> None:
    filler = small_disk / "other-files"
    filler.write_bytes(b"x" * 300_000)
    store = SQLiteStore(small_disk / "fleet.db")
    acknowledged: dict[str, dict[str, str]] = {}
    refused: StoreUnavailableError | None = None
    for n in range(1000):
        device = f"pixel-{n % 5}"
        try:
            await store.merge(device, {f"k{n}": "v" * 4000})
        except StoreUnavailableError as exc:
            refused = exc
            break
        acknowledged.setdefault(device, {})[f"k{n}"] = "v" * 4000
    assert refused is not None
    assert str(refused) == f"SQLite store {small_disk / 'fleet.db'}: database or disk is full"
    assert len(acknowledged) == 5
    for device, data in acknowledged.items():  # reads keep working on a full disk
        assert (await store.get(device)).data == data
    filler.unlink()  # space comes back: writes work again, without a restart
    await store.merge("pixel-0", {"after": True})
    await store.close()
    with closing(sqlite3.connect(small_disk / "fleet.db")) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    async with SQLiteStore(small_disk / "fleet.db") as reopened:
        assert (await reopened.get("pixel-0")).data == {**acknowledged["pixel-0"], "after": True}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter and write (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="devicebucket-shared-"))
    os.chmod(path, 0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_a_read_only_database_is_read_and_refuses_writes_clearly(shared_dir: Path) -> None:
    need_root("a read-only database")
    db = shared_dir / "fleet.db"

    def cli(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "devicebucket", "--db", f"sqlite:///{db}", *args]
        if user:
            command = ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups", *command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    assert cli("set", "pixel", "user=ana").returncode == 0
    os.chmod(db, 0o444)  # the file becomes read-only for its (non-root) users
    read = cli("get", "pixel", user="nobody")
    assert read.returncode == 0, read.stderr
    assert read.stdout.strip() == '{"user":"ana"}'
    write = cli("set", "pixel", "user=bob", user="nobody")
    assert write.returncode == 1
    assert write.stderr.strip() == f"Error: SQLite store {db}: attempt to write a readonly database"
    assert cli("get", "pixel").stdout.strip() == '{"user":"ana"}'


async def test_a_locked_database_refuses_writes_after_the_timeout_and_reads_go_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.db"
    store = SQLiteStore(path, busy_timeout=0.3)
    await store.merge("pixel", {"a": 1})
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            await store.merge("pixel", {"b": 2})
        assert (await store.get("pixel")).data == {"a": 1}  # WAL: readers are not blocked
        other.execute("ROLLBACK")
    assert (await store.merge("pixel", {"b": 2})).data == {"a": 1, "b": 2}
    await store.close()


def test_a_corrupted_file_gives_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    db = tmp_path / "fleet.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVICEBUCKET_")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "devicebucket", "--db", f"sqlite:///{db}", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)

    for n in range(30):
        assert cli("set", f"pixel-{n}", f"secret=value-{n}-" + "x" * 500).returncode == 0
    data = bytearray(db.read_bytes())
    page = 4096
    for start in range(2 * page, len(data) - page, page):  # every page after the schema
        data[start + 100 : start + 400] = os.urandom(300)
    db.write_bytes(bytes(data))
    result = cli("devices")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert f"SQLite store {db}" in result.stderr
    assert "malformed" in result.stderr or "not a database" in result.stderr
    assert "value-" not in result.stderr
