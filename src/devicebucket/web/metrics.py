"""Prometheus metrics of one app, labelled by route template (never by device, key or value)."""

from __future__ import annotations

import os
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["MULTIPROC_ENV", "Metrics"]

#: Set (by ``serve --workers N``) to a directory: every worker counts there, and a scrape of
#: any worker reports the sum (``prometheus_client``'s multiprocess mode).
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """Prometheus metrics of one app (its own registry, so apps never share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "devicebucket_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "devicebucket_request_duration_seconds",
            "Request latency by route template and method",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.store_errors = Counter(
            "devicebucket_store_errors",
            "Requests that failed because the store was unavailable, by route template",
            ["route"],
            registry=self.registry,
        )
        self.watchers = Gauge(
            "devicebucket_watchers",
            "Open watches (event streams) of buckets",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.events = Counter(
            "devicebucket_events_sent",
            "Changes sent to watchers",
            registry=self.registry,
        )
        self.shared = os.environ.get(MULTIPROC_ENV) or None
        # Labelled children, looked up once: labels() takes a lock and builds tuples.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def exposition(self) -> bytes:
        """The text a scrape gets: this app's metrics, or every worker's summed."""
        if self.shared is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.shared)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        children = self._children.get((route, method, status))
        if children is None:
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[(route, method, status)] = children
        children[0].inc()
        children[1].observe(seconds)
        if status == 503:
            self.store_errors.labels(route).inc()
