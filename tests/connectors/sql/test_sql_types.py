"""Column types -> fields, and values that survive a write and a read unchanged."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sql_helpers import PEOPLE, connector, create, execute, people, stored, write

from crmbridge.connectors.base import ReadRequest
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import Field, FieldType
from crmbridge.errors import ConfigError

UTC = dt.UTC


def read_all(url: str, object: str, **settings: Any) -> list[dict[str, Any]]:
    conn = connector(url, **settings)
    try:
        return [row for b in conn.read(ReadRequest(object)) for row in b.to_pylist()]
    finally:
        conn.close()


@pytest.mark.postgres
def test_postgres_types_map_to_fields(pg_url: str) -> None:
    execute(
        pg_url,
        "CREATE TYPE mood AS ENUM ('ok', 'sad')",
        """CREATE TABLE t (
            id serial PRIMARY KEY, code varchar(10) NOT NULL, body text, n numeric(12, 2),
            big numeric, r real, d double precision, b boolean, day date, ts timestamp,
            tz timestamptz, m mood, u uuid, j jsonb, twice int GENERATED ALWAYS AS (id * 2) STORED,
            with_default varchar(5) NOT NULL DEFAULT 'x')""",
    )
    conn = connector(pg_url)
    schema = conn.describe("t")
    conn.close()
    assert schema.id_field == "id"
    assert schema.fields == (
        Field("id", FieldType.INTEGER, key=True),
        Field("code", FieldType.STRING, length=10, required=True),
        Field("body", FieldType.TEXT),
        Field("n", FieldType.DECIMAL, precision=12, scale=2),
        Field("big", FieldType.DECIMAL, precision=38, scale=9),
        Field("r", FieldType.FLOAT),
        Field("d", FieldType.FLOAT),
        Field("b", FieldType.BOOLEAN),
        Field("day", FieldType.DATE),
        Field("ts", FieldType.DATETIME),
        Field("tz", FieldType.DATETIME),
        Field("m", FieldType.ENUM, length=3, allowed_values=("ok", "sad")),
        Field("u", FieldType.ID, length=36),
        Field("j", FieldType.TEXT, read_only=True),
        Field("twice", FieldType.INTEGER, read_only=True),
        Field("with_default", FieldType.STRING, length=5),
    )


@pytest.mark.mariadb
def test_mariadb_types_map_to_fields(mysql_url: str) -> None:
    execute(
        mysql_url,
        """CREATE TABLE t (
            id int AUTO_INCREMENT PRIMARY KEY, code varchar(10) NOT NULL, body text,
            n decimal(12, 2), d double, flag boolean, tiny tinyint, day date, ts datetime(6),
            m enum('ok', 'sad'), wide decimal(65, 30))""",
    )
    conn = connector(mysql_url)
    schema = conn.describe("t")
    conn.close()
    assert schema.fields == (
        Field("id", FieldType.INTEGER, key=True),
        # MariaDB's default collation compares text without case: so do its match keys
        Field("code", FieldType.STRING, length=10, required=True, key_rule=KeyRule.CASEFOLD),
        Field("body", FieldType.TEXT, key_rule=KeyRule.CASEFOLD),
        Field("n", FieldType.DECIMAL, precision=12, scale=2),
        Field("d", FieldType.FLOAT),
        Field("flag", FieldType.BOOLEAN),
        Field("tiny", FieldType.INTEGER),
        Field("day", FieldType.DATE),
        Field("ts", FieldType.DATETIME),
        Field(
            "m", FieldType.ENUM, length=3, allowed_values=("ok", "sad"), key_rule=KeyRule.CASEFOLD
        ),
        Field("wide", FieldType.DECIMAL, precision=38, scale=30),
    )


def test_sqlite_types_map_to_fields(sqlite_url: str) -> None:
    execute(
        sqlite_url,
        "CREATE TABLE t (id integer PRIMARY KEY, code varchar(10) NOT NULL, n numeric(8, 3),"
        " flag boolean, day date, ts datetime, raw blob)",
    )
    conn = connector(sqlite_url)
    schema = conn.describe("t")
    conn.close()
    assert schema.fields == (
        Field("id", FieldType.INTEGER, key=True),
        Field("code", FieldType.STRING, length=10, required=True),
        Field("n", FieldType.DECIMAL, precision=8, scale=3),
        Field("flag", FieldType.BOOLEAN),
        Field("day", FieldType.DATE),
        Field("ts", FieldType.DATETIME),
        Field("raw", FieldType.TEXT, read_only=True),
    )


def test_values_round_trip(db_url: str) -> None:
    create(db_url, people)
    conn = connector(db_url)
    result = write(conn, "people", PEOPLE, WriteMode.INSERT, ["id"])
    conn.close()
    assert result.counts()["created"] == len(PEOPLE)
    assert read_all(db_url, "people") == PEOPLE


def test_describe_of_an_unknown_table_suggests_close_names(db_url: str) -> None:
    create(db_url, people)
    conn = connector(db_url)
    with pytest.raises(ConfigError, match=r"unknown table 'peple'; did you mean 'people'\?"):
        conn.describe("peple")
    conn.close()


@pytest.mark.postgres
def test_postgres_values_of_special_types_are_read_as_text(pg_url: str) -> None:
    key = uuid.uuid4()
    execute(
        pg_url,
        "CREATE TABLE t (u uuid PRIMARY KEY, j jsonb, big numeric)",
        f"INSERT INTO t VALUES ('{key}', '{{\"a\": [1, 2]}}', 3.141592654)",
    )
    assert read_all(pg_url, "t") == [
        {"u": str(key), "j": '{"a": [1, 2]}', "big": Decimal("3.141592654")}
    ]


@pytest.mark.postgres
def test_postgres_time_zones_of_the_session_do_not_shift_values(pg_url: str) -> None:
    kolkata = pg_url.replace("options=", "options=-c%20TimeZone%3DAsia/Kolkata%20")
    execute(
        kolkata,
        "CREATE TABLE t (id int PRIMARY KEY, tz timestamptz, naive timestamp)",
        "INSERT INTO t VALUES (1, '2024-01-01 10:00:00+05:30', '2024-01-01 10:00:00')",
    )
    assert stored(kolkata, "SHOW TimeZone") == [("Asia/Kolkata",)]
    assert read_all(kolkata, "t") == [
        {
            "id": 1,
            "tz": dt.datetime(2024, 1, 1, 4, 30, tzinfo=UTC),
            "naive": dt.datetime(2024, 1, 1, 10, 0, tzinfo=UTC),
        }
    ]
    conn = connector(kolkata)
    instant = dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    write(conn, "t", [{"id": 2, "tz": instant, "naive": instant}], WriteMode.INSERT, ["id"])
    conn.close()
    assert stored(kolkata, "SELECT tz AT TIME ZONE 'UTC', naive FROM t WHERE id = 2") == [
        (dt.datetime(2024, 6, 1, 12, 0), dt.datetime(2024, 6, 1, 12, 0))
    ]


@pytest.mark.mariadb
def test_mariadb_timestamps_are_read_in_utc(mysql_url: str) -> None:
    execute(
        mysql_url,
        "CREATE TABLE t (id int PRIMARY KEY, ts timestamp NULL)",
        "SET time_zone = '+02:00'",
        "INSERT INTO t VALUES (1, '2024-01-01 12:00:00')",
    )
    assert read_all(mysql_url, "t") == [{"id": 1, "ts": dt.datetime(2024, 1, 1, 10, tzinfo=UTC)}]


def test_read_streams_in_batches_in_primary_key_order(db_url: str) -> None:
    rows = [dict(PEOPLE[0], id=i, name=f"P{i}") for i in range(25, 0, -1)]
    create(db_url, people, rows={"people": rows})
    conn = connector(db_url)
    batches = list(conn.read(ReadRequest("people", fields=["id"], batch_size=10)))
    conn.close()
    assert [b.num_rows for b in batches] == [10, 10, 5]
    assert [i for b in batches for i in b.column(0).to_pylist()] == list(range(1, 26))
