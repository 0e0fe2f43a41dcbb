"""Several v4_1 sessions of one user, so that parallel calls really run in parallel.

A SuiteCRM/SugarCRM server keeps a login as a PHP session, and PHP locks a session while a
request that uses it runs: calls that share one session id are served one after another,
whatever the client sends at once. Parallel page reads therefore need one session per call in
flight. The :class:`SessionPool` hands each call a session of its own, logging in another one
only when every session is busy and fewer than ``size`` exist, so a run that makes one call at
a time only ever logs in once. A server that refuses another session (too many sessions for the
user) leaves the pool at the sessions it has.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from crmbridge.errors import ConnectionFailedError

log = logging.getLogger("crmbridge.connectors.sugarcrm")


@dataclass
class Lease:
    """The session one call uses (replaced when it expired)."""

    id: str


class SessionPool:
    """At most ``size`` sessions; thread-safe."""

    def __init__(
        self,
        size: int,
        open_session: Callable[[], str],
        close_session: Callable[[str], None],
        connection: str,
    ) -> None:
        self.size = size
        self._open = open_session
        self._close = close_session
        self._connection = connection
        self._free: list[str] = []
        self._count = 0
        self._ready = threading.Condition()

    @property
    def opened(self) -> int:
        """How many sessions are open now."""
        with self._ready:
            return self._count

    def start(self) -> None:
        """Log in the first session (ConnectionFailedError when refused)."""
        session = self._open()
        with self._ready:
            self._free.append(session)
            self._count += 1

    @contextlib.contextmanager
    def lease(self) -> Iterator[Lease]:
        """A session for one call, returned to the pool afterwards."""
        lease = Lease(self._checkout())
        try:
            yield lease
        finally:
            with self._ready:
                self._free.append(lease.id)
                self._ready.notify()

    def renew(self, lease: Lease) -> None:
        """Replace the expired session of ``lease`` by a new login."""
        lease.id = self._open()

    def close(self) -> None:
        """Log every session out, in parallel (a courtesy: ``close_session`` never raises)."""
        with self._ready:
            sessions, self._free, self._count = self._free, [], 0
        if len(sessions) <= 1:
            for session in sessions:
                self._close(session)
            return
        with ThreadPoolExecutor(len(sessions), thread_name_prefix="sugarcrm-logout") as pool:
            list(pool.map(self._close, sessions))

    def _checkout(self) -> str:
        with self._ready:
            while True:
                if self._free:
                    return self._free.pop()  # the most recently used: sequential runs reuse one
                if self._count < self.size:
                    self._count += 1
                    break
                self._ready.wait()
        try:
            return self._open()
        except ConnectionFailedError as err:
            with self._ready:
                self._count -= 1
                if self._count == 0:
                    raise
                self.size = self._count  # the server allows no more: share the ones we have
                log.info(
                    "connection %r: the CRM refused another session (%s); using %d",
                    self._connection,
                    err,
                    self._count,
                )
            return self._checkout()
