"""Fault injection: knobs a test turns to make the sandbox slow, failing, throttling or rude.

Every knob is off by default and may be changed while the server runs (all access is locked).
Each API call takes at most one planned fault, in this order: dropped connection, forced
failure, throttling, lost answer.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedFault:
    """What the next call gets instead of (or after) a normal answer."""

    kind: str  # "drop" | "fail" | "throttle" | "lose"
    status: int = 0
    body: str = ""
    retry_after: float | None = None


class Faults:
    """Thread-safe fault knobs of one QuickBooks sandbox.

    * ``latency``: seconds added to every call;
    * ``fail_next(n, status, body)``: the next n calls answer that status and body, unapplied;
    * ``throttle_next(n, retry_after)``: the next n calls answer 429 ThrottleExceeded;
    * ``drop_next(n)``: the next n calls over a real socket are closed without an answer,
      before anything is applied;
    * ``lose_answer_next(n, only=None)``: the next n calls over a real socket (of the route
      ``only`` names, e.g. ``"POST /batch"``, when given) are *applied*, then the connection
      is closed without an answer (the answer was lost on the way back);
    * ``expire_tokens_after(calls)``: every access token dies after that many API calls
      (401, code 3200); None turns it off. ``expire_tokens()`` ends every live one now.

    ``call_counts()`` counts the calls served per route, faulted ones included, e.g.
    ``{"GET /query": 3, "POST /batch": 1, "POST /oauth2/v1/tokens/bearer": 1}``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency = 0.0
        self._fail: tuple[int, int, str] = (0, 500, "")
        self._throttle: tuple[int, float | None] = (0, None)
        self._drop = 0
        self._lose = 0
        self._lose_only: str | None = None
        self._expire_after: int | None = None
        self._expire_epoch = 0
        self._counts: Counter[str] = Counter()

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = max(0.0, float(seconds))

    @property
    def token_call_limit(self) -> int | None:
        with self._lock:
            return self._expire_after

    @property
    def expire_epoch(self) -> int:
        """Goes up by one at each ``expire_tokens()``: tokens issued before are dead."""
        with self._lock:
            return self._expire_epoch

    def fail_next(self, n: int, status: int = 500, body: str = "") -> None:
        with self._lock:
            self._fail = (max(0, n), status, body)

    def throttle_next(self, n: int, retry_after: float | None = None) -> None:
        with self._lock:
            self._throttle = (max(0, n), retry_after)

    def drop_next(self, n: int) -> None:
        with self._lock:
            self._drop = max(0, n)

    def lose_answer_next(self, n: int, only: str | None = None) -> None:
        with self._lock:
            self._lose = max(0, n)
            self._lose_only = only

    def expire_tokens_after(self, calls: int | None) -> None:
        with self._lock:
            self._expire_after = None if calls is None else max(0, calls)

    def expire_tokens(self) -> None:
        with self._lock:
            self._expire_epoch += 1

    def reset(self) -> None:
        """Every knob off and every counter back to zero."""
        with self._lock:
            self._latency = 0.0
            self._fail = (0, 500, "")
            self._throttle = (0, None)
            self._drop = self._lose = 0
            self._lose_only = None
            self._expire_after = None
            self._counts.clear()

    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def begin_call(self, name: str, *, real_socket: bool) -> PlannedFault | None:
        """Count one call and take the fault planned for it, if any."""
        with self._lock:
            self._counts[name] += 1
            if self._drop and real_socket:
                self._drop -= 1
                return PlannedFault("drop")
            n, status, body = self._fail
            if n:
                self._fail = (n - 1, status, body)
                return PlannedFault("fail", status=status, body=body)
            left, retry_after = self._throttle
            if left:
                self._throttle = (left - 1, retry_after)
                return PlannedFault("throttle", status=429, retry_after=retry_after)
            if self._lose and real_socket and self._lose_only in (None, name):
                self._lose -= 1
                return PlannedFault("lose")
            return None
