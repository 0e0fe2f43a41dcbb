"""Login sessions (v4_1 PHP sessions) and OAuth2 tokens (v10), kept in memory.

A v4_1 session lapses after ``idle_timeout`` seconds without a call. An access token lives
``TOKEN_TTL`` seconds; a refresh token ``REFRESH_TTL``. A new password grant for the same user
and ``platform`` ends the previous token pair (Sugar allows one live session per platform).
Both die early when :meth:`Faults.expire_sessions_after` says so.

Like PHP's file sessions, a session is locked while a call that uses it runs
(:meth:`Sessions.locked`): calls sharing one session id (v4_1) or token (v10, which Sugar uses
as the PHP session id) are served one after another, calls of different sessions in parallel.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from crmbridge.sandbox.sugarcrm.faults import Faults

TOKEN_TTL = 3600
REFRESH_TTL = 1209600


@dataclass
class Session:
    """One live login."""

    user_id: str
    expires_at: float  # monotonic deadline (idle deadline for v4_1, absolute for tokens)
    calls: int = 0
    platform: str = ""
    refresh_token: str = ""


class Sessions:
    """Thread-safe registry of v4_1 sessions and v10 tokens."""

    def __init__(self, faults: Faults, idle_timeout: float) -> None:
        self._faults = faults
        self._idle = idle_timeout
        self._lock = threading.Lock()
        self._v4: dict[str, Session] = {}
        self._tokens: dict[str, Session] = {}
        self._refresh: dict[str, tuple[str, str, float]] = {}  # token -> user, platform, deadline
        self._call_locks: dict[str, threading.Lock] = {}

    @contextlib.contextmanager
    def locked(self, key: str | None) -> Iterator[None]:
        """Hold the lock of session ``key`` (None: a call without a session) while serving."""
        if not key:
            yield
            return
        with self._lock:
            lock = self._call_locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def login_v4(self, user_id: str) -> str:
        """A new PHP-like session id (26 characters of [0-9a-v])."""
        sid = "".join(secrets.choice("0123456789abcdefghijklmnopqrstuv") for _ in range(26))
        with self._lock:
            self._v4[sid] = Session(user_id, time.monotonic() + self._idle)
        return sid

    def use_v4(self, sid: Any) -> str | None:
        """The user id of a live session (counting one call), or None when it is invalid."""
        if not isinstance(sid, str):
            return None
        with self._lock:
            session = self._v4.get(sid)
            if session is None or not self._alive(session):
                self._v4.pop(sid, None)
                return None
            session.expires_at = time.monotonic() + self._idle
            return session.user_id

    def logout_v4(self, sid: Any) -> None:
        with self._lock:
            self._v4.pop(str(sid), None)

    def grant(self, user_id: str, platform: str) -> dict[str, Any]:
        """A new token pair for ``user_id`` on ``platform`` (ending that platform's old pair)."""
        with self._lock:
            for token, session in list(self._tokens.items()):
                if session.user_id == user_id and session.platform == platform:
                    del self._tokens[token]
                    self._refresh.pop(session.refresh_token, None)
            access = secrets.token_hex(18)
            refresh = secrets.token_hex(18)
            now = time.monotonic()
            self._tokens[access] = Session(user_id, now + TOKEN_TTL, 0, platform, refresh)
            self._refresh[refresh] = (user_id, platform, now + REFRESH_TTL)
        return {
            "access_token": access,
            "expires_in": TOKEN_TTL,
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
            "refresh_expires_in": REFRESH_TTL,
            "download_token": secrets.token_hex(18),
        }

    def refresh(self, refresh_token: str) -> dict[str, Any] | None:
        """A new token pair for a live refresh token (which is used up), or None."""
        with self._lock:
            entry = self._refresh.pop(refresh_token, None)
        if entry is None or entry[2] < time.monotonic():
            return None
        return self.grant(entry[0], entry[1])

    def use_token(self, token: str | None) -> str | None:
        """The user id of a live access token (counting one call), or None."""
        if not token:
            return None
        with self._lock:
            session = self._tokens.get(token)
            if session is None or not self._alive(session):
                self._tokens.pop(token, None)
                return None
            return session.user_id

    def logout_token(self, token: str | None) -> None:
        with self._lock:
            session = self._tokens.pop(token or "", None)
            if session:
                self._refresh.pop(session.refresh_token, None)

    def _alive(self, session: Session) -> bool:
        if session.expires_at < time.monotonic():
            return False
        limit = self._faults.session_call_limit
        session.calls += 1
        return limit is None or session.calls <= limit
