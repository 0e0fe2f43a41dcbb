"""PostgreSQL ``match`` reads its candidates through ``COPY ... TO STDOUT`` parsed by Arrow:
the same values as the exact reader, the exact reader's answer for a value that does not
parse, and an index lookup even on a table whose statistics say it is empty."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from sql_helpers import connector, execute

from crmbridge.connectors.base import MatchRequest
from crmbridge.connectors.sql import fetch_postgres
from crmbridge.connectors.sql.reading import rows_to_batch
from crmbridge.connectors.sql.values import raw_column
from crmbridge.errors import RemoteError

pytestmark = pytest.mark.postgres

COLUMNS = (
    "id bigint PRIMARY KEY, t text, v varchar(20), d double precision, n numeric(12,2), "
    "day date, at timestamp, atz timestamptz, b boolean"
)
ROWS = [
    "(1, 'NA', 'null', 0.1::float8 + 0.2::float8, 1.50, '2024-02-29', "
    "'2024-01-01 10:00:00.123456', '2024-01-01 10:00:00+02', true)",
    "(2, '', '', 1e-300, -0.01, '0001-01-01', '1999-12-31 23:59:59', "
    "'1970-01-01 00:00:00Z', false)",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(4, E'line\\nbreak, \"quoted\"', 'a,b', 'Infinity', 9999999999.99, '9999-12-31', "
    "'2024-06-01 00:00:00', '2024-06-01 12:34:56.5-07', true)",
    "(9223372036854775807, 'Zoë ✓', ' spaced ', -0.0, 0, '2000-01-01', '2000-01-01', "
    "'2000-01-01', false)",
]
NAMES = ["id", "t", "v", "d", "n", "day", "at", "atz", "b"]


def _match(url: str, ids: list[int], fields: list[str] | None = None) -> list[dict[str, Any]]:
    conn = connector(url)
    try:
        keys = pa.record_batch({"id": pa.array(ids, pa.int64())})
        found = conn.match(MatchRequest("t", ["id"], keys, fields=fields or NAMES))
        return sorted(found.to_pylist(), key=lambda r: r["id"])
    finally:
        conn.close()


def _exact(url: str) -> list[dict[str, Any]]:
    """The rows as the exact reader (driver values, one by one) reads them."""
    conn = connector(url)
    try:
        info = conn.table("t")
        fields = [info.schema.field(n) for n in NAMES]
        select = sa.select(*(raw_column(info.column(n)) for n in NAMES)).order_by(info.column("id"))
        with conn.engine.connect() as c:
            return rows_to_batch(c.execute(select).all(), fields).to_pylist()
    finally:
        conn.close()


def test_candidates_are_the_values_the_exact_reader_reads(pg_url: str) -> None:
    execute(pg_url, f"CREATE TABLE t ({COLUMNS})", f"INSERT INTO t VALUES {', '.join(ROWS)}")
    found = _match(pg_url, [1, 2, 3, 4, 9223372036854775807, 5])
    exact = _exact(pg_url)
    assert [{n: r[n] for n in NAMES} for r in found] == exact
    first, second = exact[0], exact[1]
    assert (first["t"], first["v"]) == ("NA", "null")  # text, not NULL
    assert (second["t"], exact[2]["t"]) == ("", None)  # empty text is not NULL
    assert first["d"] == 0.30000000000000004
    assert [r["_crmbridge_id"] for r in found] == ["1", "2", "3", "4", "9223372036854775807"]


def test_a_value_arrow_cannot_parse_gets_the_exact_readers_answer(pg_url: str) -> None:
    execute(
        pg_url,
        "CREATE TABLE t (id bigint PRIMARY KEY, day date, n numeric)",
        "INSERT INTO t VALUES (1, '2024-01-01', 1.5), (2, 'infinity', 2)",
    )
    assert _match(pg_url, [1], ["day"])[0]["day"].isoformat() == "2024-01-01"
    with pytest.raises(RemoteError, match="infinity"):
        _match(pg_url, [1, 2], ["day"])
    execute(pg_url, "UPDATE t SET n = 1.0123456789 WHERE id = 1")  # more than the scale of 9
    with pytest.raises(RemoteError, match="decimal"):
        _match(pg_url, [1], ["n"])


def test_columns_whose_text_is_not_exact_take_the_exact_path(pg_url: str) -> None:
    execute(
        pg_url,
        "CREATE TABLE t (id bigint PRIMARY KEY, r real, j json, u uuid, d double precision)",
        "INSERT INTO t VALUES (1, 0.1, '{\"a\": 1}', gen_random_uuid(), 0.1)",
    )
    conn = connector(pg_url)
    try:
        info = conn.table("t")
        assert fetch_postgres.parses_exactly(info, ["id", "d"])
        for name in ("r", "u"):
            assert not fetch_postgres.parses_exactly(info, [name])
    finally:
        conn.close()
    found = _match(pg_url, [1], ["r", "j", "d"])[0]
    assert (found["r"], found["d"]) == (pytest.approx(0.1), 0.1)
    assert found["j"].replace(" ", "") == '{"a":1}'


def test_a_table_filled_during_the_run_is_looked_up_by_its_index(pg_url: str) -> None:
    """The defect: a table created empty and filled by the run is never analysed while the
    run lasts; PostgreSQL then read it whole for every batch's match (the 1M-row insert spent
    half its time there)."""
    execute(
        pg_url,
        "CREATE TABLE t (id bigint PRIMARY KEY, v text) WITH (autovacuum_enabled = off)",
        "INSERT INTO t SELECT i, 'x' FROM generate_series(1, 50000) i",
    )
    before = _scans(pg_url)
    assert len(_match(pg_url, list(range(1, 2001)), ["v"])) == 2000
    seq, by_index = _wait_for_scans(pg_url, before)
    assert (seq, by_index > 0) == (0, True)  # found by the index, never read whole


def _scans(url: str) -> tuple[int, int]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            row = conn.exec_driver_sql(
                "SELECT seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables "
                "WHERE relid = 't'::regclass"
            ).one()
            return int(row[0]), int(row[1])
    finally:
        engine.dispose()


def _wait_for_scans(url: str, before: tuple[int, int]) -> tuple[int, int]:
    """The scans since ``before``, once the match's session has reported them."""
    deadline = time.monotonic() + 10
    while True:
        now = _scans(url)
        change = (now[0] - before[0], now[1] - before[1])
        if change != (0, 0) or time.monotonic() > deadline:
            return change
        time.sleep(0.2)


