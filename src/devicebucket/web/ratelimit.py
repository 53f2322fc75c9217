"""How many failed sign-ins (bad bearer tokens, wrong admin tokens on the dashboard) one
client address may make: at most ``per_minute`` in any 60 seconds. Past that, every attempt
from that address, right or wrong, is answered 429 with ``Retry-After`` until the oldest
failure leaves the window. Memory is bounded: the least recently failing addresses are
forgotten first."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

__all__ = ["AUTH_FAILURES_ENV", "DEFAULT_PER_MINUTE", "FailureLimit"]

AUTH_FAILURES_ENV: Final = "DEVICEBUCKET_AUTH_FAILURES_PER_MINUTE"
DEFAULT_PER_MINUTE: Final = 30
_WINDOW: Final = 60.0


class FailureLimit:
    """Failed sign-ins per client address, in a sliding window of one minute."""

    def __init__(
        self,
        per_minute: int,
        addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.addresses = addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str) -> int | None:
        """Seconds until ``address`` may try again, or None if it may now."""
        failures = self._failures.get(address)
        if failures is None:
            return None
        now = self.clock()
        while failures and failures[0] <= now - _WINDOW:
            failures.popleft()
        if len(failures) < self.per_minute:
            return None
        return max(1, math.ceil(failures[0] + _WINDOW - now))

    def failed(self, address: str) -> None:
        failures = self._failures.pop(address, None) or deque(maxlen=self.per_minute)
        failures.append(self.clock())
        self._failures[address] = failures  # the most recent last
        while len(self._failures) > self.addresses:
            self._failures.popitem(last=False)
