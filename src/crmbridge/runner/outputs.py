"""The success file and the error file every run writes (CSV, streamed batch by batch).

Both hold the source record as read (its fields, as text), then the outcome, the target's id
and the reason. The error file also has ``crmbridge_raw``: the raw text of source records that
could not even be parsed (a malformed CSV line), so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crmbridge.connectors.base import ROW_COLUMN, BadRecord
from crmbridge.core.outcomes import Outcome

ROW = "crmbridge_row"
OUTCOME = "crmbridge_outcome"
TARGET_ID = "crmbridge_id"
REASON = "crmbridge_reason"
RAW = "crmbridge_raw"

#: the columns of an outcome table: one row per source record that reached an outcome
OUTCOME_SCHEMA = pa.schema(
    [
        pa.field(ROW_COLUMN, pa.int64()),
        pa.field(OUTCOME, pa.string()),
        pa.field(TARGET_ID, pa.string()),
        pa.field(REASON, pa.string()),
    ]
)


class RunFiles:
    """Writes ``success.csv`` and ``error.csv`` into a folder, one batch at a time."""

    def __init__(self, folder: Path, source_fields: Sequence[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.success_path = folder / "success.csv"
        self.error_path = folder / "error.csv"
        names = [ROW, *source_fields, OUTCOME, TARGET_ID, REASON]
        self._fields = list(source_fields)
        self._success_schema = pa.schema([pa.field(n, pa.string()) for n in names])
        self._error_schema = pa.schema([*self._success_schema, pa.field(RAW, pa.string())])
        self._success = pacsv.CSVWriter(self.success_path, self._success_schema)
        self._error = pacsv.CSVWriter(self.error_path, self._error_schema)

    def add(self, source: pa.RecordBatch, outcomes: pa.Table) -> None:
        """Record ``outcomes`` (OUTCOME_SCHEMA) of records from the source batch ``source``."""
        if outcomes.num_rows == 0:
            return
        first = source.column(ROW_COLUMN)[0].as_py()
        index = pc.subtract(outcomes.column(ROW_COLUMN), first)
        records = pa.Table.from_batches([source]).take(index)
        columns = [pc.cast(outcomes.column(ROW_COLUMN), pa.string())]
        columns += [_as_text(records.column(f)) for f in self._fields]
        columns += [outcomes.column(OUTCOME), outcomes.column(TARGET_ID), outcomes.column(REASON)]
        table = pa.Table.from_arrays(columns, schema=self._success_schema)
        rejected = pc.equal(outcomes.column(OUTCOME), Outcome.REJECTED.value)
        good = table.filter(pc.invert(rejected))
        bad = table.filter(rejected)
        if good.num_rows:
            self._success.write_table(good)
        if bad.num_rows:
            raw = pa.nulls(bad.num_rows, pa.string())
            self._error.write_table(bad.append_column(self._error_schema.field(RAW), raw))

    def add_bad_record(self, bad: BadRecord) -> None:
        """A source record that could not be parsed: no row number, its raw text kept."""
        values: list[str | None] = [None] * (1 + len(self._fields))
        values += [Outcome.REJECTED.value, None, bad_record_reason(bad), bad.raw]
        self._error.write_table(
            pa.Table.from_pylist(
                [dict(zip(self._error_schema.names, values, strict=True))],
                schema=self._error_schema,
            )
        )

    def close(self) -> None:
        self._success.close()
        self._error.close()


def bad_record_reason(bad: BadRecord) -> str:
    """``line 7: expected 6 fields, found 5``: where the unreadable record is, and why."""
    return f"line {bad.position}: {bad.reason}" if bad.position is not None else bad.reason


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_timestamp(column.type):
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S%z")
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())
