"""Shared fixtures: real PostgreSQL / MariaDB servers on loopback, one schema or database per test.

When a server is not reachable the test is skipped with the reason, unless the environment sets
``CRMBRIDGE_REQUIRE_SERVICES=1`` (``.ci/run`` does), which turns that skip into a failure.
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


def _need(name: str, host: str, port: int) -> None:
    if _server_up(host, port):
        return
    reason = f"{name} is not reachable on {host}:{port}"
    if _require_services():
        pytest.fail(f"{reason} (CRMBRIDGE_REQUIRE_SERVICES is set)")
    pytest.skip(reason)


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh PostgreSQL schema (first on the search_path), dropped afterwards."""
    _need("PostgreSQL", PG_HOST, PG_PORT)
    schema = _unique("crmb")
    admin = sa.create_engine(f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test")
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test"
            f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """URL of a fresh MariaDB database, dropped afterwards."""
    _need("MariaDB", MY_HOST, MY_PORT)
    db = _unique("crmb")
    admin = sa.create_engine(f"mysql+pymysql://root@{MY_HOST}:{MY_PORT}/test")
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4"))
    try:
        yield f"mysql+pymysql://root@{MY_HOST}:{MY_PORT}/{db}?charset=utf8mb4"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE `{db}`"))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: object) -> str:
    """URL of a fresh SQLite file in the test's temporary folder."""
    return f"sqlite:///{tmp_path}/test.sqlite"  # type: ignore[str-bytes-safe]
