"""The helpers the file connectors share (crmbridge.connectors.common.files)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from crmbridge.connectors.common.files import (
    TEMP_MARK,
    MismatchError,
    column_names,
    convert_cell,
    format_column,
    infer_type,
    to_text,
)
from crmbridge.connectors.csv import CsvConnector, CsvSettings
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import FieldType
from crmbridge.errors import FatalError
from crmbridge.testing.writes import write_records


def test_column_names() -> None:
    assert column_names(["a", "", " a ", None, "a"], header=True) == [
        "a",
        "col_2",
        "a_2",
        "col_4",
        "a_3",
    ]
    assert column_names(["x", "y"], header=False) == ["col_1", "col_2"]


def test_infer_type() -> None:
    assert infer_type([1, 2.0, None, ""]) is FieldType.INTEGER
    assert infer_type([1, 2.5]) is FieldType.FLOAT
    assert infer_type([True, False]) is FieldType.BOOLEAN
    assert infer_type([True, 1]) is FieldType.STRING
    assert infer_type([dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 8)]) is FieldType.DATETIME
    assert infer_type([dt.date(2024, 1, 1)]) is FieldType.DATE
    assert infer_type([]) is FieldType.STRING
    assert infer_type([1, ""], empty_is_null=False) is FieldType.STRING


def test_convert_cell() -> None:
    assert convert_cell(3.0, FieldType.INTEGER) == 3
    assert convert_cell("", FieldType.INTEGER) is None
    assert convert_cell(dt.datetime(2024, 1, 1, 8), FieldType.DATETIME) == dt.datetime(
        2024, 1, 1, 8, tzinfo=dt.UTC
    )
    assert convert_cell(dt.date(2024, 1, 1), FieldType.DATETIME) == dt.datetime(
        2024, 1, 1, tzinfo=dt.UTC
    )
    with pytest.raises(MismatchError, match="not an integer"):
        convert_cell(True, FieldType.INTEGER)
    with pytest.raises(MismatchError, match="out of the integer range"):
        convert_cell(2**70, FieldType.INTEGER)
    with pytest.raises(MismatchError, match="not a boolean"):
        convert_cell(1, FieldType.BOOLEAN)


def test_to_text() -> None:
    assert [to_text(v) for v in (True, 3.0, 2.5, 7, dt.date(2024, 1, 2), {"a": "é"})] == [
        "true",
        "3",
        "2.5",
        "7",
        "2024-01-02",
        '{"a": "é"}',
    ]


def test_format_column_datetimes_are_iso_utc() -> None:
    values = pa.array(
        [
            dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC),
            dt.datetime(2024, 3, 1, 14, 30, 0, 5, tzinfo=dt.UTC),
            None,
        ],
        pa.timestamp("us", tz="UTC"),
    )
    assert format_column(values).to_pylist() == [
        "2024-03-01T14:30:00Z",
        "2024-03-01T14:30:00.000005Z",
        None,
    ]
    assert format_column(pa.array([True, None])).to_pylist() == ["true", None]


def test_a_file_that_cannot_be_completed_is_a_fatal_error_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    (tmp_path / "t.csv").mkdir()  # the rename at close cannot replace a folder
    conn = CsvConnector("out", CsvSettings(path=str(tmp_path)))
    batch = pa.RecordBatch.from_pydict({"a": ["1"]})
    write_records(conn, "t.csv", batch, WriteMode.INSERT)
    write_records(conn, "u.csv", batch, WriteMode.INSERT)
    with pytest.raises(FatalError, match="cannot access") as info:
        conn.close()
    assert info.value.context.object == "t.csv"
    assert (tmp_path / "u.csv").read_text() == "a\n1\n"  # the other file is complete
    assert not [p for p in tmp_path.iterdir() if TEMP_MARK in p.name]
