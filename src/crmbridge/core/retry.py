"""Retries: the one policy of how often and how long to wait before trying again.

Two kinds of call are retried, each in one place:

* a request the remote system **cannot have acted on** (HTTP 429 or 503, a refused
  connection, a read) is sent again by the connector's transport;
* a write that **may have been applied** (:class:`~crmbridge.errors.AmbiguousWriteError`) or
  failed transiently (:class:`~crmbridge.errors.RetryableError`) goes up to the engine, which
  repeats the same operations (``ApplyRequest.attempt``); the target confirms what it finds
  already applied.

Both wait as :class:`RetryPolicy` says: exponential backoff with jitter, never shorter than
what the server asked for (``Retry-After``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from crmbridge.errors import RetryableError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    #: tries in all, the first included
    attempts: int = 4
    #: the pause before the second try, in seconds; doubled before each further one
    backoff: float = 0.5
    #: no pause is longer than this (unless the server asks for longer)
    max_pause: float = 60.0

    def pause(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        base = min(self.max_pause, self.backoff * 2 ** (attempt - 1))
        return float(max(base * random.uniform(0.5, 1.5), retry_after or 0.0))


def with_retries(
    call: Callable[[int], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, RetryableError, float], None] | None = None,
) -> T:
    """``call(attempt)`` until it does not raise a RetryableError, at most
    ``policy.attempts`` times; the last error is raised as it is."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return call(attempt)
        except RetryableError as err:
            if attempt == policy.attempts:
                raise
            pause = policy.pause(attempt, err.retry_after)
            if on_retry is not None:
                on_retry(attempt, err, pause)
            sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


__all__ = ["RetryPolicy", "with_retries"]
