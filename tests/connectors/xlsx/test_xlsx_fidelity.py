"""What is written to a workbook is what is read from it: text that looks like a formula or an
error stays text, and Excel error cells are rejected records, never nulls."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pytest

from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest
from crmbridge.connectors.xlsx import XlsxConnector, XlsxSettings
from crmbridge.core.outcomes import WriteMode
from crmbridge.testing.writes import write_records

#: values openpyxl would store as a live formula or an error cell if written naively
TRICKY = [
    "=SUM(1,2)",
    '=HYPERLINK("http://evil.example","click")',
    "#DIV/0!",
    "#N/A",
    "+1",
    "@cmd",
    "plain",
]


def connector(folder: Path) -> XlsxConnector:
    return XlsxConnector("files", XlsxSettings(path=str(folder)))


def _write(folder: Path, name: str, **columns: list[Any]) -> Path:
    conn = connector(folder)
    arrays = {k: pa.array(v) for k, v in columns.items()}
    arrays[ROW_COLUMN] = pa.array(range(1, len(next(iter(columns.values()))) + 1), pa.int64())
    result = write_records(conn, name, pa.RecordBatch.from_pydict(arrays), WriteMode.INSERT)
    assert set(result.outcome.to_pylist()) == {"created"}
    conn.close()
    return folder / name


def test_text_is_written_as_text_cells(tmp_path: Path) -> None:
    path = _write(tmp_path, "out.xlsx", **{"=label": TRICKY, "n": list(range(len(TRICKY)))})
    sheet = openpyxl.load_workbook(path)["Sheet1"]
    header, *rows = list(sheet.iter_rows())
    assert [(c.value, c.data_type) for c in header] == [("=label", "s"), ("n", "s")]
    assert [(r[0].value, r[0].data_type) for r in rows] == [(v, "s") for v in TRICKY]
    assert [r[1].data_type for r in rows] == ["n"] * len(TRICKY)
    read = [r for b in connector(tmp_path).read(ReadRequest("out.xlsx")) for r in b.to_pylist()]
    assert [r["=label"] for r in read] == TRICKY


def _libreoffice() -> str:
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        pytest.skip("LibreOffice is not installed (apt-get install libreoffice-calc-nogui)")
    return found


def _libreoffice_convert(source: Path, to: str, folder: Path) -> Path:
    profile = folder / "lo-profile"  # its own user profile: never the user's, no lock clash
    command = [
        _libreoffice(),
        f"-env:UserInstallation=file://{profile}",
        "--headless",
        "--convert-to",
        to,
        "--outdir",
        str(folder),
        str(source),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    return folder / f"{source.stem}.{to.split(':')[0]}"


@pytest.mark.slow
def test_libreoffice_shows_the_text_not_a_formula_result(tmp_path: Path) -> None:
    path = _write(tmp_path, "out.xlsx", label=TRICKY, n=list(range(len(TRICKY))))
    exported = _libreoffice_convert(path, "csv", tmp_path / "lo")
    with open(exported, newline="", encoding="utf-8") as stream:
        rows = list(csv.reader(stream))
    assert rows[0] == ["label", "n"]
    assert [r[0] for r in rows[1:]] == TRICKY  # =SUM(1,2) would show 3, the link "click"


def test_error_cells_are_rejected_records_with_the_reason(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet["C2"], sheet["D2"] = "name", "amount"  # the data does not start in A1
    sheet["C3"], sheet["D3"] = "Ann", 10
    sheet["C4"], sheet["D4"] = "Bob", "#DIV/0!"  # openpyxl stores this as an error cell
    sheet["C5"], sheet["D5"] = "#N/A", 30
    sheet["C6"], sheet["D6"] = "Dan", 40
    sheet["D7"] = "#REF!"  # a row whose only cell is an error is not an empty row
    book.save(tmp_path / "e.xlsx")
    bad: list[BadRecord] = []
    request = ReadRequest("e.xlsx", on_bad_record=bad.append)
    rows = [r for b in connector(tmp_path).read(request) for r in b.to_pylist()]
    assert rows == [{"name": "Ann", "amount": 10}, {"name": "Dan", "amount": 40}]
    assert [(b.position, b.reason) for b in bad] == [
        (4, "field 'amount': cell D4 holds the Excel error #DIV/0!"),
        (5, "field 'name': cell C5 holds the Excel error #N/A"),
        (7, "field 'amount': cell D7 holds the Excel error #REF!"),
    ]
    assert bad[0].raw == '{"name": "Bob"}'


@pytest.mark.slow
def test_formula_errors_computed_by_libreoffice_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("name,amount\nAnn,=1/0\nBob,=2*3\n", encoding="utf-8")
    path = _libreoffice_convert(tmp_path / "f.csv", "xlsx", tmp_path)
    bad: list[BadRecord] = []
    request = ReadRequest("f.xlsx", on_bad_record=bad.append)
    rows = [r for b in connector(tmp_path).read(request) for r in b.to_pylist()]
    assert path.name == "f.xlsx"
    assert rows == [{"name": "Bob", "amount": 6}]
    assert [(b.position, b.reason) for b in bad] == [
        (2, "field 'amount': cell B2 holds the Excel error #DIV/0!")
    ]
