import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from crmbridge.connectors.base import ROW_COLUMN
from crmbridge.core.coerce import Coercer, Rejection

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
