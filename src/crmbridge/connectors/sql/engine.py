"""The SQLAlchemy engine of a connection, and how each session is set up.

Every session works in UTC (PostgreSQL ``TimeZone``, MySQL ``time_zone``), so naive date-time
columns hold UTC wall-clock times and time-zone-aware ones convert to UTC, whatever the
server's or the role's default zone is. MariaDB/MySQL sessions also add ``STRICT_ALL_TABLES``
to the SQL mode, so a value that does not fit is an error instead of being cut silently.
SQLite gets explicit ``BEGIN`` statements so savepoints work (SQLAlchemy's documented recipe).
psycopg connections return dates they cannot represent (``infinity``, after 9999) as
unreadable values, so one such value rejects its record instead of failing the read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import NoSuchModuleError

from crmbridge.connectors.sql.failures import db_message
from crmbridge.connectors.sql.settings import SqlSettings
from crmbridge.connectors.sql.values import register_postgres_loaders
from crmbridge.errors import ConfigError, ErrorContext

#: the extra that installs the driver of a backend, for the "not installed" message
_EXTRAS = {
    "postgresql": "crmbridge[postgres]",
    "mysql": "crmbridge[mysql]",
    "mariadb": "crmbridge[mysql]",
    "mssql": "crmbridge[mssql]",
}

#: names for messages and ``check()``
SYSTEMS = {
    "postgresql": "PostgreSQL",
    "mysql": "MySQL/MariaDB",
    "mariadb": "MariaDB",
    "sqlite": "SQLite",
    "mssql": "SQL Server",
}


def system_name(backend: str) -> str:
    return SYSTEMS.get(backend, backend)


def create_engine(
    settings: SqlSettings, base_dir: Path, *, context: ErrorContext
) -> tuple[sa.Engine, sa.URL]:
    """A pooled engine (nothing connected yet) and the URL it uses (with the password)."""
    url = settings.sa_url(base_dir, connection=context.connection)
    backend = url.get_backend_name()
    connect_args = {**_timeout_args(backend, settings.connect_timeout), **settings.connect_args}
    options: dict[str, Any] = {"pool_pre_ping": True, "connect_args": connect_args}
    if backend != "sqlite":
        options |= {
            "pool_size": settings.pool_size,
            "max_overflow": settings.max_overflow,
            "pool_recycle": settings.pool_recycle,
        }
    if url.drivername == "mssql+pyodbc":
        options["fast_executemany"] = True
    try:
        engine = sa.create_engine(url, **options)
    except (NoSuchModuleError, ImportError) as err:
        extra = _EXTRAS.get(backend)
        hint = f"; install it with: pip install '{extra}'" if extra else ""
        raise ConfigError(
            f"no SQLAlchemy driver for {url.drivername!r} ({err}){hint}", context=context
        ) from None
    except sa.exc.ArgumentError as err:
        secrets = [url.password] if isinstance(url.password, str) else []
        raise ConfigError(
            f"invalid URL {url.render_as_string(hide_password=True)}: {db_message(err, secrets)}",
            context=context,
        ) from None
    _set_up_sessions(engine)
    return engine, url


def _timeout_args(backend: str, seconds: int) -> dict[str, Any]:
    if backend in ("postgresql", "mysql", "mariadb"):
        return {"connect_timeout": seconds}
    if backend == "mssql":
        return {"timeout": seconds}
    return {}


def _set_up_sessions(engine: sa.Engine) -> None:
    backend = engine.dialect.name
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    elif backend == "postgresql":
        sa.event.listen(engine, "connect", _postgres_connect)
    elif backend in ("mysql", "mariadb"):
        sa.event.listen(engine, "connect", _mysql_connect)


def _run(dbapi_connection: Any, *statements: str) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


def _postgres_connect(dbapi_connection: Any, _record: Any) -> None:
    _run(dbapi_connection, "SET TIME ZONE 'UTC'")
    dbapi_connection.commit()
    if hasattr(dbapi_connection, "adapters"):  # psycopg 3
        register_postgres_loaders(dbapi_connection)


def _mysql_connect(dbapi_connection: Any, _record: Any) -> None:
    _run(
        dbapi_connection,
        "SET time_zone = '+00:00'",
        "SET SESSION sql_mode = "
        "CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')",
    )


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below start transactions


def _sqlite_begin(conn: sa.Connection) -> None:
    conn.exec_driver_sql("BEGIN")
