"""Watching the org's daily API quota through the ``Sforce-Limit-Info`` answer header.

Every answer says ``api-usage=USED/LIMIT``. Once ``USED/LIMIT`` reaches ``slow_down`` each
further call waits first (longer the closer the quota gets to ``stop``); at ``stop`` the next
call is not made and a :class:`QuotaError` says why.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from crmbridge.connectors.salesforce.failures import QuotaError
from crmbridge.errors import ErrorContext

_USAGE = re.compile(r"(?:^|[;,\s])api-usage=(\d+)/(\d+)")
MAX_PAUSE_FACTOR = 10.0


def parse_usage(header: str | None) -> tuple[int, int] | None:
    """(used, limit) from a ``Sforce-Limit-Info`` value, or None."""
    match = _USAGE.search(header or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


class QuotaWatch:
    """The last usage seen on a connection, and what it means for the next call."""

    def __init__(
        self,
        *,
        slow_down: float,
        stop: float,
        pause: float,
        sleep: Callable[[float], None],
        context: ErrorContext,
    ) -> None:
        self.slow_down = slow_down
        self.stop = stop
        self.pause = pause
        self._sleep = sleep
        self._context = context
        self._lock = threading.Lock()
        self.used: int | None = None
        self.limit: int | None = None
        self.paused = 0.0

    def observe(self, header: str | None) -> None:
        usage = parse_usage(header)
        if usage is None:
            return
        with self._lock:
            self.used, self.limit = usage

    @property
    def share(self) -> float | None:
        with self._lock:
            if self.used is None or not self.limit:
                return None
            return self.used / self.limit

    def describe(self) -> str:
        with self._lock:
            if self.used is None or not self.limit:
                return "unknown"
            return f"{self.used:,} of {self.limit:,} ({self.used / self.limit:.0%})"

    def before_call(self, what: str) -> None:
        """Wait or stop before a call, as the last usage seen asks."""
        share = self.share
        if share is None or share < self.slow_down:
            return
        if share >= self.stop:
            raise QuotaError(
                f"{what}: {self.describe()} daily API requests are used; stopping before the "
                f"quota runs out (quota_stop {self.stop:.0%}). Run again after the org's "
                "24-hour window frees requests, or raise quota_stop",
                context=self._context,
            )
        span = max(self.stop - self.slow_down, 1e-9)
        factor = 1.0 + (MAX_PAUSE_FACTOR - 1.0) * (share - self.slow_down) / span
        seconds = self.pause * factor
        with self._lock:
            self.paused += seconds
        self._sleep(seconds)
