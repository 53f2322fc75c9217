"""``open_store``: which store a URL names."""

from __future__ import annotations

from pathlib import Path

import pytest

from devicebucket import InvalidValueError, Limits, SQLiteStore, default_url, open_store
from devicebucket.core.errors import SettingError
from devicebucket.core.urls import redact_url, sqlite_path


def test_sqlite_urls_and_paths() -> None:
    assert sqlite_path("sqlite:///fleet.db") == Path("fleet.db")
    assert sqlite_path("sqlite:////var/lib/fleet.db") == Path("/var/lib/fleet.db")
    assert sqlite_path("/tmp/x.db") == Path("/tmp/x.db")
    with pytest.raises(InvalidValueError, match=r"sqlite:///path/to/file\.db"):
        sqlite_path("sqlite://host/x.db")


def test_open_store_picks_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'a.db'}", limits=Limits(max_depth=5))
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "a.db"
    assert store.limits.max_depth == 5
    monkeypatch.setenv("DEVICEBUCKET_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("DEVICEBUCKET_MAX_BUCKET_BYTES", "2048")
    from_env = open_store()
    assert isinstance(from_env, SQLiteStore)
    assert from_env.path == tmp_path / "env.db"
    assert from_env.limits.max_bucket_bytes == 2048


def test_default_is_the_user_data_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEVICEBUCKET_URL", raising=False)
    url = default_url()
    assert url.startswith("sqlite:///")
    assert url.endswith("devicebucket/devicebucket.db")


def test_unknown_schemes_are_refused_without_the_password() -> None:
    with pytest.raises(SettingError, match=r"unsupported store URL 'ftp://u:\*\*\*@h/x'") as info:
        open_store("ftp://u:pw-secret@h/x")
    assert "pw-secret" not in str(info.value)
    assert redact_url("postgresql://me:pw@db:5432/x") == "postgresql://me:***@db:5432/x"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
