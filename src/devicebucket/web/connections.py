"""Deadlines for reading a request, so slow or idle clients cannot hold connections open.

uvicorn closes a keep-alive connection that stays idle after a response (after
``wire.timing.SERVER_KEEP_ALIVE_SECONDS``), but it waits for ever for a request's headers
on a new connection and for a body that trickles in. The protocol here is uvicorn's own
(httptools) with two deadlines: a request's headers must arrive within
``DEVICEBUCKET_READ_TIMEOUT_SECONDS`` (default 10) of the connection (or of the first byte
after a response), and its body within that time plus one second for every 16 KiB. A
connection past its deadline gets ``408`` (if no request is under way) and is closed.
``serve`` runs every worker with it.

It also sends a response in one write where uvicorn makes two (the status line and headers,
then the body): each write is a system call, and one fewer a response served 1.03-1.11x the
requests a second under 64 connections (:class:`OneWrite`, docs/benchmarks-log.md).
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["READ_TIMEOUT_ENV", "BoundedHttpToolsProtocol", "OneWrite", "read_timeout"]

READ_TIMEOUT_ENV: Final = "DEVICEBUCKET_READ_TIMEOUT_SECONDS"
#: How fast a body must arrive, at least, after the first ``read_timeout`` seconds.
MIN_BODY_BYTES_PER_SECOND: Final = 16 * 1024
_CHECK_EVERY: Final = 0.5
_MESSAGE: Final = b"the request did not arrive in time\n"
_TIMED_OUT: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_MESSAGE), _MESSAGE)
)


def read_timeout() -> float:
    """The setting, checked: ValueError naming it when it is not a whole number of seconds
    from 1 to 3600."""
    raw = os.environ.get(READ_TIMEOUT_ENV, "10")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 3600):
        raise ValueError(f"{READ_TIMEOUT_ENV} must be a whole number from 1 to 3600, not {raw!r}")
    return float(raw)


@cache
def _limit() -> float:
    """The setting, read once a process, at its first connection (never at import: a bad
    value must not break every command that imports this module; ``serve`` checks it)."""
    return read_timeout()


class OneWrite:
    """The transport a request's cycle writes its response to: a write waits for the next
    one, and the two leave as one. What waits is written before anything else is asked of
    the transport, and in any case when the event loop next runs its callbacks: a body that
    never comes (HEAD) or comes later (an event stream) does not hold the headers back."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def flush(self) -> None:
        """Write what waits, unless the connection is closing (its peer has gone)."""
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        """Anything else (``close``, ``is_closing``...) is the transport's, after a flush."""
        self.flush()
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for a request's headers and body.

    The parser's callbacks only note which part of a request is being read (no clock on
    the request path); a timer per connection counts how long that part has lasted.
    """

    # headers (from the connection or a request's first byte), body, app (the app has the
    # whole request; between requests, uvicorn's keep-alive timeout closes an idle connection)
    _phase = "headers"
    _changes = 0  # phase changes so far: the timer sees whether one happened since its last look
    _seen = -1
    _waited = 0.0
    _body_bytes = 0
    _checker: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._checker = self.loop.call_later(_CHECK_EVERY, self._check)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._phase, self._changes = "headers", self._changes + 1
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._phase, self._changes, self._body_bytes = "body", self._changes + 1, 0
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:  # the request's (an upgrade has none)
            cycle.transport = OneWrite(self.transport, self.loop)  # type: ignore[assignment]

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase, self._changes = "app", self._changes + 1
        super().on_message_complete()

    def _check(self) -> None:
        self._checker = None
        if self.transport.is_closing():
            return
        if self._changes != self._seen:
            self._seen, self._waited = self._changes, 0.0
        elif not (self._phase == "body" and self.flow.read_paused):  # paused: the app's doing
            self._waited += _CHECK_EVERY
        limit = _limit()
        if self._phase == "headers" and self._waited >= limit:
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(_TIMED_OUT)
            self.transport.close()
            return
        if (
            self._phase == "body"
            and self._waited >= limit + self._body_bytes / MIN_BODY_BYTES_PER_SECOND
        ):
            self.transport.close()  # the app sees the client disconnect
            return
        self._checker = self.loop.call_later(_CHECK_EVERY, self._check)
