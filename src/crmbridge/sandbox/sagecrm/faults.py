"""Fault injection: knobs a test turns to make the sandbox slow, failing or rude.

Every knob is off by default and may be changed while the server runs (all access is locked).
Each call (one HTTP request to the SOAP endpoint or a REST route) takes at most one planned
fault, in this order: dropped connection, forced failure, session taken over, answer lost.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedFault:
    """What the next call gets instead of a normal answer."""

    kind: str  # "drop" | "fail" | "take_over" | "lose_answer"
    status: int = 0
    body: str = ""


class Faults:
    """Thread-safe fault knobs shared by both APIs.

    * ``latency``: seconds added to every call;
    * ``fail_next(n, status, body)``: the next n calls answer that HTTP status and body
      without doing anything;
    * ``drop_next(n)``: the next n calls over a real socket get the connection closed without an
      answer, without doing anything (in-process calls are not dropped and keep the count);
    * ``take_over_next(n)``: the next n SOAP calls that carry a session find it ended, as when
      another program logs on with the same user (the session is gone for good);
    * ``lose_answer_next(n, call=None)``: the next n calls (of the operation ``call`` names,
      e.g. ``"soap:add"`` or ``"rest:POST company"``, when given) are carried out, then the
      connection is closed without an answer (in-process: HTTP 504) - "applied, then the
      answer was lost".

    ``calls`` counts every call served, faulted ones included; ``call_counts()`` splits it per
    operation, e.g. ``{"soap:query": 3, "rest:GET company": 2}``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency = 0.0
        self._fail: tuple[int, int, str] = (0, 500, "")
        self._drop = 0
        self._take_over = 0
        self._lose = 0
        self._lose_call: str | None = None
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
    def calls(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def fail_next(self, n: int, status: int = 500, body: str = "") -> None:
        with self._lock:
            self._fail = (max(0, n), status, body)

    def drop_next(self, n: int) -> None:
        with self._lock:
            self._drop = max(0, n)

    def take_over_next(self, n: int = 1) -> None:
        with self._lock:
            self._take_over = max(0, n)

    def lose_answer_next(self, n: int = 1, call: str | None = None) -> None:
        with self._lock:
            self._lose = max(0, n)
            self._lose_call = call

    def reset(self) -> None:
        """Every knob off and every counter back to zero."""
        with self._lock:
            self._latency = 0.0
            self._fail = (0, 500, "")
            self._drop = self._take_over = self._lose = 0
            self._lose_call = None
            self._counts.clear()

    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def begin_call(self, name: str, *, real_socket: bool, has_session: bool) -> PlannedFault | None:
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
            if self._take_over and has_session:
                self._take_over -= 1
                return PlannedFault("take_over")
            if self._lose and self._lose_call in (None, name):
                self._lose -= 1
                return PlannedFault("lose_answer")
            return None
