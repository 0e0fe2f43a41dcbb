"""One web service session per server and user in this process.

Sage CRM keeps one session per user: a second ``logon`` ends the first. So connectors of the
same server and user (a source and a target, two profiles in one process) share one session:
the first logs on, the last logs off, and calls take turns (``lock``). A refused logon is
remembered, so no second attempt is made with the same password (repeated bad passwords lock
the account).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

from crmbridge.errors import ConnectionFailedError

_POOL: dict[tuple[str, str], SharedSession] = {}
_POOL_LOCK = threading.Lock()


class SharedSession:
    """The session of one server and user, shared by every connector that uses them."""

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        #: held for the length of one call
        self.lock = threading.RLock()
        self._state = threading.Lock()
        self._sid: str | None = None
        self._users = 0
        self._refused: dict[str, ConnectionFailedError] = {}

    @property
    def sid(self) -> str:
        with self._state:
            if self._sid is None:
                raise ConnectionFailedError("not logged on (the connection was closed)")
            return self._sid

    def attach(self, logon: Callable[[], str], password: str) -> None:
        """Join the session, logging on when there is none yet."""
        fingerprint = hashlib.sha256(password.encode()).hexdigest()
        with self._state:
            refused = self._refused.get(fingerprint)
            if refused is not None:
                raise ConnectionFailedError(refused.message, context=refused.context)
            if self._sid is None:
                try:
                    self._sid = logon()
                except ConnectionFailedError as err:
                    self._refused[fingerprint] = err
                    raise
            self._users += 1

    def renew(self, old_sid: str, logon: Callable[[], str], password: str) -> None:
        """Log on again after ``old_sid`` ended (unless another user of it did already); a
        refused password is remembered as in :meth:`attach`."""
        fingerprint = hashlib.sha256(password.encode()).hexdigest()
        with self._state:
            refused = self._refused.get(fingerprint)
            if refused is not None:
                raise ConnectionFailedError(refused.message, context=refused.context)
            if self._sid == old_sid:
                try:
                    self._sid = logon()
                except ConnectionFailedError as err:
                    self._refused[fingerprint] = err
                    raise

    def detach(self, logoff: Callable[[str], None]) -> None:
        """Leave the session; the last one out logs off."""
        with self._state:
            self._users = max(0, self._users - 1)
            if self._users or self._sid is None:
                return
            sid, self._sid = self._sid, None
        logoff(sid)


def shared_session(endpoint: str, user: str) -> SharedSession:
    """The SharedSession of ``endpoint`` and ``user`` (made on first use)."""
    key = (endpoint.rstrip("/").lower(), user.lower())
    with _POOL_LOCK:
        if key not in _POOL:
            _POOL[key] = SharedSession(key)
        return _POOL[key]
