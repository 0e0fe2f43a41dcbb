"""One run per profile at a time: a lock row per profile in the state store.

A run takes its profile's lock before it writes anything and keeps it fresh with a heartbeat;
a second run finds the lock held and waits or stops. A lock whose holder is gone (its process
is dead on this host, or its heartbeat is older than ``stale_after``) is taken over, in one
transaction, so two runs that both find it stale cannot both take it: the second sees the
first's fresh heartbeat. Works the same on SQLite (``BEGIN IMMEDIATE``) and PostgreSQL
(``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from crmbridge.state.tables import locks

#: a lock whose heartbeat is older than this is stale, whatever its process
STALE_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Holder:
    """Who holds a lock."""

    name: str
    token: str
    run_id: int | None
    pid: int
    host: str
    acquired_at: datetime
    heartbeat_at: datetime

    def alive(self, now: datetime, stale_after: timedelta = STALE_AFTER) -> bool:
        """Is the holder still there? Dead process on this host, or no heartbeat: no."""
        if now - self.heartbeat_at > stale_after:
            return False
        if self.host == this_host():
            return process_alive(self.pid)
        return True


@dataclass(frozen=True)
class Acquired:
    """A lock this process holds now; ``took_over`` is the stale holder it replaced."""

    name: str
    token: str
    took_over: Holder | None = None


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


class Locks:
    """The locks of one state store (``StateStore.locks``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def acquire(self, name: str, *, stale_after: timedelta = STALE_AFTER) -> Acquired | Holder:
        """Take lock ``name``: :class:`Acquired`, or the live :class:`Holder` that has it."""
        now = datetime.now(UTC)
        token = uuid.uuid4().hex
        row = {
            "name": name,
            "token": token,
            "run_id": None,
            "pid": os.getpid(),
            "host": this_host(),
            "acquired_at": now,
            "heartbeat_at": now,
        }
        with self._engine.begin() as conn:
            query = locks.select().where(locks.c.name == name)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            found = conn.execute(query).one_or_none()
            if found is None:
                try:
                    with conn.begin_nested():
                        conn.execute(locks.insert().values(**row))
                except sa.exc.IntegrityError:  # another process inserted it just now
                    winner = conn.execute(locks.select().where(locks.c.name == name)).one()
                    return _holder(winner)
                return Acquired(name, token)
            holder = _holder(found)
            if holder.alive(now, stale_after):
                return holder
            conn.execute(
                locks.update()
                .where(locks.c.name == name, locks.c.token == holder.token)
                .values(**row)
            )
            return Acquired(name, token, took_over=holder)

    def assign(self, lock: Acquired, run_id: int) -> None:
        """Say which run holds ``lock`` (for the message another run gets)."""
        with self._engine.begin() as conn:
            conn.execute(
                locks.update()
                .where(locks.c.name == lock.name, locks.c.token == lock.token)
                .values(run_id=run_id)
            )

    def heartbeat(self, lock: Acquired) -> bool:
        """Keep ``lock`` fresh; False when it was taken over (we lost it)."""
        with self._engine.begin() as conn:
            result = conn.execute(
                locks.update()
                .where(locks.c.name == lock.name, locks.c.token == lock.token)
                .values(heartbeat_at=datetime.now(UTC))
            )
        return bool(result.rowcount)

    def release(self, lock: Acquired) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                locks.delete().where(locks.c.name == lock.name, locks.c.token == lock.token)
            )

    def holder(self, name: str) -> Holder | None:
        """Who holds ``name`` now (alive or not), if anyone."""
        with self._engine.begin() as conn:
            found = conn.execute(locks.select().where(locks.c.name == name)).one_or_none()
        return None if found is None else _holder(found)


def _holder(row: sa.Row[Any]) -> Holder:
    m = row._mapping
    return Holder(
        name=str(m["name"]),
        token=str(m["token"]),
        run_id=None if m["run_id"] is None else int(m["run_id"]),
        pid=int(m["pid"]),
        host=str(m["host"]),
        acquired_at=m["acquired_at"],
        heartbeat_at=m["heartbeat_at"],
    )


__all__ = ["STALE_AFTER", "Acquired", "Holder", "Locks", "process_alive", "this_host"]
