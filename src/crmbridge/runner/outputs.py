"""The success file and the error file every run writes (CSV, batch by batch).

Both hold the source record as read (its fields, as text), then the outcome, the target's id,
the reason and its machine-readable code. The error file also has ``crmbridge_raw``: the raw
text of source records that could not even be parsed (a malformed CSV line), so nothing is
lost.

The files are exactly as complete as the run ledger: a batch's records are written before the
ledger confirms the batch, with the files' sizes; a crashed run's files are cut back to the
sizes of its last confirmed batch (:func:`truncate`), so they never hold half a batch or half a
row.

The records are turned into text and written by pyarrow's CSV writer in a thread of its own,
fed by a bounded queue (at most ``QUEUED`` batches waiting), so the run's thread goes on with
the next batch; :attr:`RunFiles.sizes` waits until every batch given so far is written, so the
sizes the ledger confirms always cover whole batches.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crmbridge.connectors.base import ROW_COLUMN, BadRecord
from crmbridge.core.outcomes import Outcome, RejectCode

ROW = "crmbridge_row"
OUTCOME = "crmbridge_outcome"
TARGET_ID = "crmbridge_id"
REASON = "crmbridge_reason"
CODE = "crmbridge_code"
RAW = "crmbridge_raw"
#: children outcome files are ``children-<field>.csv``
CHILDREN_PREFIX = "children-"

#: batches waiting for the writer thread at most (then the run's thread waits)
QUEUED = 2

#: the columns of an outcome table: one row per source record that reached an outcome
OUTCOME_SCHEMA = pa.schema(
    [
        pa.field(ROW_COLUMN, pa.int64()),
        pa.field(OUTCOME, pa.string()),
        pa.field(TARGET_ID, pa.string()),
        pa.field(REASON, pa.string()),
        pa.field(CODE, pa.string()),
    ]
)


def outcome_table(
    rows: pa.Array | pa.ChunkedArray,
    outcome: pa.Array | pa.ChunkedArray,
    target_id: pa.Array | pa.ChunkedArray,
    reason: pa.Array | pa.ChunkedArray,
    code: pa.Array | pa.ChunkedArray,
) -> pa.Table:
    return pa.Table.from_arrays([rows, outcome, target_id, reason, code], schema=OUTCOME_SCHEMA)


class RunFiles:
    """Writes ``success.csv`` and ``error.csv`` into a folder, one batch at a time."""

    def __init__(self, folder: Path, source_fields: Sequence[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.success_path = folder / "success.csv"
        self.error_path = folder / "error.csv"
        names = [ROW, *source_fields, OUTCOME, TARGET_ID, REASON, CODE]
        self._fields = list(source_fields)
        self._success_schema = pa.schema([pa.field(n, pa.string()) for n in names])
        self._error_schema = pa.schema([*self._success_schema, pa.field(RAW, pa.string())])
        self._success_sink = pa.OSFile(str(self.success_path), "wb")
        self._error_sink = pa.OSFile(str(self.error_path), "wb")
        self._success = pacsv.CSVWriter(self._success_sink, self._success_schema)
        self._error = pacsv.CSVWriter(self._error_sink, self._error_schema)
        self.folder = folder
        #: children section -> its outcome file (opened at its first child)
        self._children: dict[str, tuple[pa.NativeFile, pacsv.CSVWriter]] = {}
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=QUEUED)
        #: the first error of the writer thread, raised in the run's thread
        self._failure: BaseException | None = None
        self._writer = threading.Thread(target=self._work, name="crmbridge-run-files", daemon=True)
        self._writer.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._failure is None:
                    job()
            except BaseException as err:  # kept for the run's thread: flush() raises it
                self._failure = err
            finally:
                self._jobs.task_done()

    def _submit(self, job: Callable[[], None]) -> None:
        self._raise()
        self._jobs.put(job)

    def _raise(self) -> None:
        if self._failure is not None:
            raise self._failure

    def flush(self) -> None:
        """Wait until every record given so far is in the files."""
        if self._writer.is_alive():
            self._jobs.join()
        self._raise()

    @property
    def sizes(self) -> tuple[int, int]:
        """Bytes in the success and the error file once every batch given so far is written."""
        self.flush()
        return self._success_sink.tell(), self._error_sink.tell()

    def add(self, source: pa.RecordBatch, outcomes: pa.Table) -> None:
        """Record ``outcomes`` (OUTCOME_SCHEMA) of records from the source batch ``source``
        (written by the writer thread)."""
        if outcomes.num_rows == 0:
            return
        self._submit(lambda: self._add_source(source, outcomes))

    def _add_source(self, source: pa.RecordBatch, outcomes: pa.Table) -> None:
        first = source.column(ROW_COLUMN)[0].as_py()
        index = pc.subtract(outcomes.column(ROW_COLUMN), first)
        records = pa.Table.from_batches([source])
        if not _in_place(index, source.num_rows):  # else: one outcome per record, in order
            records = records.take(index)
        self._add(records, outcomes)

    def add_orphans(self, outcomes: pa.Table) -> None:
        """Outcomes of operations whose source records are not at hand (a resumed run's
        in-flight batch whose records could not be read again): the source fields empty."""
        if outcomes.num_rows == 0:
            return
        nulls = {f: pa.nulls(outcomes.num_rows, pa.string()) for f in self._fields}
        records = pa.table(nulls) if nulls else pa.table({})
        self._submit(lambda: self._add(records, outcomes))

    def _add(self, records: pa.Table, outcomes: pa.Table) -> None:
        n = outcomes.num_rows
        columns = [pc.cast(outcomes.column(ROW_COLUMN), pa.string())]
        columns += [
            _as_text(records.column(f)) if f in records.column_names else pa.nulls(n, pa.string())
            for f in self._fields
        ]
        columns += [
            outcomes.column(OUTCOME),
            outcomes.column(TARGET_ID),
            outcomes.column(REASON),
            outcomes.column(CODE),
        ]
        table = pa.Table.from_arrays(columns, schema=self._success_schema)
        rejected = pc.equal(outcomes.column(OUTCOME), Outcome.REJECTED.value)
        good = table.filter(pc.invert(rejected))
        bad = table.filter(rejected)
        if good.num_rows:
            self._success.write_table(good)
        if bad.num_rows:
            raw = pa.nulls(bad.num_rows, pa.string())
            self._error.write_table(bad.append_column(self._error_schema.field(RAW), raw))

    @property
    def children_sizes(self) -> dict[str, int]:
        """Children file name -> bytes written so far."""
        return {f"{CHILDREN_PREFIX}{f}.csv": sink.tell() for f, (sink, _) in self._children.items()}

    def add_children(self, field: str, outcomes: pa.Table) -> None:
        """Outcomes of child records (runner/children.py), in ``children-<field>.csv``: the
        parent's ``crmbridge_row``, the child's ``crmbridge_position``, then its outcome."""
        if outcomes.num_rows == 0:
            return
        writer = self._children.get(field)
        if writer is None:
            path = self.folder / f"{CHILDREN_PREFIX}{field}.csv"
            schema = pa.schema([pa.field(n, pa.string()) for n in outcomes.column_names])
            sink = pa.OSFile(str(path), "wb")
            writer = self._children[field] = (sink, pacsv.CSVWriter(sink, schema))
        text = [pc.cast(column, pa.string()) for column in outcomes.columns]
        writer[1].write_table(pa.Table.from_arrays(text, names=outcomes.column_names))

    def add_bad_record(self, bad: BadRecord) -> None:
        """A source record that could not be parsed: no row number, its raw text kept."""
        values: list[str | None] = [None] * (1 + len(self._fields))
        values += [
            Outcome.REJECTED.value,
            None,
            bad_record_reason(bad),
            RejectCode.UNREADABLE.value,
            bad.raw,
        ]
        table = pa.Table.from_pylist(
            [dict(zip(self._error_schema.names, values, strict=True))], schema=self._error_schema
        )
        self._submit(lambda: self._error.write_table(table))

    def close(self) -> None:
        """Write what is queued, end the writer thread and close the files; raises the
        writer's error, if it had one."""
        if self._writer.is_alive():
            self._jobs.put(None)
            self._writer.join()
        for sink, writer in self._children.values():
            writer.close()
            sink.close()
        self._success.close()
        self._error.close()
        self._success_sink.close()
        self._error_sink.close()
        self._raise()


