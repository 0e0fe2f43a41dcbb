"""A state store URL on each supported database: a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.sqlite"
    url: str = request.getfixturevalue("pg_url")
    return url
