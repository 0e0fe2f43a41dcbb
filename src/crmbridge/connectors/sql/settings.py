"""Settings of a SQL connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import ConfigDict, Field, SecretStr
from sqlalchemy.exc import ArgumentError

from crmbridge.connectors.base import ConnectorSettings
from crmbridge.errors import ConfigError, ErrorContext


class SqlSettings(ConnectorSettings):
    """A database reached through SQLAlchemy (SQLite, PostgreSQL, MariaDB/MySQL, SQL Server)."""

    model_config = ConfigDict(populate_by_name=True)

    #: SQLAlchemy URL without the password, e.g. ``postgresql+psycopg://crm@db.local/sales``;
    #: a relative SQLite path is relative to the profile's folder
    url: str
    password: SecretStr | None = None
    #: schema (PostgreSQL, SQL Server) holding the tables; default: the connection's default
    db_schema: str | None = Field(default=None, alias="schema")
    #: PostgreSQL: write through COPY into a temporary staging table (fast); False: executemany
    staging: bool = True
    #: seconds to wait for the server to answer when connecting
    connect_timeout: int = 10
    pool_size: int = 5
    max_overflow: int = 5
    #: seconds after which a pooled connection is replaced (-1: never)
    pool_recycle: int = 3600
    #: extra keyword arguments for the DB-API driver's ``connect()`` (never a password)
    connect_args: dict[str, Any] = Field(default_factory=dict)

    def sa_url(self, base_dir: Path, *, connection: str | None = None) -> sa.URL:
        """The URL with the password merged in and a relative SQLite path made absolute."""
        context = ErrorContext(connection=connection)
        try:
            url = sa.make_url(self.url)
        except ArgumentError:
            raise ConfigError(
                "'url' is not a SQLAlchemy URL (expected e.g. "
                "'postgresql+psycopg://user@host:5432/db' or 'sqlite:///data.db')",
                context=context,
            ) from None
        if url.password is not None:
            raise ConfigError(
                f"the url {hide_password(url)} contains a password; "
                "put it in the 'password' setting instead",
                context=context,
            )
        if "password" in self.connect_args or "passwd" in self.connect_args:
            raise ConfigError(
                "connect_args must not contain the password; use the 'password' setting",
                context=context,
            )
        if url.get_backend_name() == "sqlite":  # a file: no password, paths from base_dir
            if url.database not in (None, "", ":memory:") and not Path(url.database).is_absolute():
                url = url.set(database=str(base_dir / url.database))
            return url
        if self.password is not None:
            url = url.set(password=self.password.get_secret_value())
        return url


def hide_password(url: sa.URL | str) -> str:
    """The URL as text with any password shown as ``***``."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)
