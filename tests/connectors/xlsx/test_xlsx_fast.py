"""Sheets read through fastexcel give exactly what the row-by-row reader gives."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest
from openpyxl import Workbook
from xlsx_helpers import make_workbook, people_rows

from crmbridge.connectors.xlsx import fast
from crmbridge.connectors.xlsx.reader import SheetOptions, SheetReader

pytest.importorskip("fastexcel")

CLEAN = [
    [None],
    ["id", "", "name", "when", "day", "flag", "other id", "amount", "empty"],
    [1, None, "Ann", dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2), True, 7, 2.5],
    [],
    [2, None, "", dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 3), False, 8, 3],
    [3, None, "Zoë", None, None, None, None, -1.25],
]


def _read(path: Path, sheet: str, options: SheetOptions) -> tuple[list[str], list[dict]]:
    sheet_reader = SheetReader(path, sheet, sheet, options)
    types = [f"{f.name}:{f.type.value}" for f in sheet_reader.schema.fields]
    rows: list[dict] = []
    for item in sheet_reader.records(2):
        assert isinstance(item, pa.RecordBatch)
        rows += item.to_pylist()
    return types, rows


def _both(path: Path, sheet: str, options: SheetOptions, monkeypatch: pytest.MonkeyPatch):
    fast_read = _read(path, sheet, options)
    monkeypatch.setattr(fast, "read_sheet", lambda *a, **k: None)
    return fast_read, _read(path, sheet, options)


@pytest.mark.parametrize("header", [True, False])
def test_a_clean_sheet_reads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: bool
) -> None:
    # without a header the names row would be data: text in number columns
    make_workbook(tmp_path / "c.xlsx", {"S": CLEAN if header else CLEAN[:1] + CLEAN[2:]})
    options = SheetOptions(header=header)
    assert SheetReader(tmp_path / "c.xlsx", "S", "S", options).fast
    fast_read, slow_read = _both(tmp_path / "c.xlsx", "S", options, monkeypatch)
    assert fast_read == slow_read
    if header:
        assert fast_read[0] == [
            "id:integer",
            "col_2:string",
            "name:string",
            "when:datetime",
            "day:date",
            "flag:boolean",
            "other id:integer",
            "amount:float",
            "empty:string",
        ]


def test_the_people_sheet_reads_the_same_both_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_workbook(tmp_path / "p.xlsx", {"People": people_rows()})
    assert SheetReader(tmp_path / "p.xlsx", "People", "People", SheetOptions()).fast
    fast_read, slow_read = _both(tmp_path / "p.xlsx", "People", SheetOptions(), monkeypatch)
    assert fast_read == slow_read


@pytest.mark.parametrize(
    "column",
    [
        [1, 2, "n/a"],  # text below numbers
        [1, 2, 2.5],  # a fraction below whole numbers (infer_rows 2)
        [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 3, 4)],
        [None, None, 5],  # nothing in the first rows: text
        ["a", "b", 3],  # a number in a text column
        [1, 2, "NA"],  # fastexcel: a missing value
        [1, 2, "nan"],  # fastexcel: NaN
        [True, False, "null"],
    ],
)
def test_a_sheet_fastexcel_would_change_is_left_to_the_row_by_row_reader(
    tmp_path: Path, column: list[object]
) -> None:
    make_workbook(tmp_path / "m.xlsx", {"S": [["x", "y"], *[[v, 1] for v in column]]})
    assert not SheetReader(tmp_path / "m.xlsx", "S", "S", SheetOptions(infer_rows=2)).fast


def test_a_repeated_name_is_left_to_the_row_by_row_reader(
    tmp_path: Path,
) -> None:
    # fastexcel names them a, a_1: the same as a header "a", "a_1"
    make_workbook(tmp_path / "r.xlsx", {"S": [["a", "a", "a_2"], [1, 2, 3]]})
    assert not SheetReader(tmp_path / "r.xlsx", "S", "S", SheetOptions()).fast
    make_workbook(tmp_path / "r.xlsx", {"S": [["a", "b", "c_2"], [1, 2, 3]]})
    assert SheetReader(tmp_path / "r.xlsx", "S", "S", SheetOptions()).fast


@pytest.mark.parametrize("word", ["n/a", "NULL", "<NA>"])
def test_a_missing_value_word_in_inline_text_is_left_to_the_row_by_row_reader(
    tmp_path: Path, word: str
) -> None:
    book = Workbook(write_only=True)  # text as inline strings, not shared ones
    sheet = book.create_sheet("S")
    for row in (["x"], [1], [word], [2]):
        sheet.append(row)
    book.save(tmp_path / "w.xlsx")
    sheet_reader = SheetReader(tmp_path / "w.xlsx", "S", "S", SheetOptions())
    assert not sheet_reader.fast
    values = [v for item in sheet_reader.records(10) for v in item.to_pydict()["x"]]
    assert values == ["1", word, "2"]  # a text column, as the rules say; not a null
