"""Shared fixtures: real PostgreSQL / MariaDB servers on loopback, one schema or database per test.

Nothing is expected to exist on the servers beyond what a fresh installation has: the
PostgreSQL fixtures connect to the default database ``postgres`` and create a database of
their own for the test session (dropped at its end), the MariaDB fixtures connect without a
database and create one per test.

When a server is not reachable, or refuses to create what a test needs, the test is skipped
with the reason, unless the environment sets ``CRMBRIDGE_REQUIRE_SERVICES=1`` (``.ci/run``
does), which turns that skip into a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

PG_HOST = os.environ.get("CRMBRIDGE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("CRMBRIDGE_TEST_PG_PORT", "5432"))
#: the database every PostgreSQL installation has, used only to create the session's own
PG_ADMIN_DATABASE = os.environ.get("CRMBRIDGE_TEST_PG_ADMIN_DATABASE", "postgres")
MY_HOST = os.environ.get("CRMBRIDGE_TEST_MYSQL_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("CRMBRIDGE_TEST_MYSQL_PORT", "3306"))


def _require_services() -> bool:
    return os.environ.get("CRMBRIDGE_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _server_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail when the services are required."""
    if _require_services():
        pytest.fail(f"{reason} (CRMBRIDGE_REQUIRE_SERVICES is set)")
    pytest.skip(reason)


def _need(name: str, host: str, port: int) -> None:
    if not _server_up(host, port):
        _unavailable(f"{name} is not reachable on {host}:{port}")


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _admin(name: str, url: str, statement: str) -> sa.Engine:
    """An engine for ``url`` after running ``statement`` with it (autocommit); skips the test
    with the server's answer when that fails (no such database, not allowed ...)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(statement))
    except sa.exc.DBAPIError as err:
        engine.dispose()
        first = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
        _unavailable(f"{name} at {url}: cannot run {statement!r}: {first}")
    return engine


def pg_admin_url(database: str = PG_ADMIN_DATABASE) -> str:
    return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{database}"


def mysql_admin_url() -> str:
    """The MariaDB server itself, no database: it needs none to create one."""
    return f"mysql+pymysql://root@{MY_HOST}:{MY_PORT}/"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """Name of a PostgreSQL database made for this test session (each xdist worker has its
    own), created from the server's default database and dropped at the end."""
    _need("PostgreSQL", PG_HOST, PG_PORT)
    name = _unique("crmb_test")
    admin = _admin("PostgreSQL", pg_admin_url(), f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """URL of a fresh PostgreSQL schema (first on the search_path), dropped afterwards."""
    schema = _unique("crmb")
    admin = _admin("PostgreSQL", pg_admin_url(pg_database), f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{pg_admin_url(pg_database)}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh MariaDB database, dropped afterwards."""
    _need("MariaDB", MY_HOST, MY_PORT)
    db = _unique("crmb")
    admin = _admin("MariaDB", mysql_admin_url(), f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@{MY_HOST}:{MY_PORT}/{db}?charset=utf8mb4"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{db}`"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """URL of a fresh SQLite file in the test's temporary folder."""
    return f"sqlite:///{tmp_path}/test.sqlite"  # type: ignore[str-bytes-safe]