def truncate(path: Path, size: int | None) -> None:
    """Cut ``path`` back to ``size`` bytes (a crashed run's file, to its last confirmed
    batch); a missing file or size is left alone."""
    if size is None or not path.exists():
        return
    if path.stat().st_size > size:
        os.truncate(path, size)


def bad_record_reason(bad: BadRecord) -> str:
    """``line 7: expected 6 fields, found 5``: where the unreadable record is, and why."""
    return f"line {bad.position}: {bad.reason}" if bad.position is not None else bad.reason


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_timestamp(column.type):
        if column.type.tz == "UTC":  # as strftime("%Y-%m-%dT%H:%M:%S%z") writes it, faster
            wall = pc.cast(pc.cast(column, pa.timestamp(column.type.unit)), pa.string())
            text = pc.replace_substring(wall, " ", "T", max_replacements=1)
            return pc.binary_join_element_wise(text, "+0000", "")
        return pc.strftime(column, format="%Y-%m-%dT%H:%M:%S%z")
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())


def _in_place(index: pa.Array | pa.ChunkedArray, rows: int) -> bool:
    """Is ``index`` 0, 1 ... rows - 1 (every record of the batch, in order)?"""
    if len(index) != rows:
        return False
    return bool(pc.all(pc.equal(index, pa.array(range(rows), pa.int64()))).as_py())
