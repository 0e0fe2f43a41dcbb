"""Preview when nothing is read: a pushed-down filter matching no row, an empty table, a
header-only CSV. Each shows no records (with every column), never a crash."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
from tests.runner.conftest import write_csv, write_profile

from crmbridge.cli.app import main
from crmbridge.connections import ConnectionStore
from crmbridge.runner import preview_profile

SQL_PROFILE = """
source:
  connection: {{type: sql, url: "sqlite:///{db}"}}
  object: people
  {filter}
target:
  connection: {{type: jsonl, path: out}}
  object: people.jsonl
mapping:
  id: id
  name: upper(name)
"""

CSV_PROFILE = """
source:
  connection: {type: csv, path: .}
  object: people.csv
  types: {id: integer}
target:
  connection: {type: jsonl, path: out}
  object: people.jsonl
mapping:
  id: id
  name: upper(name)
"""


def _database(folder: Path, *rows: tuple[int, str]) -> Path:
    path = folder / "people.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        db.executemany("INSERT INTO people VALUES (?, ?)", rows)
    db.close()
    (folder / "out").mkdir(exist_ok=True)
    return path


def _columns_and_rows(records: pa.Table) -> tuple[list[str], int]:
    return records.column_names, records.num_rows


COLUMNS = ["record", "id", "name", "action", "target_id", "reason"]


def test_a_pushed_down_filter_that_matches_no_row(tmp_path: Path, store: ConnectionStore) -> None:
    db = _database(tmp_path, (1, "Ann"), (2, "Bob"))
    loaded = write_profile(tmp_path, SQL_PROFILE.format(db=db, filter="filter: id > 100"))
    preview = preview_profile(loaded, connections=store)
    assert preview.pushed_filter == ["id > 100"]
    assert _columns_and_rows(preview.records) == (COLUMNS, 0)
    assert preview.read == 0


def test_an_empty_table(tmp_path: Path, store: ConnectionStore) -> None:
    db = _database(tmp_path)
    loaded = write_profile(tmp_path, SQL_PROFILE.format(db=db, filter=""))
    preview = preview_profile(loaded, connections=store)
    assert _columns_and_rows(preview.records) == (COLUMNS, 0)


def test_a_header_only_csv(tmp_path: Path, store: ConnectionStore) -> None:
    (tmp_path / "out").mkdir()
    write_csv(tmp_path / "people.csv", "id,name\n")
    loaded = write_profile(tmp_path, CSV_PROFILE)
    preview = preview_profile(loaded, connections=store)
    assert _columns_and_rows(preview.records) == (COLUMNS, 0)


def test_records_read_but_all_filtered_locally_still_show_every_column(
    tmp_path: Path, store: ConnectionStore
) -> None:
    db = _database(tmp_path, (1, "Ann"))
    loaded = write_profile(tmp_path, SQL_PROFILE.format(db=db, filter="filter: upper(name) = 'X'"))
    preview = preview_profile(loaded, connections=store)
    assert (preview.read, preview.local_filter) == (1, "UPPER(name) = 'X'")
    assert _columns_and_rows(preview.records) == (COLUMNS, 0)


@pytest.mark.parametrize(
    ("filter", "message"),
    [("filter: id > 100", "No record passes the filter."), ("", "The source has no records.")],
)
def test_the_command_says_why_nothing_is_shown(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    filter: str,
    message: str,
) -> None:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CRMBRIDGE_PASSPHRASE", "test passphrase")
    db = _database(tmp_path, *([(1, "Ann")] if filter else []))
    write_profile(tmp_path, SQL_PROFILE.format(db=db, filter=filter))
    with pytest.raises(SystemExit) as info:
        main(["preview", str(tmp_path / "profile.yaml")])
    assert info.value.code in (0, None)
    assert message in capsys.readouterr().out
