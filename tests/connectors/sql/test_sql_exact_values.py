"""Numbers and dates are read exactly: a stored value is carried unchanged or its record is
rejected with the field named, and one bad stored value never fails the read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from sql_helpers import connector, execute

from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest
from crmbridge.core.expressions import BatchTransform, parse
from crmbridge.errors import RecordError

UTC = dt.UTC


def read(url: str, table: str = "t", **request: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows read and the reasons of the records refused."""
    bad: list[BadRecord] = []
    conn = connector(url)
    try:
        rows = [
            row
            for batch in conn.read(ReadRequest(table, on_bad_record=bad.append, **request))
            for row in batch.to_pylist()
        ]
    finally:
        conn.close()
    return rows, [b.reason for b in bad]


def _table(url: str, column: str, *values: str, mode: str | None = None) -> None:
    statements = [f"CREATE TABLE t (id int PRIMARY KEY, v {column})"]
    if mode is not None:
        statements.append(f"SET SESSION sql_mode = '{mode}'")
    statements += [f"INSERT INTO t VALUES ({i}, {v})" for i, v in enumerate(values, 1)]
    execute(url, *statements)


# -- MariaDB ---------------------------------------------------------------------------------
@pytest.mark.mariadb
def test_mariadb_doubles_are_read_as_stored(mysql_url: str) -> None:
    _table(
        mysql_url, "DOUBLE", "1e-300", "0.1e0 + 0.2e0", "1.7976931348623157e308", "5e-324", "-0.5"
    )
    rows, bad = read(mysql_url)
    assert bad == []
    assert [r["v"] for r in rows] == [
        1e-300,
        0.30000000000000004,
        1.7976931348623157e308,
        5e-324,
        -0.5,
    ]


@pytest.mark.mariadb
def test_mariadb_a_pushed_double_filter_selects_what_local_evaluation_selects(
    mysql_url: str,
) -> None:
    _table(mysql_url, "DOUBLE", "1e-300", "0", "-1e-300", "0.1e0 + 0.2e0")
    for text in ["v > 0", "v = 1e-300", "v > 0.3", "v = 0.30000000000000004"]:
        predicate = parse(text, what="filter")
        pushed, _ = read(mysql_url, filter=predicate)
        everything, _ = read(mysql_url)
        batch = pa.RecordBatch.from_pylist(everything)
        batch = batch.append_column(ROW_COLUMN, batch.column("id"))
        with BatchTransform(batch.schema, {"id": parse("id", what="m")}, predicate) as local:
            selected = local.apply(batch).batch.column("id").to_pylist()
        assert [r["id"] for r in pushed] == selected, text


@pytest.mark.mariadb
def test_mariadb_decimals_wider_than_arrow_are_exact_or_rejected(mysql_url: str) -> None:
    huge = "12345678901234567890123456789012345.123456789012345678901234567890"
    _table(mysql_url, "DECIMAL(65, 30)", "1.000000000000000000000000000001", huge, "-7.5")
    rows, bad = read(mysql_url)
    assert [r["v"] for r in rows] == [Decimal("1.000000000000000000000000000001"), Decimal("-7.5")]
    assert bad == [
        f"field 'v': {huge} has more than 8 digits before the decimal point "
        "(the field is decimal(38,30))"
    ]


@pytest.mark.mariadb
def test_mariadb_unsigned_bigints_beyond_the_integer_range_are_rejected(mysql_url: str) -> None:
    _table(mysql_url, "BIGINT UNSIGNED", "18446744073709551615", "9223372036854775807", "0")
    rows, bad = read(mysql_url)
    assert [r["v"] for r in rows] == [9223372036854775807, 0]
    assert bad == [
        "field 'v': 18446744073709551615 is beyond the integer range "
        "(-9223372036854775808 to 9223372036854775807)"
    ]


@pytest.mark.mariadb
@pytest.mark.parametrize(
    ("column", "zero", "good", "expected"),
    [
        ("DATE", "'0000-00-00'", "'2024-02-29'", dt.date(2024, 2, 29)),
        ("DATE", "'2024-00-10'", "'9999-12-31'", dt.date(9999, 12, 31)),
        (
            "DATETIME",
            "'0000-00-00 00:00:00'",
            "'2024-01-01 10:00:00'",
            dt.datetime(2024, 1, 1, 10, tzinfo=UTC),
        ),
    ],
)
def test_mariadb_zero_dates_reject_their_record(
    mysql_url: str, column: str, zero: str, good: str, expected: object
) -> None:
    _table(mysql_url, column, zero, good, mode="")
    rows, bad = read(mysql_url)
    assert [r["v"] for r in rows] == [expected]
    kind = "date" if column == "DATE" else "date-time"
    assert bad == [f"field 'v': {zero} is not a valid {kind}"]


