"""Watches over HTTP: a store's changes as Server-Sent Events (``sse-starlette``), bounded.

A stream pulls the next change only when the last one was sent, so a client that stops
reading holds nothing on the server but its place (``core.watching``); one that stays
unread for ``SEND_TIMEOUT`` seconds is dropped, and resumes with ``Last-Event-ID``. Each
token may hold ``DEVICEBUCKET_WATCHERS_PER_TOKEN`` streams at once (per server process).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Final

from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from ..core.errors import DeviceBucketError, TooManyWatchersError
from ..core.watching import BucketChange, Event, Overflow, Resync
from ..wire.shapes import event_json
from .metrics import Metrics
from .responses import HTTPError

__all__ = [
    "HEARTBEAT_ENV",
    "WATCHERS_ENV",
    "Watches",
    "heartbeat_seconds",
    "since_of",
    "watchers_per_token",
]

WATCHERS_ENV: Final = "DEVICEBUCKET_WATCHERS_PER_TOKEN"
#: Seconds between the comment lines that keep an idle stream alive through proxies.
HEARTBEAT_ENV: Final = "DEVICEBUCKET_HEARTBEAT_SECONDS"
#: Seconds a client may leave a change unread before the server drops its stream.
SEND_TIMEOUT: Final = 60.0


def _setting(name: str, default: int, most: int) -> int:
    raw = os.environ.get(name, str(default))
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= most):
        raise ValueError(f"{name} must be a whole number from 1 to {most}, not {raw[:40]!r}")
    return int(raw)


def watchers_per_token() -> int:
    """How many streams one token may hold open at once (default 16): ValueError naming the
    setting when it is not valid."""
    return _setting(WATCHERS_ENV, 16, 100_000)


def heartbeat_seconds() -> int:
    """Seconds between heartbeats (default 15): ValueError naming the setting."""
    return _setting(HEARTBEAT_ENV, 15, 3600)


def since_of(request: Request) -> int | None:
    """Where a watch resumes: ``Last-Event-ID`` (an EventSource reconnecting), else
    ``?since=``, else None (from now)."""
    raw = request.headers.get("last-event-id") or request.query_params.get("since")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19 and int(raw) < 2**63):
        raise HTTPError(400, "bad_request", "since / Last-Event-ID must be a version (0 or more)")
    return int(raw)


def _event(event: Event | Overflow, many: bool) -> ServerSentEvent:
    data = _encoded(event, many)
    if isinstance(event, Overflow):
        return ServerSentEvent(data, event="overflow")
    kind = "resync" if isinstance(event, Resync) else "change"
    assert isinstance(event, (BucketChange, Resync))
    return ServerSentEvent(data, event=kind, id=None if many else str(event.version))


# The watchers of one bucket share its change objects (``core.watching.Feed``): each is
# encoded once for all of them. Kept with the object, so its id is not reused meanwhile.
_ENCODED: dict[tuple[int, bool], tuple[object, str]] = {}
_ENCODED_MOST: Final = 4096  # events
_ENCODED_BYTES: Final = 16 * 1024 * 1024  # and characters of their texts
_encoded_chars = 0


def _encoded(event: Event | Overflow, many: bool) -> str:
    global _encoded_chars
    key = (id(event), many)
    found = _ENCODED.get(key)
    if found is not None and found[0] is event:
        return found[1]
    text = json.dumps(event_json(event, where=many), ensure_ascii=False)
    if len(text) > _ENCODED_BYTES // 16:
        return text  # a big one is not kept
    while _ENCODED and (len(_ENCODED) >= _ENCODED_MOST or _encoded_chars > _ENCODED_BYTES):
        _encoded_chars -= len(_ENCODED.pop(next(iter(_ENCODED)))[1])
    _ENCODED[key] = (event, text)
    _encoded_chars += len(text)
    return text


class Watches:
    """The open streams of one app, counted by token."""

    def __init__(self, meter: Metrics, per_token: int, heartbeat: int) -> None:
        self.meter = meter
        self.per_token = per_token
        self.heartbeat = heartbeat
        self.open: Counter[str] = Counter()

    def stream(
        self, who: str, events: AsyncGenerator[Event | Overflow, None], many: bool
    ) -> EventSourceResponse:
        """The response that streams ``events`` for token ``who`` (429 past its limit)."""
        if self.open[who] >= self.per_token:
            raise TooManyWatchersError(
                f"this token already has {self.per_token} open watches, the most this server"
                f" allows ({WATCHERS_ENV})"
            )
        self.open[who] += 1  # taken now, so requests arriving together cannot pass the limit
        meter = self.meter

        async def sent() -> AsyncIterator[ServerSentEvent]:
            meter.watchers.inc()
            try:
                async for event in events:
                    yield _event(event, many)
                    meter.events.inc()
            except DeviceBucketError as exc:
                yield ServerSentEvent(json.dumps({"error": str(exc)}), event="error")
            finally:
                meter.watchers.dec()
                await events.aclose()

        def released() -> None:
            self.open[who] -= 1
            if self.open[who] <= 0:
                del self.open[who]

        return _Counted(released, sent(), ping=self.heartbeat, send_timeout=SEND_TIMEOUT)


class _Counted(EventSourceResponse):
    """A stream that calls ``released`` once it ends, however it ends."""

    def __init__(self, released: Callable[[], None], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._released = released

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._released()
