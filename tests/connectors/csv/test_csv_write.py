"""Writing CSV files: formatting, atomic completion, append, encodings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest
from crmbridge.connectors.csv import CsvConnector, CsvSettings
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError, UnsupportedOperationError
from crmbridge.testing.writes import write_records


def connector(folder: Path, **settings: Any) -> CsvConnector:
    return CsvConnector("out", CsvSettings(path=str(folder), **settings))


def batch(**columns: Any) -> pa.RecordBatch:
    n = len(next(iter(columns.values())))
    arrays = {k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()}
    arrays[ROW_COLUMN] = pa.array(range(1, n + 1), pa.int64())
    return pa.RecordBatch.from_pydict(arrays)


def insert(conn: CsvConnector, data: pa.RecordBatch, name: str = "t.csv") -> list[Any]:
    result = write_records(conn, name, data, WriteMode.INSERT)
    return list(zip(result.outcome.to_pylist(), result.reason.to_pylist(), strict=True))


def test_values_are_formatted_and_read_back(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    data = batch(
        text=["a,b", "", None, 'say "x"\nnext'],
        n=[1, None, -3, 4],
        amount=pa.array(
            [Decimal("1.50"), None, Decimal("-2.00"), Decimal("0.10")], pa.decimal128(9, 2)
        ),
        ok=[True, False, None, True],
        day=[dt.date(2024, 2, 29), None, dt.date(1900, 1, 1), dt.date(2024, 1, 1)],
        at=pa.array(
            [
                dt.datetime(2024, 3, 1, 14, 30, tzinfo=dt.UTC),
                None,
                dt.datetime(2024, 3, 1, 14, 30, 5, 250000, tzinfo=dt.UTC),
                dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
            ],
            pa.timestamp("us", tz="UTC"),
        ),
        score=[0.5, None, 1e20, 2.0],
    )
    assert insert(conn, data) == [("created", None)] * 4
    conn.close()
    text = (tmp_path / "t.csv").read_text(encoding="utf-8")
    assert text.splitlines()[:2] == [
        "text,n,amount,ok,day,at,score",
        '"a,b",1,1.50,true,2024-02-29,2024-03-01T14:30:00Z,0.5',
    ]
    assert '"",,,false,,,' in text
    assert ",-3,-2.00,,1900-01-01,2024-03-01T14:30:05.250000Z,1e+20" in text
    rows = [r for b in conn.read(ReadRequest("t.csv")) for r in b.to_pylist()]
    assert [r["text"] for r in rows] == ["a,b", "", None, 'say "x"\nnext']
    assert ROW_COLUMN not in rows[0]


def test_file_appears_complete_only_at_close(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("old\nrow\n")
    conn = connector(tmp_path)
    insert(conn, batch(a=["1"]))
    insert(conn, batch(a=["2"]))
    assert (tmp_path / "t.csv").read_text() == "old\nrow\n"
    conn.close()
    assert (tmp_path / "t.csv").read_text() == "a\n1\n2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_a_new_run_truncates_again(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    insert(conn, batch(a=["1"]))
    conn.close()
    conn.open()
    insert(conn, batch(a=["2"]))
    conn.close()
    assert (tmp_path / "t.csv").read_text() == "a\n2\n"


def test_append_keeps_the_file_and_its_column_order(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b\n1,x")  # no final line break
    conn = connector(tmp_path, append=True)
    insert(conn, batch(b=["y"], a=["2"]))
    insert(conn, batch(a=["3"]))
    conn.close()
    assert (tmp_path / "t.csv").read_text() == "a,b\n1,x\n2,y\n3,\n"


def test_append_refuses_a_column_the_file_lacks(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a\n1\n")
    conn = connector(tmp_path, append=True)
    with pytest.raises(ConfigError, match="it has no column 'zz'") as info:
        insert(conn, batch(zz=["2"]))
    assert info.value.context.object == "t.csv"
    conn.close()


def test_append_to_a_missing_file_writes_the_header(tmp_path: Path) -> None:
    conn = connector(tmp_path, append=True)
    insert(conn, batch(a=["1"]))
    conn.close()
    assert (tmp_path / "t.csv").read_text() == "a\n1\n"


def test_other_dialect_and_encoding(tmp_path: Path) -> None:
    conn = connector(tmp_path, delimiter=";", quote_char="'", escape_char="\\", encoding="cp1252")
    result = insert(conn, batch(name=["Café", "it's; €", "日本"]))
    assert result[:2] == [("created", None), ("created", None)]
    assert result[2] == ("rejected", "field 'name': '日' cannot be written in cp1252")
    conn.close()
    assert (tmp_path / "t.csv").read_bytes() == "name\nCafé\n'it\\'s; €'\n".encode("cp1252")
    rows = [r for b in conn.read(ReadRequest("t.csv")) for r in b.to_pylist()]
    assert rows == [{"name": "Café"}, {"name": "it's; €"}]


def test_no_header(tmp_path: Path) -> None:
    conn = connector(tmp_path, header=False)
    insert(conn, batch(a=["1"], b=["2"]))
    conn.close()
    assert (tmp_path / "t.csv").read_text() == "1,2\n"


def test_only_insert_is_possible(tmp_path: Path) -> None:
    conn = connector(tmp_path)
    only = r"csv targets cannot upsert \(they can: insert\)"
    with pytest.raises(UnsupportedOperationError, match=only):
        write_records(conn, "t.csv", batch(a=["1"]), WriteMode.UPSERT, keys=["a"])


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("../up.csv", "plain file name"),
        ("sub/t.csv", "plain file name"),
        ("t.xlsx", "must end with"),
    ],
)
def test_target_names_are_plain_csv_file_names(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        insert(connector(tmp_path), batch(a=["1"]), name=name)


def test_a_single_file_connection_writes_only_its_file(tmp_path: Path) -> None:
    conn = connector(tmp_path / "new" / "export.csv")
    assert conn.objects() == []
    with pytest.raises(ConfigError, match=r"writes only 'export\.csv'"):
        insert(conn, batch(a=["1"]), name="other.csv")
    insert(conn, batch(a=["1"]), name="export.csv")
    conn.close()
    assert (tmp_path / "new" / "export.csv").read_text() == "a\n1\n"


def test_text_is_written_as_it_is_unless_formulas_are_escaped(tmp_path: Path) -> None:
    risky = ["=SUM(1,2)", "+1", "-2+3", "@cmd", "\tx", "plain", None, "a=b"]
    data = batch(text=risky, n=[-5, 1, 2, 3, 4, 5, 6, 7])
    conn = connector(tmp_path)
    assert {o for o, _ in insert(conn, data, "raw.csv")} == {"created"}
    conn.close()
    conn = connector(tmp_path, escape_formulas=True)
    insert(conn, data, "safe.csv")
    conn.close()
    read = connector(tmp_path)
    raw = [r["text"] for b in read.read(ReadRequest("raw.csv")) for r in b.to_pylist()]
    assert raw == risky
    rows = [r for b in read.read(ReadRequest("safe.csv")) for r in b.to_pylist()]
    assert [r["text"] for r in rows] == [
        "'=SUM(1,2)",
        "'+1",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "plain",
        None,
        "a=b",
    ]
    assert rows[0]["n"] == "-5"  # numbers are numbers, not formulas
