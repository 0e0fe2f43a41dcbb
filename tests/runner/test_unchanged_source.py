"""A file source unchanged since the last run of the profile, which succeeded, is not read
again: an upsert or update of it would find every record as that run left it. Any change of
the file, of the profile or a run that did not fully succeed makes the next run read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.runner.conftest import write_csv, write_profile

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.csv.connector import CsvConnector
from crmbridge.connectors.sql.connector import SqlConnector
from crmbridge.runner import RunSummary, run_profile
from crmbridge.state import RunStatus, StateStore

PEOPLE = """
id,name,score
1,Ann,5
2,Bob,x
3,Cy,7
"""

PROFILE = """
source:
  connection: {{type: csv, path: .}}
  object: people.csv
  filter: name <> 'Nobody'
target:
  connection: {{type: sql, url: "sqlite:///{folder}/target.sqlite"}}
  object: people
  mode: {mode}
  match_keys: [id]
  create: true
mapping: {{id: id, name: {name}, score: score}}
"""


def run(
    folder: Path,
    store: ConnectionStore,
    state: StateStore,
    *,
    mode: str = "upsert",
    name: str = "name",
    **options: Any,
) -> RunSummary:
    loaded = write_profile(folder, PROFILE.format(folder=folder, mode=mode, name=name))
    return run_profile(loaded, connections=store, state=state, output_dir=folder / "out", **options)


def nonzero(counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in counts.items() if v}


def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, store: ConnectionStore, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    first = run(tmp_path, store, state)
    assert nonzero(first.counts) == {"created": 3}
    monkeypatch.setattr(CsvConnector, "read", _refuse)
    dry = run(tmp_path, store, state, dry_run=True)
    again = run(tmp_path, store, state)
    assert again.status is RunStatus.SUCCEEDED
    assert nonzero(dry.counts) == nonzero(again.counts) == {"unchanged": 3}
    assert again.note is not None
    assert f"unchanged since run {first.run_id}" in again.note


def test_a_changed_file_is_read(tmp_path: Path, store: ConnectionStore, state: StateStore) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    run(tmp_path, store, state)
    write_csv(tmp_path / "people.csv", PEOPLE.replace("Cy,7", "Cy,8"))
    again = run(tmp_path, store, state)
    assert nonzero(again.counts) == {"updated": 1, "unchanged": 2}
    assert again.note is None


def test_a_changed_profile_reads_the_file(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    run(tmp_path, store, state)
    again = run(tmp_path, store, state, name="upper(name)")
    assert nonzero(again.counts) == {"updated": 3}


def test_after_a_run_with_rejected_records_the_file_is_read_again(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    first = run(tmp_path, store, state, mode="update")  # nothing there yet: all rejected
    assert nonzero(first.counts) == {"rejected": 3}
    again = run(tmp_path, store, state, mode="update")
    assert nonzero(again.counts) == {"rejected": 3}  # read and tried again
    assert again.note is None


def test_restart_reads_an_unchanged_file(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    run(tmp_path, store, state)
    again = run(tmp_path, store, state, restart=True)
    assert nonzero(again.counts) == {"unchanged": 3}
    assert again.note is None


def test_an_insert_always_reads(tmp_path: Path, store: ConnectionStore, state: StateStore) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    run(tmp_path, store, state, mode="insert")
    again = run(tmp_path, store, state, mode="insert")
    assert again.note is None


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the unchanged file was read")


def test_a_sheet_of_an_unchanged_workbook_is_not_read_again(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "People"
    for row in (("id", "name", "score"), (1, "Ann", 5), (2, "Bob", 6)):
        sheet.append(row)
    book.save(tmp_path / "people.xlsx")
    text = PROFILE.format(folder=tmp_path, mode="upsert", name="name")
    text = text.replace("type: csv", "type: xlsx").replace("people.csv", "people.xlsx#People")
    loaded = write_profile(tmp_path, text)
    first = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "o")
    assert nonzero(first.counts) == {"created": 2}
    again = run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "o")
    assert nonzero(again.counts) == {"unchanged": 2}
    assert again.note is not None


def test_an_unchanged_file_is_not_read_and_the_target_not_opened(
    tmp_path: Path, store: ConnectionStore, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check comes before anything is prepared: only the source file is hashed."""
    write_csv(tmp_path / "people.csv", PEOPLE)
    run(tmp_path, store, state)
    monkeypatch.setattr(SqlConnector, "open", _refuse)
    again = run(tmp_path, store, state)
    assert again.status is RunStatus.SUCCEEDED
    assert nonzero(again.counts) == {"unchanged": 3}


def test_a_run_killed_after_the_success_makes_the_next_run_read(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    first = run(tmp_path, store, state)
    assert first.run_id is not None
    killed = state.start_run(  # as a `kill -9` leaves it: still `running`
        profile=first.profile,
        profile_path=str(tmp_path / "profile.yaml"),
        source="csv:people.csv",
        target="sql:people",
        mode="upsert",
        dry_run=False,
        profile_key=state.get_run(first.run_id).profile_key,
    )
    again = run(tmp_path, store, state)
    assert again.note is None  # read
    assert nonzero(again.counts) == {"unchanged": 3}
    assert state.get_run(killed).status is RunStatus.INTERRUPTED


def test_a_saved_connection_pointed_elsewhere_reads_the_file(
    tmp_path: Path, store: ConnectionStore, state: StateStore
) -> None:
    write_csv(tmp_path / "people.csv", PEOPLE)
    store.add("warehouse", "sql", {"url": f"sqlite:///{tmp_path}/one.sqlite"})
    text = PROFILE.replace(
        '{{type: sql, url: "sqlite:///{folder}/target.sqlite"}}', "warehouse"
    ).format(mode="upsert", name="name")

    def run_saved() -> RunSummary:
        loaded = write_profile(tmp_path, text)
        return run_profile(loaded, connections=store, state=state, output_dir=tmp_path / "out")

    assert nonzero(run_saved().counts) == {"created": 3}
    assert run_saved().note is not None  # unchanged
    store.add("warehouse", "sql", {"url": f"sqlite:///{tmp_path}/two.sqlite"}, replace=True)
    moved = run_saved()
    assert moved.note is None
    assert nonzero(moved.counts) == {"created": 3}
