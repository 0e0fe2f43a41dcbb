"""The delimiter of a file: detected when the connection sets none, checked when it does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest
from crmbridge.connectors.csv import CsvConnector, CsvSettings
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError
from crmbridge.testing.writes import write_records


def connector(folder: Path, **settings: Any) -> CsvConnector:
    return CsvConnector("files", CsvSettings(path=str(folder), **settings))


def read(folder: Path, name: str = "t.csv", **settings: Any) -> list[dict[str, Any]]:
    batches = connector(folder, **settings).read(ReadRequest(name))
    return [row for batch in batches for row in batch.to_pylist()]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("id;name;city\n1;Ann;Köln\n2;Bob;Wien\n", "t.csv"),  # a European Excel export
        ("id\tname\tcity\n1\tAnn\tKöln\n2\tBob\tWien\n", "t.tsv"),
        ("id|name|city\n1|Ann|Köln\n2|Bob|Wien\n", "t.csv"),
        ('id,name,city\n1,"Ann; Jr.",Köln\n2,Bob,Wien\n', "t.csv"),  # a ; inside quotes
        ('id;name;city\r\n1;"A;n";Köln\r\n2;Bob, Jr.;Wien\r\n', "t.csv"),
    ],
)
def test_the_delimiter_is_detected_when_none_is_set(tmp_path: Path, text: str, name: str) -> None:
    (tmp_path / name).write_text(text, encoding="utf-8")
    assert connector(tmp_path).describe(name).field_names == ["id", "name", "city"]
    rows = read(tmp_path, name)
    assert [r["city"] for r in rows] == ["Köln", "Wien"]


def test_one_column_files_and_empty_files_read_as_they_are(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("email\na@x.com\nb@y.org\n", encoding="utf-8")
    assert read(tmp_path) == [{"email": "a@x.com"}, {"email": "b@y.org"}]
    (tmp_path / "t.csv").write_text("", encoding="utf-8")
    assert connector(tmp_path).describe("t.csv").field_names == []


def test_skipped_title_lines_do_not_decide_the_delimiter(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("Export, 2024-03-01\nid;name\n1;Ann\n", encoding="utf-8")
    assert read(tmp_path, skip_rows=1) == [{"id": "1", "name": "Ann"}]


def test_a_wrong_delimiter_stops_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id;name;city\n1;Ann;Köln\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        connector(tmp_path, delimiter=",").describe("t.csv")
    assert str(info.value) == (
        "connection 'files', object 't.csv': 't.csv' reads as one column with the delimiter "
        "',', but its lines split evenly at ';': set the connection's delimiter to ';', or "
        "leave it unset to detect it"
    )
    assert read(tmp_path, delimiter=";") == [{"id": "1", "name": "Ann", "city": "Köln"}]


def _insert(conn: CsvConnector, name: str, **columns: list[Any]) -> None:
    arrays = {k: pa.array(v) for k, v in columns.items()}
    arrays[ROW_COLUMN] = pa.array(range(1, len(next(iter(columns.values()))) + 1), pa.int64())
    write_records(conn, name, pa.RecordBatch.from_pydict(arrays), WriteMode.INSERT)
    conn.close()


def test_new_files_get_a_tab_for_tsv_and_appending_keeps_the_files_delimiter(
    tmp_path: Path,
) -> None:
    _insert(connector(tmp_path), "new.tsv", a=["1"], b=["x,y"])
    assert (tmp_path / "new.tsv").read_text() == "a\tb\n1\tx,y\n"
    _insert(connector(tmp_path), "new.csv", a=["1"], b=["x;y"])
    assert (tmp_path / "new.csv").read_text() == "a,b\n1,x;y\n"
    (tmp_path / "old.csv").write_text("a;b\n0;z\n", encoding="utf-8")
    _insert(connector(tmp_path, append=True), "old.csv", a=["1"], b=["x,y"])
    assert (tmp_path / "old.csv").read_text() == "a;b\n0;z\n1;x,y\n"


@pytest.mark.parametrize("text", ["id,name", "id,name\r\n", "id,name\n", "title\nid,name"])
def test_a_file_with_only_a_header_has_no_records(tmp_path: Path, text: str) -> None:
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    settings = {"skip_rows": 1} if text.startswith("title") else {}
    assert connector(tmp_path, **settings).describe("t.csv").field_names == ["id", "name"]
    assert read(tmp_path, **settings) == []