def test_keys_are_sent_as_array_texts_that_keep_every_character(pg_url: str) -> None:
    """The keys of a batch go as one array text per key column (written by Arrow, not one
    Python value at a time); quotes, backslashes, commas, braces and NULL-like words survive."""
    names = ['a"b', "c\\d", "e,f", "{g}", "NULL", "", " h ", "Zoë"]
    execute(
        pg_url,
        "CREATE TABLE t (k varchar(10), n int, day date, v text, PRIMARY KEY (k, n))",
        *[
            f"INSERT INTO t VALUES ('{k}', {i}, '2024-01-0{i + 1}', 'x')"
            for i, k in enumerate(names)
        ],
    )
    conn = connector(pg_url)
    try:
        keys = pa.record_batch(
            {
                "k": pa.array([*names, "missing", None, "a very long key, longer than 10"]),
                "n": pa.array([*range(len(names)), 0, 1, 2], pa.int64()),
            }
        )
        found = conn.match(MatchRequest("t", ["k", "n"], keys, fields=["day"]))
    finally:
        conn.close()
    assert sorted((r["k"], r["n"]) for r in found.to_pylist()) == sorted(
        (k, i) for i, k in enumerate(names)
    )


def test_a_copy_that_fails_midway_raises_the_servers_error_and_the_connection_goes_on(
    pg_url: str,
) -> None:
    """The COPY's rows are read with libpq's own calls (one message per row): all of them, and
    an error the server sends after some rows is raised, with the connection left usable."""
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            raw: Any = conn.connection.driver_connection
            many = "COPY (SELECT i, repeat('x', i % 7) FROM generate_series(1, 50000) i) TO STDOUT"
            lines = fetch_postgres._copy_out(raw, many).decode().splitlines()
            assert len(lines) == 50000
            assert lines[-1] == "50000\t" + "x" * (50000 % 7)
            failing = "COPY (SELECT 1 / (20000 - i) FROM generate_series(1, 30000) i) TO STDOUT"
            with pytest.raises(Exception, match="division by zero"):
                fetch_postgres._copy_out(raw, failing)
            conn.rollback()
            assert conn.exec_driver_sql("SELECT 41 + 1").scalar() == 42
            with pytest.raises(Exception, match="syntax error"):
                fetch_postgres._copy_out(raw, "COPY (SELEC 1) TO STDOUT")
            conn.rollback()
            assert conn.exec_driver_sql("SELECT 'still here'").scalar() == "still here"
    finally:
        engine.dispose()
