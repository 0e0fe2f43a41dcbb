"""Whole-call failures: lock timeouts and lost connections are retryable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sql_helpers import PEOPLE, connector, create, execute, people, write

from crmbridge.connectors.base import ReadRequest
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import RetryableError


def _hold_row_lock(url: str) -> tuple[sa.Engine, sa.Connection]:
    engine = sa.create_engine(url)
    conn = engine.connect()
    conn.begin()
    conn.exec_driver_sql("SELECT id FROM people WHERE id = 1 FOR UPDATE")
    return engine, conn


@pytest.mark.postgres
def test_postgres_lock_timeout_is_retryable(pg_url: str) -> None:
    create(pg_url, people, rows={"people": PEOPLE[:1]})
    engine, blocker = _hold_row_lock(pg_url)
    db = connector(pg_url.replace("options=", "options=-c%20lock_timeout%3D200%20"))
    try:
        with pytest.raises(RetryableError, match="lock"):
            write(db, "people", [{"id": 1, "name": "Locked"}], WriteMode.UPDATE, ["id"])
    finally:
        db.close()
        blocker.close()
        engine.dispose()


@pytest.mark.mariadb
def test_mariadb_lock_wait_timeout_is_retryable(mysql_url: str) -> None:
    create(mysql_url, people, rows={"people": PEOPLE[:1]})
    engine, blocker = _hold_row_lock(mysql_url)
    db = connector(mysql_url, connect_args={"init_command": "SET innodb_lock_wait_timeout = 1"})
    try:
        with pytest.raises(RetryableError, match="Lock wait timeout"):
            write(db, "people", [{"id": 1, "name": "Locked"}], WriteMode.UPDATE, ["id"])
    finally:
        db.close()
        blocker.close()
        engine.dispose()


@pytest.mark.postgres
def test_postgres_connection_lost_while_reading_is_retryable(pg_url: str) -> None:
    rows = [dict(PEOPLE[0], id=i) for i in range(1, 201)]
    create(pg_url, people, rows={"people": rows})
    db = connector(pg_url + "&application_name=crmb_lost")
    batches = db.read(ReadRequest("people", fields=["id"], batch_size=10))
    try:
        assert next(batches).num_rows == 10
        execute(
            pg_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'crmb_lost'",
        )
        with pytest.raises(RetryableError, match="reading"):
            list(batches)
    finally:
        batches.close()
        db.close()
