"""Filters the database evaluates: the WHERE clause really carries them, literals are bound."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sql_helpers import PEOPLE, connector, create, people

from crmbridge.connectors.base import ReadRequest, Since
from crmbridge.connectors.sql import SqlConnector
from crmbridge.core.expressions import parse
from crmbridge.errors import ConfigError


@pytest.fixture
def db(db_url: str) -> Iterator[SqlConnector]:
    create(db_url, people, rows={"people": PEOPLE})
    conn = connector(db_url)
    yield conn
    conn.close()


@pytest.fixture
def statements(db: SqlConnector) -> list[str]:
    """The SQL text of every statement the connector sends from now on."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", record)
    return sent


def ids(db: SqlConnector, request: ReadRequest) -> list[int]:
    return [row["id"] for batch in db.read(request) for row in batch.to_pylist()]


def test_a_pushed_down_filter_is_in_the_where_clause(
    db: SqlConnector, statements: list[str]
) -> None:
    predicate = parse('"id" >= 3 AND "name" <> \'Eve\'', what="filter")
    assert db.can_push_down("people", predicate)
    request = ReadRequest("people", fields=["id"], filter=predicate)
    assert ids(db, request) == [3, 4]
    select = next(s for s in statements if s.lstrip().upper().startswith("SELECT"))
    assert "WHERE" in select
    assert "Eve" not in select, "literals are bound parameters"
    assert db.count(request) == 2


def test_functions_over_columns_are_left_to_the_engine(db: SqlConnector) -> None:
    predicate = parse("upper(\"name\") = 'ADA'", what="filter")
    assert not db.can_push_down("people", predicate)
    with pytest.raises(ConfigError, match="cannot be evaluated by the database"):
        ids(db, ReadRequest("people", fields=["id"], filter=predicate))


def test_boolean_comparisons_are_pushed_down_only_where_exact(
    db: SqlConnector, db_url: str
) -> None:
    predicate = parse('"active" = TRUE', what="filter")
    expected = db_url.startswith("postgresql")  # MariaDB's BOOLEAN is TINYINT(1)
    assert db.can_push_down("people", predicate) is expected


def test_incremental_reads_start_at_the_cursor_value(db: SqlConnector) -> None:
    since = Since("seen", dt.datetime(2024, 1, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))))
    request = ReadRequest("people", fields=["id"], since=since)
    assert ids(db, request) == [1, 5]
    assert db.count(request) == 2


def test_count_without_a_filter(db: SqlConnector) -> None:
    assert db.count(ReadRequest("people")) == len(PEOPLE)
