"""Partitions: key ranges, their conditions, and every record written once across them."""

from __future__ import annotations

import csv
import datetime as dt
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest

from crmbridge.cli.app import main
from crmbridge.errors import ConfigError
from crmbridge.profiles.loader import load_profile
from crmbridge.workers.partitions import Partition, key_ranges, literal, partition_profile
from crmbridge.workers.submit import submit_run
from crmbridge.workers.tasks import Spec, execute


def test_key_ranges_share_the_keys_out_evenly() -> None:
    assert key_ranges(pa.array(range(1, 101)), 4) == [
        (None, 26),
        (26, 51),
        (51, 76),
        (76, None),
    ]
    assert key_ranges(pa.array(["b", "a", "d", "c"]), 2) == [(None, "c"), ("c", None)]


def test_fewer_distinct_keys_than_partitions_make_fewer_ranges() -> None:
    assert key_ranges(pa.array([5, 5, 5, None]), 4) == [(None, None)]
    assert key_ranges(pa.array([1, 2]), 8) == [(None, 2), (2, None)]
    assert key_ranges(pa.array([], pa.int64()), 3) == [(None, None)]


def test_the_conditions_cover_every_key_once_and_nulls_in_the_first() -> None:
    first, middle, last = (
        Partition(1, 3, "id", None, 10),
        Partition(2, 3, "id", 10, 20),
        Partition(3, 3, "id", 20, None),
    )
    assert first.condition() == '("id" < 10 OR "id" IS NULL)'
    assert middle.condition() == '"id" >= 10 AND "id" < 20'
    assert last.condition() == '"id" >= 20'
    assert Partition(1, 1, "id", None, None).condition() == "TRUE"


def test_literals_are_sql_values_never_code() -> None:
    assert literal("O'Brien") == "'O''Brien'"
    assert literal(dt.date(2026, 1, 2)) == "DATE '2026-01-02'"
    assert literal(dt.datetime(2026, 1, 2, 3, 4)) == "TIMESTAMP '2026-01-02 03:04:00'"
    assert literal(2.5) == "2.5"
    part = Partition(2, 4, "at", dt.date(2026, 1, 1), dt.date(2026, 2, 1))
    assert Partition.from_json(part.as_json()) == part


def _files(tmp_path: Path, rows: int = 1000) -> Path:
    with (tmp_path / "people.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "name"])
        for i in range(1, rows + 1):
            writer.writerow([i, f"person {i}"])
    path = tmp_path / "people.yaml"
    path.write_text(
        """
source:
  connection: {type: csv, path: .}
  object: people.csv
  types: {id: integer}
  key: [id]
  filter: id % 10 <> 0
target:
  connection: {type: sql, url: "sqlite:///out.sqlite"}
  object: people
  mode: upsert
  match_keys: [id]
  create: true
batch_size: 100
"""
    )
    return path


def test_a_partition_is_the_profile_with_its_range_and_an_identity_of_its_own(
    tmp_path: Path,
) -> None:
    loaded = load_profile(_files(tmp_path))
    part = partition_profile(loaded, Partition(2, 4, "id", 250, 500))
    assert part.profile.source.filter == '(id % 10 <> 0) AND "id" >= 250 AND "id" < 500'
    assert part.name == "people [2/4]"
    assert part.key == f"id:{loaded.key}#2of4"
    assert part.key != partition_profile(loaded, Partition(3, 4, "id", 500, 750)).key
    assert loaded.profile.source.filter == "id % 10 <> 0"  # the profile itself is unchanged


def test_partitions_run_one_by_one_write_every_record_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    path = _files(tmp_path)
    state_url = f"sqlite:///{tmp_path}/state.sqlite"
    values = pa.array(range(1, 1001))
    ranges = key_ranges(values, 3)
    specs = [
        Spec("job1", i, str(path), "transfer", state_url, {}, Partition(i, 3, "id", lo, hi))
        for i, (lo, hi) in enumerate(ranges, start=1)
    ]
    outcomes = [execute(spec) for spec in specs]
    assert [o["status"] for o in outcomes] == ["succeeded"] * 3
    assert sum(o["counts"]["created"] for o in outcomes) == 900
    again = execute(specs[0])  # a task delivered again after it ended is not run again
    assert again == outcomes[0]
    with sqlite3.connect(tmp_path / "out.sqlite") as db:
        count, distinct = db.execute("SELECT count(*), count(DISTINCT id) FROM people").fetchone()
    assert (count, distinct) == (900, 900)


def test_runs_on_workers_need_a_shared_state_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set CRMBRIDGE_STATE_URL .* to a PostgreSQL URL"):
        submit_run(_files(tmp_path), state_url=f"sqlite:///{tmp_path}/s.sqlite")


def test_a_broker_that_cannot_be_reached_is_one_line_and_exit_3(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRMBRIDGE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    path = _files(tmp_path)
    args = ["run", str(path), "--queue", "--partitions", "2", "--state-url", pg_url]
    with pytest.raises(SystemExit) as info:
        main([*args, "--broker", "amqp://guest:guest@127.0.0.1:1//"])
    assert info.value.code == 3
    err = capsys.readouterr().err
    assert "cannot reach the broker at 127.0.0.1:1//" in err
    assert "Traceback" not in err


def test_partitions_without_queue_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", str(_files(tmp_path)), "--partitions", "4"])
    assert info.value.code == 2
    assert "--partitions and --partition-by need --queue" in capsys.readouterr().err
