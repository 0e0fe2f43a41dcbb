"""Conversions follow the documented rules, not DuckDB's looser ones: hex strings are not
integers, numbers round half away from zero whatever their type, a date is YYYY-MM-DD, and a
TIMESTAMP written with an offset is that instant. The same rules hold for ``cast``,
``try_cast``, ``source.types`` (Coercer) and text literals compared with typed fields."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from crmbridge.core.coerce import Coercer, Rejection
from crmbridge.core.expressions import (
    BatchTransform,
    ExpressionError,
    check_columns,
    evaluate_constant,
    parse,
)
from crmbridge.core.schema import ROW_COLUMN, FieldType

#: text -> what it converts to (None: it does not convert)
INTEGERS = {
    "12": 12,
    " 12 ": 12,
    "+5": 5,
    "-7": -7,
    "0x1A": None,
    "0X1a": None,
    "0b101": None,
    "1e3": None,
    "1_000": None,
    "1,000": None,
    "1 000": None,
    "12.5": None,
    "12.0": None,
    "": None,
    "１２": None,
}
DECIMALS = {
    "12.50": Decimal("12.50"),
    " -.5 ": Decimal("-0.50"),
    "5.": Decimal("5.00"),
    "1e3": Decimal("1000.00"),
    "0.125": Decimal("0.13"),  # rounded half away from zero to the scale
    "-0.125": Decimal("-0.13"),
    "0x1A": None,
    "1_000": None,
    "1,5": None,
    "nan": None,
}
FLOATS = {"0.1": 0.1, "-1e-300": -1e-300, " 5 ": 5.0, "0x1A": None, "1_000.5": None}
BOOLEANS = {
    "true": True,
    " YES ": True,
    "y": True,
    "1": True,
    "F": False,
    "no": False,
    "0": False,
    "on": None,
    "2": None,
}
DATES = {
    "2024-03-01": date(2024, 3, 1),
    "2024-3-1": date(2024, 3, 1),
    " 2024-02-29 ": date(2024, 2, 29),
    "2023-02-29": None,
    "2024/03/01": None,
    "24-03-01": None,
    "20240301": None,
    "01.03.2024": None,
    "2024-03-01 10:00:00": None,
    "0000-01-01": None,
    "10000-01-01": None,
    "infinity": None,
    "epoch": None,
}
DATETIMES = {
    "2024-03-01 10:00:00": datetime(2024, 3, 1, 10, tzinfo=UTC),
    "2024-03-01T10:00": datetime(2024, 3, 1, 10, tzinfo=UTC),
    "2024-03-01": datetime(2024, 3, 1, tzinfo=UTC),
    "2024-03-01 10:00:00.5+02": datetime(2024, 3, 1, 8, 0, 0, 500000, tzinfo=UTC),
    "2024-03-01 10:00:00-02:30": datetime(2024, 3, 1, 12, 30, tzinfo=UTC),
    "2024-03-01T10:00:00Z": datetime(2024, 3, 1, 10, tzinfo=UTC),
    "2024-03-01 10:00:00 Europe/Paris": None,
    "2024-03-01 25:00": None,
    "epoch": None,
    "infinity": None,
    "2024/03/01 10:00": None,
}

CASES = [
    ("BIGINT", FieldType.INTEGER, INTEGERS),
    ("DECIMAL(10, 2)", None, DECIMALS),
    ("DOUBLE", FieldType.FLOAT, FLOATS),
    ("BOOLEAN", FieldType.BOOLEAN, BOOLEANS),
    ("DATE", FieldType.DATE, DATES),
    ("TIMESTAMPTZ", FieldType.DATETIME, DATETIMES),
]


def _batch(values: list[Any], dtype: pa.DataType | None = None) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {"x": pa.array(values, dtype), ROW_COLUMN: list(range(1, len(values) + 1))}
    )


def _mapped(expression: str, batch: pa.RecordBatch) -> tuple[list[Any], list[str]]:
    with BatchTransform(batch.schema, {"y": parse(expression, what="m")}) as transform:
        result = transform.apply(batch)
    return result.batch.column("y").to_pylist(), [e.message for e in result.errors]


@pytest.mark.parametrize(("type_", "field_type", "cases"), CASES, ids=[c[0] for c in CASES])
def test_try_cast_of_text(type_: str, field_type: object, cases: dict[str, Any]) -> None:
    values, errors = _mapped(f"try_cast(x AS {type_})", _batch(list(cases)))
    assert errors == []
    assert dict(zip(cases, values, strict=True)) == cases


@pytest.mark.parametrize(("type_", "field_type", "cases"), CASES, ids=[c[0] for c in CASES])
def test_cast_of_text_rejects_what_try_cast_makes_null(
    type_: str, field_type: object, cases: dict[str, Any]
) -> None:
    values, errors = _mapped(f"cast(x AS {type_})", _batch(list(cases)))
    assert values == [v for v in cases.values() if v is not None]
    assert len(errors) == sum(v is None for v in cases.values())
    assert "\x01" not in "".join(errors)


def test_a_hex_string_is_not_an_integer_and_the_message_names_the_value() -> None:
    values, errors = _mapped("cast(x AS INTEGER)", _batch(["0x1A", "26"]))
    assert values == [26]
    assert errors == [
        "Could not convert string '0x1A' to INT32 when casting from source column 'x'"
    ]


@pytest.mark.parametrize(
    ("type_", "field_type", "cases"),
    [c for c in CASES if c[1] is not None],
    ids=[c[0] for c in CASES if c[1] is not None],
)
def test_source_types_convert_text_by_the_same_rules(
    type_: str, field_type: FieldType, cases: dict[str, Any]
) -> None:
    from crmbridge.core.schema import arrow_type

    with Coercer({"x": arrow_type(field_type)}) as coercer:
        out, rejected = coercer.apply(_batch(list(cases)))
    assert out.column("x").to_pylist() == [v for v in cases.values() if v is not None]
    refused = [text for text, v in cases.items() if v is None]
    assert [r.row for r in rejected] == [list(cases).index(t) + 1 for t in refused]


def test_source_types_reject_hex_and_other_surprising_integers() -> None:
    with Coercer({"n": pa.int64()}) as coercer:
        batch = pa.RecordBatch.from_pydict(
            {"n": ["0x1A", "1e3", "1_000", " 12 "], ROW_COLUMN: [1, 2, 3, 4]}
        )
        out, rejected = coercer.apply(batch)
    assert out.column("n").to_pylist() == [12]
    assert rejected == [
        Rejection(1, "n", "'0x1A' is not a whole number"),
        Rejection(2, "n", "'1e3' is not a whole number"),
        Rejection(3, "n", "'1_000' is not a whole number"),
    ]


# -- rounding --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cast(2.5 AS INTEGER)", 3),
        ("cast(-2.5 AS INTEGER)", -3),
        ("cast(2.5e0 AS INTEGER)", 3),
        ("cast(-2.5e0 AS INTEGER)", -3),
        ("cast(0.5e0 AS BIGINT)", 1),
        ("cast(cast(3.5 AS REAL) AS SMALLINT)", 4),
        ("cast(2.5e0 AS DECIMAL(3, 0))", Decimal("3")),
        ("cast('12.5' AS DECIMAL(5, 0))", Decimal("13")),
        ("round(2.5)", Decimal("3")),
        ("round(-2.5e0)", -3.0),
    ],
)
def test_numbers_round_half_away_from_zero(expression: str, expected: object) -> None:
    assert evaluate_constant(parse(expression, what="m")) == expected


def test_double_columns_round_half_away_from_zero_too() -> None:
    values, _ = _mapped("cast(x AS INTEGER)", _batch([0.5, 1.5, 2.5, -2.5, 2.4999], pa.float64()))
    assert values == [1, 2, 3, -3, 2]


def test_target_conversion_rounds_the_same_way() -> None:
    with Coercer({"n": pa.int64()}) as coercer:
        out, _ = coercer.apply(
            pa.RecordBatch.from_pydict(
                {"n": pa.array([2.5, -0.5], pa.float64()), ROW_COLUMN: [1, 2]}
            )
        )
    assert out.column("n").to_pylist() == [3, -1]


# -- date and time literals ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("DATE '2024-3-1'", date(2024, 3, 1)),
        ("TIMESTAMP '2024-03-01 10:00:00+02'", datetime(2024, 3, 1, 8, 0)),
        ("TIMESTAMP '2024-03-01 10:00:00'", datetime(2024, 3, 1, 10, 0)),
        ("TIMESTAMPTZ '2024-03-01 10:00:00+02'", datetime(2024, 3, 1, 8, 0, tzinfo=UTC)),
        ("cast('2024-03-01 10:00-05' AS TIMESTAMP)", datetime(2024, 3, 1, 15, 0)),
    ],
)
def test_date_and_timestamp_literals(expression: str, expected: object) -> None:
    assert evaluate_constant(parse(expression, what="m")) == expected


def test_a_timestamp_with_an_offset_compares_as_that_instant() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "at": pa.array(
                [datetime(2024, 5, 1, 12, tzinfo=UTC), datetime(2024, 5, 1, 14, tzinfo=UTC)],
                pa.timestamp("us", tz="UTC"),
            ),
            ROW_COLUMN: [1, 2],
        }
    )
    filter = parse("at = TIMESTAMP '2024-05-01 14:00:00+02'", what="filter")
    with BatchTransform(batch.schema, {"r": parse(ROW_COLUMN, what="m")}, filter) as transform:
        assert transform.apply(batch).batch.column("r").to_pylist() == [1]


@pytest.mark.parametrize("literal", ["DATE '2024/03/01'", "DATE '24-03-01'", "TIMESTAMP 'epoch'"])
def test_a_malformed_date_literal_is_an_error_when_the_profile_loads(literal: str) -> None:
    with pytest.raises(ExpressionError, match="invalid"):
        check_columns(parse(f"d >= {literal}", what="filter"), {"d": FieldType.DATE}, what="filter")


# -- text literals compared with typed fields ------------------------------------------------
COLUMNS = {
    "score": FieldType.INTEGER,
    "amount": FieldType.DECIMAL,
    "day": FieldType.DATE,
    "at": FieldType.DATETIME,
    "flag": FieldType.BOOLEAN,
    "name": FieldType.STRING,
}


@pytest.mark.parametrize(
    "text",
    [
        "score = '12'",
        "score IN (' 1 ', '2')",
        "amount = '12.555'",
        "day >= '2024-3-1'",
        "at > '2024-05-01 14:00+02'",
        "flag = 'yes'",
        "name = '0x1A'",
    ],
)
def test_text_literals_in_the_fields_format_are_accepted(text: str) -> None:
    check_columns(parse(text, what="filter"), COLUMNS, what="filter")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("score = '0x0C'", "'0x0C' is not a whole number"),
        ("score = '12.4'", "'12.4' is not a whole number"),
        ("score BETWEEN '1' AND '1e3'", "'1e3' is not a whole number"),
        ("amount = '1.0000000001'", "'1.0000000001' is not exactly a decimal(38,9)"),
        ("day = '2024/03/01'", "'2024/03/01' is not a date (YYYY-MM-DD)"),
        ("day = '2024-03-01 10:00'", "'2024-03-01 10:00' is not a date (YYYY-MM-DD)"),
        ("at > 'epoch'", "'epoch' is not a date-time"),
        ("flag = 'on'", "'on' is not a boolean"),
    ],
)
def test_text_literals_that_would_change_are_refused_when_the_profile_loads(
    text: str, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_columns(parse(text, what="filter"), COLUMNS, what="filter")
