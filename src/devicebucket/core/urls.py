"""Pure helpers for store URLs: the SQLite file a URL names, and URLs fit for messages."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .errors import InvalidValueError

__all__ = ["redact_url", "scheme_of", "sqlite_path"]


def scheme_of(url: str) -> str:
    """The URL's scheme in lower case; ``""`` for a plain path."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


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
    """The file of ``sqlite:///relative.db``, ``sqlite:////absolute.db`` or a bare path."""
    if url.startswith("sqlite://"):
        rest = url.removeprefix("sqlite://")
        if not rest.startswith("/") or rest == "/":
            raise InvalidValueError("a SQLite URL looks like sqlite:///path/to/file.db")
        return Path(rest[1:]).expanduser()
    return Path(url).expanduser()
