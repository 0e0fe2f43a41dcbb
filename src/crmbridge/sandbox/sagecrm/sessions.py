"""Web service sessions: one per user, each with at most one open ``query`` cursor.

A second ``logon`` of a user ends that user's first session. A cursor holds the ids a
``query``, ``queryrecord`` or ``queryid`` matched (a snapshot) and how far ``next`` got; any
other call made with the session closes it, so paging cannot resume elsewhere.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: renders one batch of ids (records, crmrecords or aisids) for an answer
Render = Callable[[Sequence[Any]], Any]


@dataclass
class Cursor:
    items: Sequence[Any]
    render: Render
    position: int = 0


@dataclass
class Session:
    sid: str
    user_id: int
    cursor: Cursor | None = field(default=None)


class Sessions:
    """Thread-safe registry of the live sessions and the bad-password counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_sid: dict[str, Session] = {}
        self._failures: dict[str, int] = {}

    def logon(self, user_id: int) -> str:
        """A new session for ``user_id``; the user's previous session ends."""
        sid = secrets.token_hex(10)
        with self._lock:
            for old in [s for s in self._by_sid.values() if s.user_id == user_id]:
                del self._by_sid[old.sid]
            self._by_sid[sid] = Session(sid, user_id)
        return sid

    def get(self, sid: str | None) -> Session | None:
        with self._lock:
            return self._by_sid.get(sid or "")

    def logoff(self, sid: str | None) -> bool:
        with self._lock:
            return self._by_sid.pop(sid or "", None) is not None

    def end(self, sid: str | None) -> None:
        """End a session as another logon of its user would."""
        self.logoff(sid)

    def live_users(self) -> list[int]:
        with self._lock:
            return sorted(s.user_id for s in self._by_sid.values())

    def failed_password(self, logon: str) -> int:
        """Count one wrong password for ``logon``; the consecutive count so far."""
        with self._lock:
            self._failures[logon] = self._failures.get(logon, 0) + 1
            return self._failures[logon]

    def failures(self, logon: str) -> int:
        with self._lock:
            return self._failures.get(logon, 0)

    def good_password(self, logon: str) -> None:
        with self._lock:
            self._failures.pop(logon, None)
