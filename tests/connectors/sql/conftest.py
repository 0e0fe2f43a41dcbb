"""Fixtures of the SQL connector tests: one database per engine, per test."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database of each engine in turn."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "pg_url", "mariadb": "mysql_url"}
    url: str = request.getfixturevalue(fixture[request.param])
    return url
