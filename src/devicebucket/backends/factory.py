"""``open_store(url)``: the store a URL names."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_data_path

from ..core.crypto import KeyRing
from ..core.errors import SettingError
from ..core.limits import Limits
from ..core.store import Store
from ..core.urls import redact_url, scheme_of, sqlite_path
from .sqlite import SQLiteStore

__all__ = ["check_settings", "default_url", "open_store", "redact_url", "sqlite_path"]

ENV_URL = "DEVICEBUCKET_URL"
ENV_TOKEN = "DEVICEBUCKET_TOKEN"


def default_url() -> str:
    """``DEVICEBUCKET_URL``, else a SQLite file in the per-user data directory."""
    env = os.environ.get(ENV_URL)
    if env:
        return env
    return f"sqlite:///{_default_file()}"


def _default_file() -> Path:
    """The per-user store: the one file whose directory is made when missing."""
    return user_data_path("devicebucket") / "devicebucket.db"


def open_store(
    url: str | None = None,
    *,
    token: str | None = None,
    limits: Limits | None = None,
    timeout: float = 10.0,
    keys: KeyRing | None = None,
) -> Store:
    """Open the store ``url`` names; ``None`` means ``DEVICEBUCKET_URL`` or the default file.

    * ``sqlite:///fleet.db`` (relative), ``sqlite:////var/lib/fleet.db`` (absolute), or a
      plain file path: the embedded SQLite store.
    * ``postgresql://user@host:5432/db`` (``?schema=NAME`` for a schema of its own):
      PostgreSQL, for many servers.
    * ``http://host:8787`` or ``https://...``: a devicebucket server, with ``token``
      (default ``DEVICEBUCKET_TOKEN``) and a ``timeout`` in seconds per request.

    ``keys`` encrypt what a local store writes (default: ``DEVICEBUCKET_ENCRYPTION_KEY`` or
    ``DEVICEBUCKET_KEY_FILE``, see :mod:`devicebucket.crypto`); a server encrypts its own.
    """
    url = url or default_url()
    limits = limits or Limits.from_env()
    scheme = _scheme(url)
    if scheme in ("", "sqlite"):
        # Only the default file's directory is made; a mistyped one is an error.
        path, keys = sqlite_path(url), keys or KeyRing.from_env()
        return SQLiteStore(path, limits=limits, keys=keys, create_dirs=path == _default_file())
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore  # asyncpg is loaded only for PostgreSQL

        keys = keys or KeyRing.from_env()
        return PostgresStore(url, limits=limits, timeout=timeout, keys=keys)
    from .http import HTTPStore  # httpx is loaded only for a server

    token = token or os.environ.get(ENV_TOKEN)
    return HTTPStore(url, token=token, limits=limits, timeout=timeout)  # http(s)


def _scheme(url: str) -> str:
    scheme = scheme_of(url)
    if scheme not in _SCHEMES:
        raise SettingError(
            f"unsupported store URL {redact_url(url)!r}: use sqlite:///path/to/file.db,"
            " postgresql://user@host/db or http(s)://host:port"
        )
    return scheme


_SCHEMES = ("", "sqlite", "postgresql", "postgres", "http", "https")


def check_settings(url: str | None, *, keys: bool = True) -> tuple[Limits, KeyRing | None]:
    """The limits and (``keys``) encryption keys the environment sets, for ``open_store``;
    SettingError, naming it, for a bad store URL, limit or key setting, before anything is
    opened."""
    _scheme(url or default_url())
    return Limits.from_env(), KeyRing.from_env() if keys else None
