"""Settings of a SQL connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator
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

    @field_validator("url")
    @classmethod
    def _a_url(cls, value: str) -> str:
        try:
            sa.make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a SQLAlchemy URL (expected e.g. 'postgresql+psycopg://user@host:5432/db' "
                "or 'sqlite:///data.db')"
            ) from None
        return value

    @model_validator(mode="before")
    @classmethod
    def _password_out_of_url(cls, data: Any) -> Any:
        """A password written in the URL (``postgresql://me:pw@host/db``) becomes the secret
        ``password`` setting, so it is encrypted when saved and never shown."""
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        try:
            url = sa.make_url(data["url"])
        except ArgumentError:
            return data  # sa_url() explains
        if url.password is None:
            return data
        if data.get("password") not in (None, ""):
            raise ValueError("the url holds a password and 'password' is set too; give it once")
        without = sa.URL.create(  # URL.set(password=None) would keep the password
            url.drivername, url.username, None, url.host, url.port, url.database, url.query
        )
        plain = without.render_as_string(hide_password=False)
        return {**data, "url": plain, "password": str(url.password)}

    def with_paths_resolved(self, base_dir: Path) -> Self:
        """A relative SQLite file made absolute; other URLs are left as they are."""
        try:
            url = sa.make_url(self.url)
        except ArgumentError:
            return self
        database = url.database
        if url.get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
            return self
        if database.startswith("file:") or Path(database).is_absolute():
            return self
        resolved = url.set(database=str((base_dir / database).resolve()))
        return self.model_copy(update={"url": resolved.render_as_string(hide_password=False)})

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
