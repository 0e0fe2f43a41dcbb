"""Reading CSV files: dialects, encodings, nulls, and malformed lines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import crmbridge.connectors.csv.reader as csv_reader
from crmbridge.connectors.base import BadRecord, ReadRequest
from crmbridge.connectors.csv import CsvConnector, CsvSettings
from crmbridge.errors import ConfigError, RecordError


def connector(folder: Path, **settings: Any) -> CsvConnector:
    return CsvConnector("files", CsvSettings(path=str(folder), **settings))


def read(
    folder: Path, name: str = "t.csv", *, bad: list[BadRecord] | None = None, **settings: Any
) -> list[dict[str, Any]]:
    request = ReadRequest(name, on_bad_record=bad.append if bad is not None else None)
    return [
        row for batch in connector(folder, **settings).read(request) for row in batch.to_pylist()
    ]


def write(folder: Path, data: str | bytes, name: str = "t.csv") -> None:
    path = folder / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


@pytest.mark.parametrize("bom", ["", "\ufeff"])
def test_utf8_with_or_without_bom_reads_the_same(tmp_path: Path, bom: str) -> None:
    write(tmp_path, f"{bom}name,city\nRenée,Zürich\n")
    assert connector(tmp_path).describe("t.csv").field_names == ["name", "city"]
    assert read(tmp_path) == [{"name": "Renée", "city": "Zürich"}]


def test_cp1252_text_with_its_encoding(tmp_path: Path) -> None:
    write(tmp_path, "name;price\nCafé;5 €\n".encode("cp1252"))
    rows = read(tmp_path, encoding="cp1252", delimiter=";")
    assert rows == [{"name": "Café", "price": "5 €"}]


def test_cp1252_bytes_read_as_utf8_name_the_setting_to_change(tmp_path: Path) -> None:
    write(tmp_path, "name\nCafé\n".encode("cp1252"))
    with pytest.raises(ConfigError, match="not utf-8 text; set the connection's encoding"):
        read(tmp_path)


def test_semicolon_delimiter_embedded_newlines_and_quotes(tmp_path: Path) -> None:
    write(tmp_path, 'id;note\n1;"two\nlines"\n2;"say ""hi""; bye"\n3;plain\n')
    rows = read(tmp_path, delimiter=";")
    assert rows == [
        {"id": "1", "note": "two\nlines"},
        {"id": "2", "note": 'say "hi"; bye'},
        {"id": "3", "note": "plain"},
    ]


def test_escape_char_and_other_quote_char(tmp_path: Path) -> None:
    write(tmp_path, "id,note\n1,'it\\'s, here'\n")
    rows = read(tmp_path, quote_char="'", escape_char="\\")
    assert rows == [{"id": "1", "note": "it's, here"}]


def test_without_header_columns_are_numbered(tmp_path: Path) -> None:
    write(tmp_path, "1,Ann\n2,Bob\n")
    assert connector(tmp_path, header=False).describe("t.csv").field_names == ["col_1", "col_2"]
    assert read(tmp_path, header=False) == [
        {"col_1": "1", "col_2": "Ann"},
        {"col_1": "2", "col_2": "Bob"},
    ]


def test_blank_and_repeated_header_names_are_made_unique(tmp_path: Path) -> None:
    write(tmp_path, "name,,name\na,b,c\n")
    assert read(tmp_path) == [{"name": "a", "col_2": "b", "name_2": "c"}]


def test_skip_rows_before_the_header(tmp_path: Path) -> None:
    write(tmp_path, "Export of 2024-05-01\nid,name\n1,Ann\n")
    assert read(tmp_path, skip_rows=1) == [{"id": "1", "name": "Ann"}]


def test_empty_cell_is_null_quoted_empty_is_empty_text(tmp_path: Path) -> None:
    write(tmp_path, 'a,b,c\n,"",x\n')
    assert read(tmp_path) == [{"a": None, "b": "", "c": "x"}]


def test_null_values_setting(tmp_path: Path) -> None:
    write(tmp_path, "a,b,c\nNULL,,x\n")
    assert read(tmp_path, null_values=["NULL"]) == [{"a": None, "b": "", "c": "x"}]


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "a,b\n1,x\n\n\n2,y\n,\n")
    assert read(tmp_path) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]


def test_describe_reads_the_header_only(tmp_path: Path) -> None:
    write(tmp_path, "id,name\n1,Ann\n2\n")  # a bad line later does not matter
    schema = connector(tmp_path).describe("t.csv")
    assert [(f.name, f.type.value) for f in schema.fields] == [("id", "string"), ("name", "string")]


def test_bad_lines_go_to_the_callback_with_line_number_and_text(tmp_path: Path) -> None:
    write(tmp_path, 'id,name,note\n1,Ann,"a\nb"\n2,Bob\n\n3,Cy,x,extra\n4,Di,ok\n')
    bad: list[BadRecord] = []
    rows = read(tmp_path, bad=bad)
    assert [r["id"] for r in rows] == ["1", "4"]
    assert bad == [
        BadRecord(4, "2,Bob", "expected 3 fields, found 2"),
        BadRecord(6, "3,Cy,x,extra", "expected 3 fields, found 4"),
    ]


def test_without_a_callback_the_first_bad_line_raises(tmp_path: Path) -> None:
    write(tmp_path, "id,name\n1,Ann\n2\n")
    with pytest.raises(RecordError, match=r"line 3: expected 2 fields, found 1: '2'") as info:
        read(tmp_path)
    assert info.value.context.record == 3
    assert info.value.context.object == "t.csv"


def test_line_numbers_stay_right_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 64)
    lines = ["id,name"]
    expected: list[int] = []
    for i in range(1, 60):
        if i % 10 == 0:
            expected.append(len(lines) + 1)
            lines.append(f"{i},bad,extra")
        elif i % 7 == 0:
            lines.append(f'{i},"multi\nline"')
        else:
            lines.append(f"{i},n{i}")
    write(tmp_path, "\n".join(lines) + "\n")
    bad: list[BadRecord] = []
    rows = read(tmp_path, bad=bad)
    assert len(rows) == 54
    text = "\n".join(lines).split("\n")
    assert [b.position for b in bad] == [n for n in range(1, len(text) + 1) if "bad" in text[n - 1]]
    assert [b.raw for b in bad] == [f"{i},bad,extra" for i in range(10, 60, 10)]


def test_unterminated_quote_in_the_last_record_is_reported(tmp_path: Path) -> None:
    write(tmp_path, 'a,b,c\n1,x,y\n5,x,"open\n6,ok,ok\n')
    bad: list[BadRecord] = []
    assert read(tmp_path, bad=bad) == [{"a": "1", "b": "x", "c": "y"}]
    assert bad == [
        BadRecord(3, '5,x,"open\n6,ok,ok\n', "a quote is left open until the end of the file")
    ]


def test_unterminated_quote_with_too_few_fields_is_reported(tmp_path: Path) -> None:
    write(tmp_path, 'a,b,c\n5,"open,x\n6,ok,ok\n')
    bad: list[BadRecord] = []
    assert read(tmp_path, bad=bad) == []
    assert bad[0].position == 2
    assert bad[0].raw.startswith('5,"open,x\n6,ok,ok')


def test_unterminated_quote_past_a_block_falls_back_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 256)
    lines = ["id,name"] + [f"{i},n{i}" for i in range(1, 120)]
    lines[50] = '50,"open'
    write(tmp_path, "\n".join(lines) + "\n")
    bad: list[BadRecord] = []
    rows = read(tmp_path, bad=bad)
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 50)]
    assert [(b.position, b.reason) for b in bad] == [(51, "unexpected end of data")]
    assert bad[0].raw.startswith('50,"open\n51,n51\n')


def test_fallback_resynchronises_after_an_oversized_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_reader, "BLOCK_SIZE", 4096)
    filler = "x" * 100
    lines = ["id,name", "1,a", '2,"open'] + [f"{i},{filler}" for i in range(3, 1600)]
    lines += ['9999,"closed"', "10000,last"]
    write(tmp_path, "\n".join(lines) + "\n")
    bad: list[BadRecord] = []
    rows = read(tmp_path, bad=bad)
    assert rows[0] == {"id": "1", "name": "a"}
    assert rows[-1] == {"id": "10000", "name": "last"}
    assert bad[0].position == 3
    assert "field larger than field limit" in bad[0].reason
    assert sum(len(b.raw) for b in bad) + 100 * len(rows) > 100 * 1500  # nothing vanished


def test_batches_hold_batch_size_rows(tmp_path: Path) -> None:
    write(tmp_path, "n\n" + "".join(f"{i}\n" for i in range(25)))
    batches = list(connector(tmp_path).read(ReadRequest("t.csv", batch_size=10)))
    assert [b.num_rows for b in batches] == [10, 10, 5]


def test_fields_are_returned_in_the_requested_order(tmp_path: Path) -> None:
    write(tmp_path, "a,b,c\n1,2,3\n")
    batch = next(iter(connector(tmp_path).read(ReadRequest("t.csv", fields=["c", "a"]))))
    assert batch.to_pylist() == [{"c": "3", "a": "1"}]


def test_unknown_field_suggests_a_close_name(tmp_path: Path) -> None:
    write(tmp_path, "email\nx\n")
    with pytest.raises(ConfigError, match="unknown field 'emial'; did you mean 'email'"):
        connector(tmp_path).read(ReadRequest("t.csv", fields=["emial"]))


def test_empty_file_has_no_fields_and_no_rows(tmp_path: Path) -> None:
    write(tmp_path, "")
    assert connector(tmp_path).describe("t.csv").fields == ()
    assert read(tmp_path) == []


def test_path_to_one_file(tmp_path: Path) -> None:
    write(tmp_path, "a\n1\n", name="export.txt")
    single = connector(tmp_path / "export.txt")
    assert single.objects() == ["export.txt"]
    assert [b.to_pylist() for b in single.read(ReadRequest("export.txt"))] == [[{"a": "1"}]]


def test_objects_are_csv_and_tsv_files_of_the_folder(tmp_path: Path) -> None:
    for name in ("b.csv", "a.TSV", "c.txt", ".hidden.csv"):
        write(tmp_path, "a\n", name=name)
    (tmp_path / "sub.csv").mkdir()
    assert connector(tmp_path).objects() == ["a.TSV", "b.csv"]


def test_missing_folder_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        connector(tmp_path / "nope").check()
    assert connector(tmp_path).check().details["objects"] == "0"


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="one character"):
        CsvSettings(delimiter=";;")
    with pytest.raises(ValueError, match="unknown encoding"):
        CsvSettings(encoding="klingon")
