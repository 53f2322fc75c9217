"""``open_store(url)``: the store a URL names."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from platformdirs import user_data_path

from .errors import InvalidValueError
from .rules import Limits
from .sqlite import SQLiteStore
from .store import Store

__all__ = ["default_url", "open_store", "redact_url"]

ENV_URL = "DEVICEBUCKET_URL"


def default_url() -> str:
    """``DEVICEBUCKET_URL``, else a SQLite file in the per-user data directory."""
    env = os.environ.get(ENV_URL)
    if env:
        return env
    return f"sqlite:///{user_data_path('devicebucket') / 'devicebucket.db'}"


def redact_url(url: str) -> str:
    """The URL without its password, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc))


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL, or a bare path."""
    if url.startswith("sqlite://"):
        rest = url.removeprefix("sqlite://")
        if not rest.startswith("/") or rest == "/":
            raise InvalidValueError("a SQLite URL looks like sqlite:///path/to/file.db")
        rest = rest[1:]
        return Path(rest).expanduser()
    return Path(url).expanduser()


def open_store(url: str | None = None, *, limits: Limits | None = None) -> Store:
    """Open the store ``url`` names; ``None`` means ``DEVICEBUCKET_URL`` or the default file.

    * ``sqlite:///fleet.db`` (relative), ``sqlite:////var/lib/fleet.db`` (absolute), or a
      plain file path: the embedded SQLite store.
    """
    url = url or default_url()
    limits = limits or Limits.from_env()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("", "sqlite"):
        return SQLiteStore(sqlite_path(url), limits=limits)
    raise InvalidValueError(
        f"unsupported store URL {redact_url(url)!r}: use sqlite:///path/to/file.db"
    )
