"""JSON Lines: type inference, bad lines, nested values, writing."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import crmbridge.connectors.jsonl.reader as jsonl_reader
from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest
from crmbridge.connectors.jsonl import JsonlConnector, JsonlSettings
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import RecordError
from crmbridge.testing.writes import write_records


def connector(folder: Path, **settings: Any) -> JsonlConnector:
    return JsonlConnector("files", JsonlSettings(path=str(folder), **settings))


def read(
    folder: Path, *, bad: list[BadRecord] | None = None, batch_size: int = 100, **settings: Any
) -> list[dict[str, Any]]:
    request = ReadRequest(
        "t.jsonl", batch_size=batch_size, on_bad_record=bad.append if bad is not None else None
    )
    return [r for b in connector(folder, **settings).read(request) for r in b.to_pylist()]


def write_lines(folder: Path, *lines: str) -> None:
    (folder / "t.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def types(folder: Path, **settings: Any) -> dict[str, str]:
    return {f.name: f.type.value for f in connector(folder, **settings).describe("t.jsonl").fields}


def test_types_are_inferred_from_the_first_lines(tmp_path: Path) -> None:
    write_lines(
        tmp_path,
        '{"i": 1, "f": 1, "b": true, "s": "x", "n": {"a": 1}, "l": [1], "m": 1, "z": null}',
        '{"i": 2, "f": 2.5, "b": false, "s": "", "n": null, "l": [], "m": "one", "late": 1}',
    )
    assert types(tmp_path) == {
        "i": "integer",
        "f": "float",
        "b": "boolean",
        "s": "string",
        "n": "string",
        "l": "string",
        "m": "string",
        "z": "string",
        "late": "integer",
    }


def test_nested_values_are_json_text_and_mixed_values_text(tmp_path: Path) -> None:
    write_lines(tmp_path, '{"n": {"a": [1, "é"]}, "m": 1}', '{"n": [], "m": "x"}', '{"m": true}')
    assert read(tmp_path) == [
        {"n": '{"a": [1, "é"]}', "m": "1"},
        {"n": "[]", "m": "x"},
        {"n": None, "m": "true"},
    ]


def test_bad_lines_go_to_the_callback_and_the_rest_is_read(tmp_path: Path) -> None:
    write_lines(
        tmp_path,
        '{"id": 1, "name": "Ann"}',
        "{not json",
        "",
        "[1, 2]",
        '{"id": "two", "name": "Bob"}',
        '{"id": 3, "name": "Cy", "extra": 1}',
        '{"id": 4}',
    )
    bad: list[BadRecord] = []
    rows = read(tmp_path, bad=bad, infer_rows=1)
    assert rows == [{"id": 1, "name": "Ann"}, {"id": 4, "name": None}]
    assert [(b.position, b.raw) for b in bad] == [
        (2, "{not json"),
        (4, "[1, 2]"),
        (5, '{"id": "two", "name": "Bob"}'),
        (6, '{"id": 3, "name": "Cy", "extra": 1}'),
    ]
    assert bad[0].reason.startswith("not valid JSON: ")
    assert bad[1].reason == "not a JSON object but list"
    assert bad[2].reason == "field 'id': \"two\" is a text (integer expected)"
    assert "raise the connection's infer_rows" in bad[3].reason


def test_without_a_callback_a_bad_line_raises(tmp_path: Path) -> None:
    write_lines(tmp_path, '{"id": 1}', "oops")
    with pytest.raises(RecordError, match="line 2: not valid JSON"):
        read(tmp_path)


def test_integral_floats_fit_integers_and_ints_fit_floats(tmp_path: Path) -> None:
    write_lines(tmp_path, '{"i": 1, "f": 0.5}', '{"i": 2.0, "f": 3}', '{"i": 2.5, "f": 1}')
    bad: list[BadRecord] = []
    assert read(tmp_path, bad=bad, infer_rows=1) == [{"i": 1, "f": 0.5}, {"i": 2, "f": 3.0}]
    assert bad[0].reason == "field 'i': 2.5 is not an integer (integer expected)"


def test_fast_and_line_by_line_paths_give_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lines(
        tmp_path,
        '{"i": 1, "f": 1.5, "b": true, "s": "x\\u00e9\\n", "t": null}',
        '{"i": -2, "f": 1e3, "b": false, "t": "y"}',
        '{"s": ""}',
    )
    fast = read(tmp_path)
    monkeypatch.setattr(jsonl_reader, "_with_pyarrow", lambda lines, schema: None)
    assert read(tmp_path) == fast
    assert fast[0] == {"i": 1, "f": 1.5, "b": True, "s": "xé\n", "t": None}


def test_two_objects_on_one_line_are_one_bad_line(tmp_path: Path) -> None:
    write_lines(tmp_path, '{"a": 1}', '{"a": 2} {"a": 3}')
    bad: list[BadRecord] = []
    assert read(tmp_path, bad=bad) == [{"a": 1}]
    assert [b.position for b in bad] == [2]


def test_a_bom_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    assert read(tmp_path) == [{"a": 1}]


def test_batches_hold_batch_size_rows(tmp_path: Path) -> None:
    write_lines(tmp_path, *(f'{{"n": {i}}}' for i in range(25)))
    batches = list(connector(tmp_path).read(ReadRequest("t.jsonl", batch_size=10)))
    assert [b.num_rows for b in batches] == [10, 10, 5]


def test_written_lines_are_json_objects_with_iso_dates(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    data = pa.RecordBatch.from_pydict(
        {
            "s": ['a "q"\\\n\t\x01é', None],
            "i": [1, None],
            "d": pa.array([Decimal("1.50"), None], pa.decimal128(5, 2)),
            "f": [float("nan"), 2.5],
            "b": [True, None],
            "day": [dt.date(2024, 2, 29), None],
            "at": pa.array(
                [dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC), None], pa.timestamp("us", tz="UTC")
            ),
            ROW_COLUMN: [1, 2],
        }
    )
    result = write_records(conn, "t.jsonl", data, WriteMode.INSERT)
    assert result.outcome.to_pylist() == ["created", "created"]
    assert result.target_id.to_pylist() == [None, None]
    conn.close()
    lines = (tmp_path / "t.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == (
        '{"s":"a \\"q\\"\\\\\\n\\t\\u0001é","i":1,"d":1.50,"f":null,"b":true,'
        '"day":"2024-02-29","at":"2024-03-01T14:30:00Z"}'
    )
    assert json.loads(lines[0])["s"] == 'a "q"\\\n\t\x01é'
    assert json.loads(lines[1]) == {
        "s": None,
        "i": None,
        "d": None,
        "f": 2.5,
        "b": None,
        "day": None,
        "at": None,
    }


def test_append_adds_lines(tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"a": 1}')  # no final line break
    conn = connector(tmp_path, append=True)
    write_records(conn, "t.jsonl", pa.RecordBatch.from_pydict({"a": [2]}), WriteMode.INSERT)
    conn.close()
    assert read(tmp_path) == [{"a": 1}, {"a": 2}]
