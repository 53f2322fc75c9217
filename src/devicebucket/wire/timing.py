"""How long each side of the HTTP API keeps an idle keep-alive connection.

The client must let go of an idle connection well before the server closes it. Were the two
equal (uvicorn's and httpx's default, 5 seconds each), a client could send a request on a
connection in the moment the server closes it: the request is lost, the client sees the
connection reset (``httpx.ReadError``) and cannot know whether its write was applied, so a
write that needed no guess is reported as "outcome unknown".
"""

from __future__ import annotations

from typing import Final

__all__ = ["CLIENT_KEEP_ALIVE_SECONDS", "SERVER_KEEP_ALIVE_SECONDS"]

#: How long ``devicebucket serve`` keeps a connection open with no request on it.
SERVER_KEEP_ALIVE_SECONDS: Final = 5
#: How long the HTTP client store (``backends.http``) reuses a connection idle since its
#: last response. The margin below the server's covers the time between the server sending
#: a response and the client reading it, which a loaded machine stretches.
CLIENT_KEEP_ALIVE_SECONDS: Final = 2.0
