"""The dashboard, live: the event streams its pages follow (a device's buckets, the whole
fleet), values of secret-looking keys masked, and the Activity page (the latest changes
across the fleet and a chart of writes per minute over the last hour)."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from ..core.ids import check_id
from ..core.masking import mask_secrets
from ..core.store import Store
from ..core.watching import BucketChange, Event, Overflow, Resync
from .streams import Watches

__all__ = ["Bar", "LivePages", "masked_event"]

#: How wide the chart is, and how tall its tallest bar.
_CHART_WIDTH, _CHART_HEIGHT = 600, 80


class Pages(Protocol):
    store: Store
    secret_keys: tuple[str, ...]
    watches: Watches

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse: ...


@dataclass(frozen=True, slots=True)
class Bar:
    """One minute of the activity chart, placed in its SVG."""

    at: float
    writes: int
    x: float
    y: float
    height: float


def masked_event(event: Event | Overflow, secret_keys: tuple[str, ...]) -> Event | Overflow:
    """The event as a dashboard may show it: values of secret-looking keys masked."""
    if isinstance(event, Resync):
        return Resync(
            event.device, event.job, event.version, mask_secrets(event.bucket, secret_keys)
        )
    if isinstance(event, BucketChange):
        changed = mask_secrets(event.changed, secret_keys)
        return BucketChange(
            event.device, event.job, event.version, event.at, event.actor, changed, event.removed
        )
    return event


def bars(minutes: list[tuple[float, int]]) -> list[Bar]:
    """The chart's bars, the tallest ``_CHART_HEIGHT`` high."""
    top = max((writes for _, writes in minutes), default=0) or 1
    width = _CHART_WIDTH / max(1, len(minutes))
    found = []
    for i, (at, writes) in enumerate(minutes):
        height = round(writes / top * _CHART_HEIGHT, 1)
        found.append(Bar(at, writes, round(i * width, 1), _CHART_HEIGHT - height, height))
    return found


class LivePages:
    """The live parts of one dashboard."""

    def __init__(self, ui: Pages) -> None:
        self.ui = ui

    def _stream(
        self, session: dict[str, str], events: AsyncGenerator[Event | Overflow, None]
    ) -> Response:
        secret_keys = self.ui.secret_keys

        async def masked() -> AsyncGenerator[Event | Overflow, None]:
            try:
                async for event in events:
                    yield masked_event(event, secret_keys)
            finally:
                await events.aclose()

        return self.ui.watches.stream(f"dashboard:{session['token']}", masked(), many=True)

    async def device_changes(self, request: Request, session: dict[str, str]) -> Response:
        """The changes of every bucket of one device, for its page."""
        device = check_id(request.path_params["device"])
        return self._stream(session, self.ui.store.watch_buckets(device))

    async def fleet_changes(self, request: Request, session: dict[str, str]) -> Response:
        """The changes of every bucket, for the Activity page."""
        return self._stream(session, self.ui.store.watch_buckets())

    async def activity(self, request: Request, session: dict[str, str]) -> HTMLResponse:
        store = self.ui.store
        minutes = await store.activity(minutes=60)
        latest = await store.latest_changes(limit=50)
        return self.ui.render(
            "activity.html",
            session=session,
            bars=bars(minutes),
            total=sum(writes for _, writes in minutes),
            width=_CHART_WIDTH,
            height=_CHART_HEIGHT,
            latest=latest,
            now=time.time(),
        )
