"""A request header read straight from the ASGI scope.

Starlette's ``conn.headers.get(name)`` builds a ``Headers`` of the whole list, and answers a
header that is not there by raising and catching ``KeyError``: about a microsecond each, and
every API request asks for its bearer token, and every write for ``If-Match``, the actor
and the body's length, which are mostly absent. The server has put header names in lower
case (ASGI), as ``Headers`` also assumes; the first header of a name counts, as there.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

__all__ = ["header"]


def header(conn: HTTPConnection, name: bytes) -> str | None:
    """The value of the first header called ``name`` (lower case), or None."""
    for key, value in conn.scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None
