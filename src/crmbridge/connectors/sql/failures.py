"""Database errors turned into crmbridge errors with secret-free messages.

Three kinds matter to a write:

* a problem with one row (NOT NULL, CHECK, foreign key, unique, value too long, bad value):
  :func:`is_row_error`; the writer isolates the row and rejects it with :func:`db_message`;
* a transient failure (deadlock, serialization failure, lost connection): RetryableError;
* anything else (permissions, a missing column): RemoteError.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

from crmbridge.errors import (
    ConnectionFailedError,
    CrmBridgeError,
    ErrorContext,
    RemoteError,
    RetryableError,
    redact,
)

#: PostgreSQL SQLSTATEs (or their first two characters, the class) worth retrying
_PG_RETRY = ("40001", "40P01", "55P03", "57P01", "57P02", "57P03", "08", "53")
#: MySQL / MariaDB error numbers worth retrying: deadlock, lock wait timeout, gone away, lost,
#: too many connections, connection killed, cannot connect
_MY_RETRY = frozenset({1205, 1213, 2003, 2006, 2013, 1040, 1927})
#: MySQL / MariaDB error numbers caused by one row's values or constraints
_MY_ROW = frozenset(
    {1048, 1062, 1169, 1216, 1217, 1263, 1264, 1265, 1292, 1364, 1366, 1406, 1451, 1452,
     1586, 3819, 4025, 4078}
)  # fmt: skip


def _sqlstate(err: sa.exc.DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE (psycopg)."""
    return getattr(err.orig, "sqlstate", None)


def _mysql_errno(err: sa.exc.DBAPIError) -> int | None:
    """MySQL's error number (pymysql errors are ``(errno, message)``)."""
    args: tuple[Any, ...] = getattr(err.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_retryable(err: sa.exc.DBAPIError) -> bool:
    """A deadlock, serialization failure, lock timeout or lost connection."""
    if err.connection_invalidated:
        return True
    errno = _mysql_errno(err)
    if errno is not None:
        return errno in _MY_RETRY
    state = _sqlstate(err)
    if state is not None:
        return state.startswith(_PG_RETRY)
    return isinstance(err, sa.exc.OperationalError) and "database is locked" in str(err.orig)


def is_row_error(err: sa.exc.DBAPIError) -> bool:
    """The statement failed because of the values or constraints of (some of) its rows."""
    errno = _mysql_errno(err)
    if errno is not None:
        return errno in _MY_ROW
    state = _sqlstate(err)
    if state is not None:
        return state[:2] in ("22", "23")
    return isinstance(err, sa.exc.IntegrityError | sa.exc.DataError)


def db_message(err: BaseException, secrets: Iterable[str | SecretStr] = ()) -> str:
    """The database's own message, first line only, without the SQL or any secret."""
    orig = getattr(err, "orig", None) or err
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]  # pymysql: (errno, message)
    else:
        text = str(orig)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return redact(lines[0] if lines else type(orig).__name__, secrets)


@contextmanager
def driver_errors(conn: sa.Connection, statement: str) -> Iterator[None]:
    """Raise the DB-API errors of code that uses the driver directly (COPY, raw cursors)
    wrapped like SQLAlchemy wraps them, so they are classified the same way."""
    dbapi = conn.dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as err:
        lost = conn.dialect.is_disconnect(err, None, None)
        raise sa.exc.DBAPIError.instance(
            statement, None, err, dbapi.Error, connection_invalidated=lost
        ) from err


def translate(
    err: sa.exc.SQLAlchemyError,
    doing: str,
    *,
    context: ErrorContext,
    secrets: Iterable[str | SecretStr] = (),
) -> CrmBridgeError:
    """The crmbridge error for a failed database call; ``doing`` says what failed."""
    message = f"{doing} failed: {db_message(err, secrets)}"
    if isinstance(err, sa.exc.DBAPIError) and is_retryable(err):
        return RetryableError(message, context=context)
    return RemoteError(message, context=context)


def connect_error(
    err: BaseException, url: sa.URL, system: str, *, context: ErrorContext
) -> ConnectionFailedError:
    """'cannot connect to PostgreSQL at 127.0.0.1:5432 as user x: <reason>' without secrets."""
    secrets = [url.password] if isinstance(url.password, str) else []
    reason = db_message(err, secrets)
    # psycopg: 'connection to server at "h", port 5432 failed: FATAL:  password ...'
    reason = reason.rsplit(" failed: ", 1)[-1]
    reason = re.sub(r"^(FATAL|ERROR):\s+", "", reason)
    if url.get_backend_name() == "sqlite":
        where = f"the SQLite database {url.database or ':memory:'}"
    else:
        port = f":{url.port}" if url.port else ""
        where = f"{system} at {url.host or 'localhost'}{port}"
        if url.username:
            where += f" as user {url.username}"
    return ConnectionFailedError(f"cannot connect to {where}: {reason}", context=context)
