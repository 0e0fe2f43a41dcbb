"""Fault injection: knobs a test turns to make the sandbox slow, failing or rude.

Every knob is off by default and may be changed while the server runs (all access is locked).
Each API call (one HTTP request) takes at most one planned fault, in this order: dropped
connection, forced failure, answer lost after the call was applied.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedFault:
    """What the next call gets instead of a normal answer."""

    kind: str  # "drop" | "fail" | "lose"
    status: int = 0
    body: str = ""


class Faults:
    """Thread-safe fault knobs.

    * ``latency``: seconds added to every call;
    * ``fail_next(n, status, body)``: the next n calls answer that status and body, without
      doing anything (e.g. 503, or 500 with a Salesforce error list);
    * ``drop_next(n)``: the next n calls are closed without an answer, without doing anything;
    * ``lose_next(n, after=k)``: the next n calls (after k more that go through) are carried
      out, then closed without an answer (the client cannot tell whether they were applied);
    * ``expire_sessions_after(calls)``: every access token dies after that many calls
      (401 ``INVALID_SESSION_ID``); None turns it off.

    Only calls over a real socket are dropped or lost (in-process WSGI calls do not use up
    those counts). ``calls`` counts every call served, faulted ones included;
    ``call_counts()`` splits it per route, e.g. ``{"GET query": 3, "POST composite/sobjects":
    1, "POST oauth2/token": 1}``. ``only`` restricts a drop / fail / lose knob to the calls
    whose route contains that text (e.g. ``"composite/sobjects"``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency = 0.0
        self._fail: tuple[int, int, str] = (0, 500, "")
        self._drop = 0
        self._lose = 0
        self._lose_after = 0
        #: per knob: the text a route must contain for the knob to apply (None: any route)
        self._only: dict[str, str | None] = {"fail": None, "drop": None, "lose": None}
        self._expire_after: int | None = None
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

    @property
    def session_call_limit(self) -> int | None:
        with self._lock:
            return self._expire_after

    def fail_next(
        self, n: int, status: int = 500, body: str = "", *, only: str | None = None
    ) -> None:
        with self._lock:
            self._fail = (max(0, n), status, body)
            self._only["fail"] = only

    def drop_next(self, n: int, *, only: str | None = None) -> None:
        with self._lock:
            self._drop = max(0, n)
            self._only["drop"] = only

    def lose_next(self, n: int, *, only: str | None = None, after: int = 0) -> None:
        with self._lock:
            self._lose = max(0, n)
            self._lose_after = max(0, after)
            self._only["lose"] = only

    def expire_sessions_after(self, calls: int | None) -> None:
        with self._lock:
            self._expire_after = None if calls is None else max(0, calls)

    def reset(self) -> None:
        with self._lock:
            self._latency = 0.0
            self._fail = (0, 500, "")
            self._drop = self._lose = self._lose_after = 0
            self._only = {"fail": None, "drop": None, "lose": None}
            self._expire_after = None
            self._counts.clear()

    def call_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _applies(self, knob: str, name: str) -> bool:
        only = self._only[knob]
        return only is None or only in name

    def begin_call(self, name: str, *, real_socket: bool) -> PlannedFault | None:
        """Count one call and take the fault planned for it, if any."""
        with self._lock:
            self._counts[name] += 1
            if self._drop and real_socket and self._applies("drop", name):
                self._drop -= 1
                return PlannedFault("drop")
            n, status, body = self._fail
            if n and self._applies("fail", name):
                self._fail = (n - 1, status, body)
                return PlannedFault("fail", status=status, body=body)
            if self._lose and real_socket and self._applies("lose", name):
                if self._lose_after:
                    self._lose_after -= 1
                    return None
                self._lose -= 1
                return PlannedFault("lose")
            return None
