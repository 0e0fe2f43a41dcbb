"""The run's success and error files, written by their own thread."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from crmbridge.connectors.base import ROW_COLUMN, BadRecord
from crmbridge.runner.outputs import RunFiles, outcome_table


def _batch(first: int, n: int) -> pa.RecordBatch:
    rows = list(range(first, first + n))
    return pa.record_batch(
        {ROW_COLUMN: pa.array(rows, pa.int64()), "name": [f"n{r}" for r in rows]}
    )


def _outcomes(batch: pa.RecordBatch, outcome: str = "created") -> pa.Table:
    n = batch.num_rows
    return outcome_table(
        batch.column(ROW_COLUMN),
        pa.array([outcome] * n),
        pa.array([f"id{i}" for i in range(n)]),
        pa.nulls(n, pa.string()),
        pa.nulls(n, pa.string()),
    )


def test_sizes_cover_every_batch_given_so_far(tmp_path: Path) -> None:
    files = RunFiles(tmp_path, ["name"])
    for first in range(1, 2001, 100):
        batch = _batch(first, 100)
        files.add(batch, _outcomes(batch))
        success, error = files.sizes  # what the ledger confirms: whole batches, on disk
        assert files.success_path.stat().st_size == success
        assert error == files.error_path.stat().st_size
        with files.success_path.open(newline="") as f:
            assert len(list(csv.reader(f))) == 1 + first + 99
    files.add_bad_record(BadRecord(7, "a,b", "expected 2 fields, found 1"))
    assert files.sizes[1] == files.error_path.stat().st_size > 0
    files.close()


def test_records_are_written_in_the_order_given(tmp_path: Path) -> None:
    files = RunFiles(tmp_path, ["name"])
    for first in range(1, 1001, 10):
        batch = _batch(first, 10)
        files.add(batch, _outcomes(batch, "rejected" if first % 20 == 1 else "created"))
    files.close()
    with files.success_path.open(newline="") as f:
        rows = [int(r["crmbridge_row"]) for r in csv.DictReader(f)]
    with files.error_path.open(newline="") as f:
        rejected = [int(r["crmbridge_row"]) for r in csv.DictReader(f)]
    assert rows == sorted(rows)
    assert rejected == sorted(rejected)
    assert sorted(rows + rejected) == list(range(1, 1001))


def test_a_failure_of_the_writer_thread_is_raised_in_the_run(tmp_path: Path) -> None:
    files = RunFiles(tmp_path, ["name"])
    batch = _batch(1, 3)
    broken = _outcomes(batch).set_column(1, "crmbridge_outcome", pa.array([1, 2, 3]))
    files.add(batch, broken)
    with pytest.raises(pa.ArrowException):
        files.sizes  # noqa: B018
    with pytest.raises(pa.ArrowException):
        files.close()


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_utc_datetimes_are_written_as_strftime_writes_them(tmp_path: Path, unit: str) -> None:
    moments = [
        dt.datetime(2026, 4, 6, 2, 33, 27, tzinfo=dt.UTC),
        None,
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC),
        dt.datetime(2024, 2, 29, 12, 0, 0, 123000, tzinfo=dt.UTC),
    ]
    seen = pa.array(moments, pa.timestamp(unit, tz="UTC"))
    batch = pa.record_batch({ROW_COLUMN: pa.array(range(1, 6), pa.int64()), "seen": seen})
    files = RunFiles(tmp_path, ["seen"])
    files.add(batch, _outcomes(batch))
    files.close()
    with files.success_path.open(newline="") as f:
        written = [r["seen"] or None for r in csv.DictReader(f)]
    assert written == pc.strftime(seen, format="%Y-%m-%dT%H:%M:%S%z").to_pylist()
    assert written[0] == ("2026-04-06T02:33:27+0000" if unit == "s" else written[0])


def test_outcomes_of_some_records_hold_those_records(tmp_path: Path) -> None:
    batch = _batch(11, 5)
    some = _outcomes(batch).take(pa.array([3, 1]))
    files = RunFiles(tmp_path, ["name"])
    files.add(batch, some)
    files.close()
    with files.success_path.open(newline="") as f:
        rows = [(r["crmbridge_row"], r["name"]) for r in csv.DictReader(f)]
    assert rows == [("14", "n14"), ("12", "n12")]
