"""Fault injection: knobs a test turns to make the sandbox slow, failing, throttling or rude.

Every knob is off by default and may be changed while the server runs (all access is locked).
Each API call (one HTTP request to ``rest.php`` or ``/rest/...``) takes at most one planned
fault, in this order: dropped connection, forced failure, throttling.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class PlannedFault:
    """What the next call gets instead of a normal answer."""

    kind: str  # "drop" | "fail" | "throttle"
    status: int = 0
    body: str = ""
    retry_after: float = 0.0


class Faults:
    """Thread-safe fault knobs shared by both API families.

    * ``latency``: seconds added to every call;
    * ``fail_next(n, status, body)``: the next n calls answer that status and body;
    * ``throttle_next(n, retry_after)``: the next n calls answer 429 with ``Retry-After``;
    * ``expire_sessions_after(calls)``: every session or token dies after that many calls
      (v4_1 error 11, v10 401 ``need_login``); None turns it off;
    * ``drop_next(n)``: the next n calls over a real socket get the connection closed without
      an answer (in-process WSGI calls are not dropped and do not use up the count);
    * ``lose_answer_next(n, how, match)``: the next n calls whose name contains ``match`` are
      carried out, and then their answer is lost: an HTTP 500 (``how="500"``) or, over a real
      socket, a dropped connection (``how="drop"``) — "applied, but the client cannot tell";
    * ``fail_lead_deletes_with_notes(n)``: the next n deletes of a Lead that has Notes are
      applied, and then the call answers HTTP 500 (SuiteCRM 7.14.6 once did, a PHP error in
      SugarRelationship.php after the delete).

    ``calls`` counts every API call served, faulted ones included; ``call_counts()`` splits it
    per method, e.g. ``{"v4_1:get_entry_list": 12, "v10:GET /Accounts": 3}``.
    ``peak_parallel_calls`` is the most calls that were being served at the same moment.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency = 0.0
        self._fail: tuple[int, int, str] = (0, 500, "")
        self._throttle: tuple[int, float] = (0, 1.0)
        self._drop = 0
        self._expire_after: int | None = None
        self._lose: tuple[int, str, str] = (0, "500", "")
        self._counts: Counter[str] = Counter()
        self._lead_deletes = 0
        self._serving = 0
        self._peak = 0

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
        """The number of calls a session or token survives, or None for no limit."""
        with self._lock:
            return self._expire_after

    def fail_next(self, n: int, status: int = 500, body: str = "") -> None:
        """The next ``n`` calls answer HTTP ``status`` with ``body``."""
        with self._lock:
            self._fail = (max(0, n), status, body)

    def throttle_next(self, n: int, retry_after: float = 1.0) -> None:
        """The next ``n`` calls answer HTTP 429 with a ``Retry-After`` of ``retry_after`` s."""
        with self._lock:
            self._throttle = (max(0, n), retry_after)

    def expire_sessions_after(self, calls: int | None) -> None:
        """Every session/token dies after ``calls`` calls made with it (None: never)."""
        with self._lock:
            self._expire_after = None if calls is None else max(0, calls)

    def drop_next(self, n: int) -> None:
        """The next ``n`` calls over a real socket are closed without an answer."""
        with self._lock:
            self._drop = max(0, n)

    def lose_answer_next(self, n: int, how: str = "500", match: str = "") -> None:
        """The next ``n`` calls whose name contains ``match`` are applied, then answered with
        HTTP 500 (``how="500"``) or a dropped connection (``how="drop"``, real sockets)."""
        if how not in ("500", "drop"):
            raise ValueError(f"how must be '500' or 'drop', not {how!r}")
        with self._lock:
            self._lose = (max(0, n), how, match)

    def answer_lost(self, name: str, *, real_socket: bool) -> str | None:
        """After call ``name`` was carried out: how its answer is lost, or None."""
        with self._lock:
            n, how, match = self._lose
            if not n or match not in name or (how == "drop" and not real_socket):
                return None
            self._lose = (n - 1, how, match)
            return how

    def fail_lead_deletes_with_notes(self, n: int) -> None:
        """The next ``n`` deletes of a Lead with Notes are applied, then answered HTTP 500."""
        with self._lock:
            self._lead_deletes = max(0, n)

    def take_lead_delete_failure(self) -> bool:
        """Whether the delete of a Lead with Notes being served now fails (uses one up)."""
        with self._lock:
            if not self._lead_deletes:
                return False
            self._lead_deletes -= 1
            return True

    @property
    def peak_parallel_calls(self) -> int:
        with self._lock:
            return self._peak

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count a call as being served while the block runs (for ``peak_parallel_calls``)."""
        with self._lock:
            self._serving += 1
            self._peak = max(self._peak, self._serving)
        try:
            yield
        finally:
            with self._lock:
                self._serving -= 1

    def reset(self) -> None:
        """Every knob off and every counter back to zero."""
        with self._lock:
            self._lose = (0, "500", "")
            self._lead_deletes = 0
            self._peak = 0
            self._latency = 0.0
            self._fail = (0, 500, "")
            self._throttle = (0, 1.0)
            self._drop = 0
            self._expire_after = None
            self._counts.clear()

    def call_counts(self) -> dict[str, int]:
        """Calls served per method (``"v4_1:<method>"``, ``"v10:<VERB> <route>"``)."""
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
            return None
