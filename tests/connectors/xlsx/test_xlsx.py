"""Excel workbooks: typed reading, sheet choice, rows that do not fit, writing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from xlsx_helpers import PEOPLE, make_workbook, people_rows

from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest
from crmbridge.connectors.xlsx import XlsxConnector, XlsxSettings
from crmbridge.connectors.xlsx.writer import MAX_ROWS
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError, RecordError
from crmbridge.testing.writes import write_records


def connector(folder: Path, **settings: Any) -> XlsxConnector:
    return XlsxConnector("files", XlsxSettings(path=str(folder), **settings))


def read(
    conn: XlsxConnector, object: str, *, bad: list[BadRecord] | None = None, **kw: Any
) -> list[dict[str, Any]]:
    request = ReadRequest(object, on_bad_record=bad.append if bad is not None else None, **kw)
    return [r for b in conn.read(request) for r in b.to_pylist()]


def types(conn: XlsxConnector, object: str) -> dict[str, str]:
    return {f.name: f.type.value for f in conn.describe(object).fields}


def test_typed_cells_are_read_typed(tmp_path: Path) -> None:
    make_workbook(tmp_path / "p.xlsx", {"People": people_rows()})
    conn = connector(tmp_path)
    assert types(conn, "p.xlsx") == {
        "id": "integer",
        "name": "string",
        "born": "date",
        "seen": "datetime",
        "score": "float",
        "active": "boolean",
    }
    assert read(conn, "p.xlsx") == PEOPLE


def test_objects_name_every_sheet_and_the_file_alone_is_the_first(tmp_path: Path) -> None:
    make_workbook(tmp_path / "b.xlsx", {"First": [["a"], [1]], "Second sheet": [["b"], ["x"]]})
    make_workbook(tmp_path / "a.xlsx", {"Only": [["c"], [True]]})
    conn = connector(tmp_path)
    assert conn.objects() == ["a.xlsx#Only", "b.xlsx#First", "b.xlsx#Second sheet"]
    assert read(conn, "b.xlsx") == [{"a": 1}]
    assert read(conn, "b.xlsx#Second sheet") == [{"b": "x"}]
    assert read(connector(tmp_path, sheet="Second sheet"), "b.xlsx") == [{"b": "x"}]


def test_unknown_sheet_suggests_close_names(tmp_path: Path) -> None:
    make_workbook(tmp_path / "b.xlsx", {"Leads": [["a"]]})
    with pytest.raises(
        ConfigError, match=r"unknown object 'b.xlsx#Laeds'; did you mean 'b.xlsx#Leads'"
    ):
        connector(tmp_path).describe("b.xlsx#Laeds")


def test_mixed_and_text_columns(tmp_path: Path) -> None:
    rows = [["mixed", "zip", "when"], [1, "01234", dt.time(9, 30)], ["x", 75001, None]]
    make_workbook(tmp_path / "m.xlsx", {"S": rows})
    conn = connector(tmp_path)
    assert types(conn, "m.xlsx") == {"mixed": "string", "zip": "string", "when": "string"}
    assert read(conn, "m.xlsx") == [
        {"mixed": "1", "zip": "01234", "when": "09:30:00"},
        {"mixed": "x", "zip": "75001", "when": None},
    ]


def test_a_later_cell_that_does_not_fit_is_a_bad_row(tmp_path: Path) -> None:
    rows = [["id", "amount"], [1, 2.5], [2, 3], ["n/a", 4], [4, "free"], [5, 1]]
    make_workbook(tmp_path / "m.xlsx", {"S": rows})
    conn = connector(tmp_path, infer_rows=2)
    assert types(conn, "m.xlsx") == {"id": "integer", "amount": "float"}
    bad: list[BadRecord] = []
    assert read(conn, "m.xlsx", bad=bad) == [
        {"id": 1, "amount": 2.5},
        {"id": 2, "amount": 3.0},
        {"id": 5, "amount": 1.0},
    ]
    assert bad == [
        BadRecord(
            4,
            '{"id": "n/a", "amount": "4"}',
            "field 'id': 'n/a' is not an integer (integer inferred from the first rows)",
        ),
        BadRecord(
            5,
            '{"id": "4", "amount": "free"}',
            "field 'amount': 'free' is not a number (float inferred from the first rows)",
        ),
    ]
    with pytest.raises(RecordError, match="row 4: field 'id'"):
        read(conn, "m.xlsx")


def test_row_numbers_are_the_sheet_rows_when_data_starts_lower(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["C3"], sheet["C4"], sheet["C5"], sheet["C6"] = "id", 1, "x", 3
    book.save(tmp_path / "off.xlsx")
    bad: list[BadRecord] = []
    assert read(connector(tmp_path, infer_rows=1), "off.xlsx", bad=bad) == [{"id": 1}, {"id": 3}]
    assert [b.position for b in bad] == [5]


def test_datetimes_fit_dates_only_at_midnight(tmp_path: Path) -> None:
    rows = [
        ["d"],
        [dt.date(2024, 1, 1)],
        [dt.datetime(2024, 1, 2, 0, 0)],
        [dt.datetime(2024, 1, 3, 8, 0)],
    ]
    make_workbook(tmp_path / "d.xlsx", {"S": rows})
    bad: list[BadRecord] = []
    got = read(connector(tmp_path, infer_rows=2), "d.xlsx", bad=bad)
    assert got == [{"d": dt.date(2024, 1, 1)}, {"d": dt.date(2024, 1, 2)}]
    assert bad[0].position == 4
    assert "date-time where a date is expected" in bad[0].reason


def test_no_header_skip_rows_and_empty_rows(tmp_path: Path) -> None:
    rows = [["Report"], [None], ["id", "name"], [1, "Ann"], [None, None], [2, None]]
    make_workbook(tmp_path / "r.xlsx", {"S": rows})
    assert read(connector(tmp_path, skip_rows=1), "r.xlsx") == [
        {"id": 1, "name": "Ann"},
        {"id": 2, "name": None},
    ]
    headless = connector(tmp_path, skip_rows=2, header=False)
    assert read(headless, "r.xlsx") == [{"col_1": 1, "col_2": "Ann"}, {"col_1": 2, "col_2": None}]


def test_data_beyond_the_header_gets_a_column(tmp_path: Path) -> None:
    make_workbook(tmp_path / "w.xlsx", {"S": [["a"], [1, "stray"]]})
    assert read(connector(tmp_path), "w.xlsx") == [{"a": 1, "col_2": "stray"}]


def test_batches_hold_batch_size_rows(tmp_path: Path) -> None:
    make_workbook(tmp_path / "n.xlsx", {"S": [["n"]] + [[i] for i in range(25)]})
    batches = list(connector(tmp_path).read(ReadRequest("n.xlsx", batch_size=10)))
    assert [b.num_rows for b in batches] == [10, 10, 5]


def _batch(rows: list[dict[str, Any]], types: dict[str, pa.DataType]) -> pa.RecordBatch:
    arrays = [pa.array([r[n] for r in rows], t) for n, t in types.items()]
    arrays.append(pa.array(range(1, len(rows) + 1), pa.int64()))
    return pa.RecordBatch.from_arrays(arrays, names=[*types, ROW_COLUMN])


PEOPLE_TYPES = {
    "id": pa.int64(),
    "name": pa.string(),
    "born": pa.date32(),
    "seen": pa.timestamp("us", tz="UTC"),
    "score": pa.float64(),
    "active": pa.bool_(),
}


def test_write_then_read_back(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    result = write_records(conn, "new.xlsx#Team", _batch(PEOPLE, PEOPLE_TYPES), WriteMode.INSERT)
    assert result.outcome.to_pylist() == ["created"] * 4
    write_records(conn, "new.xlsx#Other", _batch(PEOPLE[:1], PEOPLE_TYPES), WriteMode.INSERT)
    assert not (tmp_path / "new.xlsx").exists()
    conn.close()
    assert conn.objects() == ["new.xlsx#Team", "new.xlsx#Other"]
    assert read(conn, "new.xlsx#Team") == PEOPLE
    assert types(conn, "new.xlsx#Team")["born"] == "date"


def test_written_cells_are_excel_typed(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    conn = connector(tmp_path, sheet="Data")
    data = _batch(
        [{"d": dt.date(2024, 2, 29), "amount": Decimal("1.50")}],
        {"d": pa.date32(), "amount": pa.decimal128(9, 2)},
    )
    write_records(conn, "typed.xlsx", data, WriteMode.INSERT)
    conn.close()
    book = load_workbook(tmp_path / "typed.xlsx")
    cell = book["Data"]["A2"]
    assert cell.is_date
    assert cell.number_format == "yyyy-mm-dd"
    assert book["Data"]["B2"].value == 1.5
    book.close()


def test_values_excel_cannot_hold_are_rejected(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    data = _batch(
        [
            {"n": 1, "t": "ok", "d": dt.date(2024, 1, 1)},
            {"n": 2**60, "t": "ok", "d": dt.date(2024, 1, 1)},
            {"n": 3, "t": "bell\x07", "d": dt.date(2024, 1, 1)},
            {"n": 4, "t": "x" * 32_768, "d": dt.date(2024, 1, 1)},
            {"n": 5, "t": "ok", "d": dt.date(1899, 12, 31)},
        ],
        {"n": pa.int64(), "t": pa.string(), "d": pa.date32()},
    )
    result = write_records(conn, "bad.xlsx", data, WriteMode.INSERT)
    assert result.outcome.to_pylist() == ["created"] + ["rejected"] * 4
    assert result.reason.to_pylist() == [
        None,
        "field 'n': integer too large for an Excel number (15 digits)",
        "field 't': control characters Excel cannot store",
        "field 't': text longer than Excel's 32,767 characters",
        "field 'd': Excel cannot store dates before 1900-03-01",
    ]
    conn.close()
    assert read(conn, "bad.xlsx") == [{"n": 1, "t": "ok", "d": dt.date(2024, 1, 1)}]


def test_rows_past_the_sheet_limit_are_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crmbridge.connectors.xlsx.writer as writer

    monkeypatch.setattr(writer, "MAX_ROWS", 3)
    conn = connector(tmp_path)
    result = write_records(
        conn, "big.xlsx", _batch([{"n": i} for i in range(4)], {"n": pa.int64()}), WriteMode.INSERT
    )
    assert result.outcome.to_pylist() == ["created", "created", "rejected", "rejected"]
    assert result.reason[2].as_py() == "an Excel sheet holds at most 3 rows"
    conn.close()
    assert MAX_ROWS == 1_048_576


def test_bad_sheet_names_are_refused(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    with pytest.raises(ConfigError, match="cannot be an Excel sheet name") as info:
        write_records(conn, "x.xlsx#a/b", _batch([{"n": 1}], {"n": pa.int64()}), WriteMode.INSERT)
    assert info.value.context.object == "x.xlsx#a/b"
    conn.close()


def test_a_file_that_is_not_a_workbook_is_named(tmp_path: Path) -> None:
    (tmp_path / "broken.xlsx").write_text("not a zip")
    with pytest.raises(
        ConfigError, match=r"'broken\.xlsx' is not a readable \.xlsx workbook"
    ) as info:
        connector(tmp_path).objects()
    assert info.value.context.object == "broken.xlsx"


def test_read_after_describe_uses_the_parsed_sheet_unless_the_file_changed(
    tmp_path: Path,
) -> None:
    import os

    make_workbook(tmp_path / "p.xlsx", {"People": people_rows()})
    conn = connector(tmp_path)
    conn.describe("p.xlsx")
    first = read(conn, "p.xlsx")
    assert [r["id"] for r in first] == [p["id"] for p in PEOPLE]
    assert read(conn, "p.xlsx") == first  # a second read parses the sheet again

    conn.describe("p.xlsx")
    make_workbook(tmp_path / "p.xlsx", {"People": people_rows()[:2]})
    stamp = (tmp_path / "p.xlsx").stat().st_mtime + 5
    os.utime(tmp_path / "p.xlsx", (stamp, stamp))  # the file changed after describe
    assert [r["id"] for r in read(conn, "p.xlsx")] == [1]
    conn.close()
