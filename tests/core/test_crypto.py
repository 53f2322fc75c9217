"""Encryption at rest: sealed values, wrong or missing keys, rotation, no plaintext on disk."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import asyncpg
import pytest

from devicebucket import SQLiteStore, StoreUnavailableError
from devicebucket.backends.postgres import PostgresStore
from devicebucket.core.crypto import EncryptionError, KeyRing, generate_key

from ..conftest import PG_URL, drop_schema, pg_schema_url, require_postgres

SECRETS = {"password": "correct-horse-battery-staple", "session_cookie": "sid=7f3a9c1e5b2d"}
OLD = KeyRing.from_texts([generate_key()], "test")
NEW = KeyRing.from_texts([generate_key()], "test")


def test_a_sealed_value_opens_only_in_its_own_bucket() -> None:
    sealed = OLD.seal("pixel-1", "", '{"password":"x"}')
    assert sealed.startswith(f"dbk1:{OLD.key_id}:")
    assert "password" not in sealed
    assert OLD.open("pixel-1", "", sealed) == '{"password":"x"}'
    with pytest.raises(EncryptionError, match="sealed for another device, job or version"):
        OLD.open("pixel-2", "", sealed)
    with pytest.raises(EncryptionError, match="sealed for another device, job or version"):
        OLD.open("pixel-1", "signup", sealed)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(EncryptionError):
        OLD.open("pixel-1", "", tampered)
    with pytest.raises(EncryptionError, match=f"sealed with key {OLD.key_id}"):
        NEW.open("pixel-1", "", sealed)
    assert NEW.with_old(OLD).open("pixel-1", "", sealed) == '{"password":"x"}'


@pytest.mark.parametrize("text", ["", "short", "!" * 44, generate_key()[:-4]])
def test_a_malformed_key_is_refused_clearly(text: str) -> None:
    with pytest.raises(EncryptionError, match="not 32 bytes of base64url"):
        KeyRing.from_texts([text], "$DEVICEBUCKET_ENCRYPTION_KEY")


async def write_secrets(store: SQLiteStore | PostgresStore) -> None:
    await store.merge("pixel-1", {"password": "first-password-value"})
    await store.merge("pixel-1", SECRETS)
    await store.merge("pixel-1", {"step": 2, **SECRETS}, job="signup")


def assert_no_plaintext(blob: bytes, where: str) -> None:
    for secret in [*SECRETS.values(), "first-password-value"]:
        assert secret.encode() not in blob, f"{secret!r} is readable in {where}"


async def test_no_secret_is_readable_in_the_sqlite_file_or_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    store = SQLiteStore(path, keys=OLD)
    await write_secrets(store)
    wal = path.with_name(path.name + "-wal")
    assert wal.exists()  # the writes are still in the WAL while the store is open
    assert_no_plaintext(path.read_bytes(), "the database file")
    assert_no_plaintext(wal.read_bytes(), "the WAL")
    assert (await store.get("pixel-1")).data == SECRETS  # and they read back
    assert (await store.at_version("pixel-1", 1)).data == {"password": "first-password-value"}
    await store.close()
    assert_no_plaintext(path.read_bytes(), "the database file after a checkpoint")


async def test_the_same_store_without_the_key_or_with_a_wrong_key_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.db"
    async with SQLiteStore(path, keys=OLD) as store:
        await write_secrets(store)
    async with SQLiteStore(path) as keyless:
        with pytest.raises(StoreUnavailableError, match="is encrypted: give its key") as info:
            await keyless.get("pixel-1")
        assert "correct-horse" not in str(info.value)
    async with SQLiteStore(path, keys=NEW) as wrong:
        with pytest.raises(StoreUnavailableError, match="encryption key from test does not match"):
            await wrong.get("pixel-1")


async def test_a_ciphertext_moved_to_another_device_does_not_decrypt(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    async with SQLiteStore(path, keys=OLD) as store:
        await write_secrets(store)
        await store.merge("pixel-2", {"a": 1})
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE buckets SET data = (SELECT data FROM buckets WHERE device = 'pixel-1'"
            " AND job = '') WHERE device = 'pixel-2'"
        )
    async with SQLiteStore(path, keys=OLD) as store:
        with pytest.raises(
            StoreUnavailableError, match="sealed for another device, job or version"
        ):
            await store.get("pixel-2")
        assert (await store.get("pixel-1")).data == SECRETS


async def test_rotation_is_online_and_resumable(tmp_path: Path) -> None:
    path = tmp_path / "fleet.db"
    async with SQLiteStore(path, keys=OLD) as store:
        for n in range(60):
            await store.merge(f"pixel-{n}", {"password": f"secret-{n}"})
    both = NEW.with_old(OLD)

    # An interrupted rotation: some rows moved to the new key, the key check not yet.
    async with SQLiteStore(path, keys=both) as rotating:
        assert await rotating._reseal(25) == 25
    async with SQLiteStore(path, keys=OLD) as old_reader:
        assert (await old_reader.get("pixel-59")).version == 1  # opens: key check is old

    reader = SQLiteStore(path, keys=both)  # a server holding both keys, reading throughout
    reads: list[dict[str, object]] = []
    stop = asyncio.Event()

    async def keep_reading() -> None:
        n = 0
        while not stop.is_set():
            reads.append((await reader.get(f"pixel-{n % 60}")).data)
            n += 1
            await asyncio.sleep(0)

    reading = asyncio.create_task(keep_reading())
    async with SQLiteStore(path, keys=both) as rotating:
        resealed = await rotating.rotate_key(batch=10)
    stop.set()
    await reading
    await reader.close()
    assert resealed == 60 - 25 + 60  # the rest of the buckets, and every history row
    assert reads
    assert all(r == {"password": f"secret-{i % 60}"} for i, r in enumerate(reads))

    with closing(sqlite3.connect(path)) as conn:
        stored = [
            row[0]
            for row in conn.execute(
                "SELECT data FROM buckets UNION ALL SELECT COALESCE(data, delta) FROM history"
            )
        ]
    assert all(s.startswith(f"dbk2:{NEW.key_id}:") for s in stored)
    async with SQLiteStore(path, keys=NEW) as new_only:
        assert (await new_only.get("pixel-7")).data == {"password": "secret-7"}
    async with SQLiteStore(path, keys=OLD) as old_only:
        with pytest.raises(StoreUnavailableError, match="does not match"):
            await old_only.get("pixel-7")


async def test_turning_encryption_on_seals_new_writes_and_rotation_seals_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "fleet.db"
    async with SQLiteStore(path) as plain:
        await plain.merge("pixel-1", {"password": "written-in-plaintext"})
    async with SQLiteStore(path, keys=NEW) as store:
        assert (await store.get("pixel-1")).data == {"password": "written-in-plaintext"}
        await store.rotate_key()
    async with SQLiteStore(path, keys=NEW) as store:
        assert (await store.get("pixel-1")).data == {"password": "written-in-plaintext"}
    await asyncio.sleep(0)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"written-in-plaintext" not in path.read_bytes()


def test_key_commands(tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    key = tmp_path / "k1"
    made = cli("key", "generate", "-o", str(key))
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    assert cli("--key-file", str(key), "set", "pixel", "password=hunter2-key-cmd").returncode == 0
    refused = cli("get", "pixel")
    assert refused.returncode == 1
    assert "is encrypted: give its key" in refused.stderr
    assert "hunter2" not in refused.stderr
    new = tmp_path / "k2"
    assert cli("key", "generate", "-o", str(new)).returncode == 0
    rotated = cli("--key-file", str(key), "key", "rotate", "--new-key-file", str(new))
    assert rotated.returncode == 0, rotated.stderr
    assert '"resealed":2' in rotated.stdout
    assert "hunter2-key-cmd" in cli("--key-file", str(new), "get", "pixel", "--reveal").stdout
    assert cli("--key-file", str(key), "get", "pixel").returncode == 1


async def test_no_secret_is_readable_in_the_postgresql_table_files() -> None:
    require_postgres()
    url, schema = pg_schema_url()
    store = PostgresStore(url, keys=OLD)
    try:
        await write_secrets(store)
        assert (await store.get("pixel-1", job="signup")).data == {"step": 2, **SECRETS}
        conn = await asyncpg.connect(PG_URL)
        try:
            for table in ("buckets", "history"):
                texts = "data" if table == "buckets" else "COALESCE(data, delta) AS data"
                rows = await conn.fetch(f'SELECT {texts} FROM "{schema}".{table}')
                assert rows
                assert_no_plaintext("".join(r["data"] for r in rows).encode(), table)
            await conn.execute("CHECKPOINT")
            root = Path(await conn.fetchval("SHOW data_directory"))
            for table in ("buckets", "history"):
                relation = await conn.fetchval(
                    f"SELECT pg_relation_filepath('\"{schema}\".{table}')"
                )
                data = (root / relation).read_bytes()
                assert b"dbk2:" in data  # the file holds the sealed rows
                assert_no_plaintext(data, f"the {table} table file")
        finally:
            await conn.close()
        async with PostgresStore(url) as keyless:
            with pytest.raises(StoreUnavailableError, match="is encrypted"):
                await keyless.get("pixel-1")
    finally:
        await store.close()
        await drop_schema(schema)


def test_a_key_file_others_may_read_is_refused_unless_told(tmp_path: Path) -> None:
    key = tmp_path / "open.key"
    key.write_text(generate_key() + "\n")
    key.chmod(0o644)
    with pytest.raises(EncryptionError, match=r"may be read by others \(mode 644\).*chmod 600"):
        KeyRing.from_file(key, {})
    assert KeyRing.from_file(key, {"DEVICEBUCKET_KEY_FILE_SHARED": "1"}).key_id
    key.chmod(0o600)
    assert KeyRing.from_file(key, {}).key_id


def test_a_value_sealed_with_its_version_opens_only_as_that_version() -> None:
    sealed = OLD.seal("pixel-1", "", '{"a":1}', 3)
    assert sealed.startswith(f"dbk2:{OLD.key_id}:")
    assert OLD.open("pixel-1", "", sealed, 3) == '{"a":1}'
    with pytest.raises(EncryptionError, match="does not decrypt as version 4"):
        OLD.open("pixel-1", "", sealed, 4)
    with pytest.raises(EncryptionError, match="without one"):
        OLD.open("pixel-1", "", sealed)


async def test_an_old_version_put_back_is_detected(tmp_path: Path) -> None:
    """Copying history v1's ciphertext into the bucket row (at v3) once returned v1's
    contents under version 3: a silent rollback."""
    path = tmp_path / "fleet.db"
    async with SQLiteStore(path, keys=OLD) as store:
        for n in range(1, 4):
            await store.merge("pixel-1", {"n": n})
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute(
            "UPDATE buckets SET data = (SELECT delta FROM history WHERE device = 'pixel-1'"
            " AND version = 1) WHERE device = 'pixel-1'"
        )
    async with SQLiteStore(path, keys=OLD) as store:
        with pytest.raises(StoreUnavailableError, match="does not decrypt as version 3"):
            await store.get("pixel-1")
        assert (await store.at_version("pixel-1", 1)).data == {"n": 1}


async def test_values_sealed_before_versions_were_bound_open_and_are_upgraded(
    tmp_path: Path,
) -> None:
    path = tmp_path / "legacy.db"
    async with SQLiteStore(path, keys=OLD) as store:
        await store.merge("pixel-1", {"password": "p1"})
    with closing(sqlite3.connect(path)) as conn, conn:  # as an older devicebucket sealed it
        legacy = OLD.seal("pixel-1", "", '{"password":"p1"}')
        conn.execute("UPDATE buckets SET data = ?", (legacy,))
        conn.execute("UPDATE history SET data = ?", (legacy,))
    async with SQLiteStore(path, keys=OLD) as store:
        assert (await store.get("pixel-1")).data == {"password": "p1"}
        assert await store.rotate_key() == 2  # the same key: the rows gain their version
        assert (await store.get("pixel-1")).data == {"password": "p1"}
    with closing(sqlite3.connect(path)) as conn:
        stored = [
            r[0]
            for r in conn.execute("SELECT data FROM buckets UNION ALL SELECT data FROM history")
        ]
    assert all(s.startswith(f"dbk2:{OLD.key_id}:") for s in stored)
