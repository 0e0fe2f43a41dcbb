"""Building the SQLAlchemy engine of a state store: SQLite (default) or PostgreSQL.

SQLite is set up for several crmbridge processes sharing one file: WAL journal (readers never
block the writer), a 30 s busy timeout, and every transaction started with ``BEGIN IMMEDIATE``
so a transaction takes the write lock up front instead of failing when it upgrades a read
lock. pysqlite's own implicit transaction handling is switched off so DDL is transactional
too (a failed migration leaves nothing behind).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from crmbridge.errors import ConfigError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_S = 30


def display_url(url: sa.URL) -> str:
    """The URL with its password hidden, for messages."""
    return url.render_as_string(hide_password=True)


def parse_url(url: str) -> sa.URL:
    """Parse and check a state store URL; ``postgresql://`` means the psycopg driver."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        # the text may hold a password: do not echo it
        raise ConfigError(
            "the state store URL is not a database URL; expected sqlite:///path/state.sqlite "
            "or postgresql://user@host/database"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"the state store cannot be on {backend!r} ({display_url(parsed)}); "
            f"use SQLite or PostgreSQL"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_state_engine(url: sa.URL) -> sa.Engine:
    """An engine for ``url`` (from :func:`parse_url`); creates a SQLite file's folder (0700)."""
    if url.get_backend_name() != "sqlite":
        try:
            return sa.create_engine(url, pool_pre_ping=True)
        except sa.exc.NoSuchModuleError:
            raise ConfigError(
                f"unknown database driver in the state store URL {display_url(url)}; "
                f"use postgresql+psycopg://"
            ) from None
        except ImportError as err:
            raise ConfigError(
                f"the state store {display_url(url)} needs a database driver that is not "
                f"installed ({err.name}); install it with: pip install 'crmbridge[postgres]'"
            ) from err
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_on_begin)
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        _wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """Switch to WAL. Switching takes a lock that SQLite does not wait for with the busy
    timeout when several processes open a new store at once, so try again for a while."""
    for attempt in range(200):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or attempt == 199:
                raise
            time.sleep(0.05)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")
