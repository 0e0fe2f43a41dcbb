import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from crmbridge.connectors.base import ROW_COLUMN
from crmbridge.core.coerce import Coercer, Rejection, describe_type, plain_cast

UTC = dt.UTC


def _batch(**columns: list[object]) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))
    return pa.RecordBatch.from_pydict({**columns, ROW_COLUMN: list(range(1, n + 1))})


def test_converts_text_to_typed_columns() -> None:
    batch = _batch(
        n=[" 12", "7"],
        d=["2024-02-29", None],
        t=["2024-01-02 03:04:05", "2024-01-02T05:04:05+02:00"],
        m=["1.235", "2"],
        b=["true", "0"],
    )
    types = {
        "n": pa.int64(),
        "d": pa.date32(),
        "t": pa.timestamp("us", tz="UTC"),
        "m": pa.decimal128(12, 2),
        "b": pa.bool_(),
    }
    with Coercer(types) as coercer:
        out, rejected = coercer.apply(batch)
    assert rejected == []
    assert out.schema.field("t").type == pa.timestamp("us", tz="UTC")
    rows = out.to_pylist()
    assert rows[0]["n"] == 12
    assert rows[0]["d"] == dt.date(2024, 2, 29)
    assert rows[1]["d"] is None
    # a time without offset is UTC; one with an offset is converted to UTC
    assert rows[0]["t"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows[1]["t"] == dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rows[0]["m"] == Decimal("1.24")
    assert [r["b"] for r in rows] == [True, False]


def test_a_value_that_does_not_convert_rejects_only_its_record() -> None:
    batch = _batch(n=["1", "x", "3"], d=["2024-01-01", "2024-01-01", "31/12/2024"])
    with Coercer({"n": pa.int64(), "d": pa.date32()}) as coercer:
        out, rejected = coercer.apply(batch)
    assert out.column("n").to_pylist() == [1]
    assert out.column(ROW_COLUMN).to_pylist() == [1]
    assert rejected == [
        Rejection(2, "n", "'x' is not a whole number"),
        Rejection(3, "d", "'31/12/2024' is not a date (YYYY-MM-DD)"),
    ]


def test_columns_already_of_the_type_are_left_alone() -> None:
    batch = _batch(n=[1, 2])
    with Coercer({"n": pa.int64(), "missing": pa.date32()}) as coercer:
        out, rejected = coercer.apply(batch)
    assert out is batch
    assert rejected == []


@pytest.mark.parametrize("value", ["", "  "])
def test_blank_text_is_not_a_number(value: str) -> None:
    with Coercer({"n": pa.int64()}) as coercer:
        out, rejected = coercer.apply(_batch(n=[value]))
    assert out.num_rows == 0
    assert rejected[0].field == "n"


def test_lists_of_text_convert_to_text_and_back() -> None:
    """A CRM multi-select (a list) going to a text column, and a list field from text."""
    batch = _batch(tags=[["a", "b"], [], None], text=["[x, y]", "[]", None])
    types = {"tags": pa.string(), "text": pa.list_(pa.string())}
    with Coercer(types) as coercer:
        out, rejected = coercer.apply(batch)
    assert rejected == []
    assert out.column("tags").to_pylist() == ["[a, b]", "[]", None]
    assert out.column("text").to_pylist() == [["x", "y"], [], None]


PLAIN = {
    "i": (pa.int64(), ["0", "-0", "007", "42", "-123456789012345678", None]),
    "d": (pa.date32(), ["2024-02-29", "0001-01-01", "9999-12-31", None]),
    "t": (
        pa.timestamp("us", tz="UTC"),
        ["2024-01-02 03:04:05", "2024-01-02T23:59:59.5", "1970-01-01 00:00:00.000001", None],
    ),
    "n": (pa.timestamp("us"), ["2024-01-02 03:04:05.123456", None]),
    "m": (pa.decimal128(12, 2), ["0", "-0.5", "1234567890.12", "3.1", None]),
    "z": (pa.decimal128(5, 0), ["12345", "-1", None]),
    "b": (pa.bool_(), ["true", "false", "TRUE", "False", "1", "0", None]),
}


@pytest.mark.parametrize("name", list(PLAIN))
def test_plain_forms_convert_as_the_general_rules_do(name: str) -> None:
    """Arrow's conversion of a column in plain form gives exactly what the general rules give
    (forced here by one value in another form, which they also reject)."""
    dtype, values = PLAIN[name]
    plain = plain_cast(pa.array(values, pa.string()), dtype)
    assert plain is not None
    general, rejected = Coercer({name: dtype}).apply(_batch(**{name: [*values, "x y"]}))
    assert [r.reason for r in rejected] == [f"'x y' is not a {describe_type(dtype)}"]
    assert plain.to_pylist() == general.column(name).to_pylist()


@pytest.mark.parametrize(
    ("dtype", "value"),
    [
        (pa.int64(), " 1"),
        (pa.int64(), "+1"),
        (pa.int64(), "0x1A"),
        (pa.int64(), "1e3"),
        (pa.int64(), "1234567890123456789"),  # 19 digits: the general rules decide
        (pa.int64(), ""),
        (pa.date32(), "2024-02-30"),
        (pa.date32(), "2024-1-5"),
        (pa.date32(), "0000-01-01"),
        (pa.timestamp("us", tz="UTC"), "2024-01-02 03:04:05Z"),
        (pa.timestamp("us", tz="UTC"), "2024-01-02"),
        (pa.timestamp("us", tz="UTC"), "2024-01-02 24:00:00"),
        (pa.decimal128(12, 2), "1.235"),  # rounded by the general rules
        (pa.decimal128(12, 2), "1e2"),
        (pa.decimal128(12, 2), "12345678901"),  # too many digits before the point
        (pa.bool_(), "yes"),
        (pa.bool_(), "t"),
        (pa.bool_(), " true"),
        (pa.bool_(), "tRUE"),
    ],
)
def test_other_forms_are_left_to_the_general_rules(dtype: pa.DataType, value: str) -> None:
    assert plain_cast(pa.array(["1", value] if dtype == pa.int64() else [value]), dtype) is None


@pytest.mark.parametrize(
    ("values", "source", "dtype"),
    [
        (["995292.23", "-1.50", None], pa.decimal128(38, 9), pa.decimal128(12, 2)),
        (["7", "-123", None], pa.decimal128(20, 4), pa.decimal128(5, 0)),
        (["42", None], pa.int64(), pa.int32()),
        (["42", None], pa.int32(), pa.int64()),
    ],
)
def test_numbers_that_fit_the_new_type_as_they_are_are_converted_by_arrow(
    values: list[str | None], source: pa.DataType, dtype: pa.DataType
) -> None:
    column = pa.array(values, pa.string()).cast(source)
    plain = plain_cast(column, dtype)
    assert plain is not None
    assert plain.type == dtype
    general, rejected = Coercer({"v": dtype}).apply(_batch(v=column))
    assert rejected == []
    assert plain.to_pylist() == general.column("v").to_pylist()


@pytest.mark.parametrize(
    ("value", "source", "dtype", "expected"),
    [
        ("1.25", pa.decimal128(38, 9), pa.decimal128(12, 1), Decimal("1.3")),  # rounded
        ("-1.25", pa.decimal128(38, 9), pa.decimal128(12, 1), Decimal("-1.3")),
        ("2.5", pa.decimal128(10, 2), pa.int64(), 3),
        ("99999", pa.decimal128(38, 9), pa.decimal128(4, 1), None),  # does not fit
        (str(2**40), pa.int64(), pa.int32(), None),
    ],
)
def test_numbers_that_change_are_left_to_the_general_rules(
    value: str, source: pa.DataType, dtype: pa.DataType, expected: object
) -> None:
    column = pa.array([value], pa.string()).cast(source)
    assert plain_cast(column, dtype) is None
    out, rejected = Coercer({"v": dtype}).apply(_batch(v=column))
    if expected is None:
        assert [r.field for r in rejected] == ["v"]
    else:
        assert out.column("v").to_pylist() == [expected]