# -- PostgreSQL ------------------------------------------------------------------------------
@pytest.mark.postgres
def test_postgres_numeric_without_precision_is_exact_or_rejected(pg_url: str) -> None:
    _table(pg_url, "numeric", "1.123456789", "1.0123456789012345", "'NaN'", "1e40", "-0.5")
    rows, bad = read(pg_url)
    assert [r["v"] for r in rows] == [Decimal("1.123456789"), Decimal("-0.5")]
    assert bad == [
        "field 'v': 1.0123456789012345 has more than 9 decimals (the field is decimal(38,9))",
        "field 'v': NaN is not a finite number (the field is decimal(38,9))",
        f"field 'v': {10**40} has more than 29 digits before the decimal point "
        "(the field is decimal(38,9))",
    ]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("date", "'10000-01-01'", "date too large (after year 10K)"),
        ("date", "'infinity'", "date too large (after year 10K)"),
        ("date", "'0044-03-15 BC'", "date too small (before year 1)"),
        ("timestamptz", "'infinity'", "timestamp too large (after year 10K)"),
        ("timestamp", "'-infinity'", "timestamp too small (before year 1)"),
    ],
)
def test_postgres_dates_python_cannot_hold_reject_their_record(
    pg_url: str, column: str, value: str, why: str
) -> None:
    _table(pg_url, column, value, "'2024-01-01'")
    rows, bad = read(pg_url)
    assert [r["id"] for r in rows] == [2]
    assert bad == [
        f"field 'v': {value} cannot be represented ({why}; dates run from year 1 to 9999)"
    ]


@pytest.mark.postgres
def test_postgres_a_bad_value_in_a_later_batch_keeps_positions(pg_url: str) -> None:
    _table(pg_url, "date", *["'2024-01-01'"] * 5, "'infinity'", "'2024-01-02'")
    bad: list[BadRecord] = []
    conn = connector(pg_url)
    request = ReadRequest("t", batch_size=2, on_bad_record=bad.append)
    ids = [i for b in conn.read(request) for i in b.column("id").to_pylist()]
    conn.close()
    assert ids == [1, 2, 3, 4, 5, 7]
    assert [(b.position, b.raw) for b in bad] == [(6, '{"id": 6, "v": "infinity"}')]


# -- SQLite ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "values", "expected", "reasons"),
    [
        ("INTEGER", ["1.5", "'abc'", "3", "1e30"], [3], [
            "field 'v': 1.5 is not a whole number",
            "field 'v': 'abc' is not a whole number",
            "field 'v': 1e+30 is beyond the integer range "
            "(-9223372036854775808 to 9223372036854775807)",
        ]),
        ("REAL", ["'abc'", "0.1", "1e-300"], [0.1, 1e-300], ["field 'v': 'abc' is not a number"]),
        ("NUMERIC(10, 2)", ["12.1", "1.255", "'x'"], [Decimal("12.10")], [
            "field 'v': 1.255 has more than 2 decimals (the field is decimal(10,2))",
            "field 'v': 'x' is not a number",
        ]),
        ("BOOLEAN", ["2", "1", "0"], [True, False], [
            "field 'v': 2 is not a boolean (true/false or 1/0)"
        ]),
        ("DATE", ["'notadate'", "'2024-02-29'", "'2024-01-01 10:00:00'"], [dt.date(2024, 2, 29)], [
            "field 'v': 'notadate' is not a valid date",
            "field 'v': '2024-01-01 10:00:00' is not a valid date",
        ]),
        ("DATETIME", ["'nope'", "'2024-01-01 10:00:00.000000'"], [
            dt.datetime(2024, 1, 1, 10, tzinfo=UTC)
        ], ["field 'v': 'nope' is not a valid date-time"]),
    ],
)  # fmt: skip
def test_sqlite_values_that_are_not_of_the_column_type_reject_their_record(
    sqlite_url: str, column: str, values: list[str], expected: list[Any], reasons: list[str]
) -> None:
    _table(sqlite_url, column, *values)
    rows, bad = read(sqlite_url)
    assert [r["v"] for r in rows] == expected
    assert bad == reasons


def test_without_a_bad_record_callback_the_first_bad_value_is_a_record_error(
    sqlite_url: str,
) -> None:
    _table(sqlite_url, "INTEGER", "1", "1.5")
    conn = connector(sqlite_url)
    with pytest.raises(RecordError, match=r"row 2: field 'v': 1.5 is not a whole number"):
        list(conn.read(ReadRequest("t")))
    conn.close()


def test_only_the_read_fields_are_checked(sqlite_url: str) -> None:
    _table(sqlite_url, "INTEGER", "1.5")
    rows, bad = read(sqlite_url, fields=["id"])
    assert (rows, bad) == ([{"id": 1}], [])
