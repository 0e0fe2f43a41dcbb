"""Throttling per company: requests a minute, batch requests a minute, calls at once.

Beyond a limit the API answers 429 ThrottleExceeded (code 3001). Requests refused this way
are not counted against the minute.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class Throttle:
    def __init__(
        self,
        per_minute: int = 500,
        batch_per_minute: int = 40,
        concurrent: int = 10,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.batch_per_minute = batch_per_minute
        self.concurrent = concurrent
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._calls: deque[float] = deque()
        self._batches: deque[float] = deque()
        self._running = 0

    def enter(self, *, batch: bool) -> bool:
        """Admit one request (False: answer 429). Every admitted request must ``leave()``."""
        now = self._monotonic()
        with self._lock:
            for window in (self._calls, self._batches):
                while window and window[0] <= now - 60.0:
                    window.popleft()
            if self._running >= self.concurrent or len(self._calls) >= self.per_minute:
                return False
            if batch and len(self._batches) >= self.batch_per_minute:
                return False
            self._calls.append(now)
            if batch:
                self._batches.append(now)
            self._running += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._running -= 1

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._batches.clear()
