"""The run loop: read a batch, convert, filter and map it, check it, write it, record outcomes.

Each source batch goes through the same steps (all vectorized over Arrow):

    read -> number rows -> convert source types -> filter + map (DuckDB) -> convert to target
         -> validate -> split repeated keys into waves -> write (or plan, in a dry run)
         -> outcomes to the success / error files and the counts

A record rejected at any step is in the error file with its reason; nothing is dropped
silently. Whole-call failures of a write that are transient are retried with backoff.
"""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest, WriteRequest
from crmbridge.core.batches import read_ahead, rebatch
from crmbridge.core.coerce import Coercer, Rejection
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.keys import chunks, waves
from crmbridge.core.outcomes import Outcome, WriteResult
from crmbridge.core.validate import validate
from crmbridge.errors import CrmBridgeError, FatalError, RetryableError
from crmbridge.profiles.model import OnReject
from crmbridge.runner.incremental import Cursor
from crmbridge.runner.outputs import OUTCOME, OUTCOME_SCHEMA, REASON, RunFiles
from crmbridge.runner.planner import Planner
from crmbridge.runner.prepare import Prepared
from crmbridge.runner.relations import Relations
from crmbridge.state import StateStore

#: counted besides the write outcomes: records the filter left out
FILTERED = "filtered"

WRITE_ATTEMPTS = 4
#: batches read in advance while the current one is processed
READ_AHEAD = 2


@dataclass
class Progress:
    read: int = 0  # source records read so far
    done: int = 0  # records that reached an outcome (or were filtered out)
    total: int | None = None  # source records expected, when the source can tell


@dataclass
class StepResult:
    """What happened to one source batch."""

    outcomes: pa.Table  # OUTCOME_SCHEMA
    filtered: int
    mapped: pa.RecordBatch | None = None  # the records as they were (or would be) written


@dataclass
class Totals:
    counts: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None  # why the run stopped early (error policy)

    @property
    def rejected(self) -> int:
        return self.counts[Outcome.REJECTED.value]


def _rejections_table(rejections: list[Rejection]) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([r.row for r in rejections], pa.int64()),
            pa.array([Outcome.REJECTED.value] * len(rejections), pa.string()),
            pa.nulls(len(rejections), pa.string()),
            pa.array(
                [f"field {r.field!r}: {r.reason}" if r.field else r.reason for r in rejections],
                pa.string(),
            ),
        ],
        schema=OUTCOME_SCHEMA,
    )


def _result_table(rows: pa.Array, result: WriteResult) -> pa.Table:
    return pa.Table.from_arrays(
        [rows, result.outcome, result.target_id, result.reason], schema=OUTCOME_SCHEMA
    )


class Pipeline:
    """The per-batch steps of one prepared run. Use as a context manager."""

    def __init__(
        self,
        prepared: Prepared,
        *,
        dry_run: bool,
        state: StateStore | None = None,
        run_id: int | None = None,
        cursor: Cursor | None = None,
    ) -> None:
        self.prepared = prepared
        self.dry_run = dry_run
        self.cursor = cursor
        self._source_coercer = Coercer(prepared.source_types)
        self._transform = BatchTransform(
            prepared.transform_schema,
            {**prepared.outputs, **prepared.extras},
            prepared.local_filter,
        )
        self.columns = prepared.written_fields
        target_types = {
            f.name: f.arrow_type for f in prepared.target_schema.fields if f.name in self.columns
        }
        self._target_coercer = Coercer(target_types)
        self.relations = Relations(
            prepared.profile,
            prepared.loaded.name,
            prepared.target,
            prepared.related,
            state=state,
            run_id=run_id,
            dry_run=dry_run,
        )
        self._planner = Planner(prepared.target, target_exists=prepared.target_exists)
        self._next_row = 1

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._source_coercer.close()
        self._transform.close()
        self._target_coercer.close()

    def number(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with ROW_COLUMN: each record's 1-based position in the source."""
        rows = pa.array(range(self._next_row, self._next_row + batch.num_rows), pa.int64())
        self._next_row += batch.num_rows
        return batch.append_column(pa.field(ROW_COLUMN, pa.int64()), rows)

    def map(self, source: pa.RecordBatch) -> tuple[pa.RecordBatch, list[Rejection], int]:
        """Convert, filter, map and validate: (records to write, rejections, filtered count)."""
        typed, rejected = self._source_coercer.apply(source)
        seen = 0
        if self.cursor is not None:
            typed, seen = self.cursor.drop_seen(typed)
            self.cursor.advance(typed)
        result = self._transform.apply(typed)
        rejected += [Rejection(e.row, e.field, e.message) for e in result.errors]
        filtered = typed.num_rows - result.batch.num_rows - len(result.errors)
        mapped, already_sent = self.relations.drop_sent(result.batch)
        resolved = self.relations.resolve(mapped)
        rejected += resolved.rejected
        filtered += already_sent + resolved.skipped + seen
        mapped, more = self._target_coercer.apply(resolved.batch)
        rejected += more
        valid, more = validate(mapped, self.prepared.rules)
        rejected += more
        return valid, rejected, filtered

    def step(self, source: pa.RecordBatch, *, stop_at_reject: bool) -> StepResult:
        """All steps for one numbered source batch."""
        valid, rejected, filtered = self.map(source)
        if stop_at_reject and rejected:
            first = min(r.row for r in rejected)
            valid = valid.filter(pc.less(valid.column(ROW_COLUMN), first))
            rejected = [r for r in rejected if r.row == first]
        written = self.write(valid)
        written = self.relations.link(valid, written)
        self.relations.mark_sent(valid, written)
        outcomes = pa.concat_tables([_rejections_table(rejected), written])
        mapped = valid.select([*self.columns, ROW_COLUMN])
        return StepResult(outcomes.sort_by(ROW_COLUMN), filtered, mapped)

    def write(self, valid: pa.RecordBatch) -> pa.Table:
        """Write (or plan) the valid records: their outcomes (OUTCOME_SCHEMA)."""
        prepared = self.prepared
        keys = list(prepared.profile.target.match_keys)
        tables = [OUTCOME_SCHEMA.empty_table()]
        for wave in waves(valid.select([*self.columns, ROW_COLUMN]), keys):
            for chunk in chunks(wave, prepared.target_caps.max_batch_size):
                if chunk.num_rows == 0:
                    continue
                request = WriteRequest(
                    prepared.profile.target.object,
                    chunk,
                    prepared.profile.target.mode,
                    keys,
                    update_fields=prepared.profile.target.update_fields,
                    context=prepared.context,
                )
                result = self._write_with_retry(request)
                if len(result) != chunk.num_rows:
                    raise FatalError(
                        f"the {prepared.target.type_name} connector returned {len(result)} "
                        f"outcomes for {chunk.num_rows} records",
                        context=prepared.context,
                    )
                tables.append(_result_table(chunk.column(ROW_COLUMN), result))
        return pa.concat_tables(tables)

    def _write_with_retry(self, request: WriteRequest) -> WriteResult:
        target = self.prepared.target
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                if self.dry_run:
                    return self._planner.plan(request)
                return target.write(request)
            except RetryableError as err:
                if attempt == WRITE_ATTEMPTS:
                    raise
                pause = err.retry_after or min(30.0, 0.5 * 2**attempt) * random.uniform(0.5, 1)
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


def execute(
    prepared: Prepared,
    files: RunFiles,
    *,
    dry_run: bool,
    on_progress: Callable[[Progress], None] | None = None,
    state: StateStore | None = None,
    run_id: int | None = None,
    cursor: Cursor | None = None,
) -> Totals:
    """Run every batch of the source through the pipeline; outcomes go to ``files``."""
    profile = prepared.profile
    totals = Totals()
    progress = Progress(total=_count(prepared))
    stop_at_reject = profile.errors.on_reject is OnReject.STOP

    # the source is read in a background thread: unreadable records are queued there and
    # written here, so only this thread touches the output files
    unreadable: deque[BadRecord] = deque()

    def record_unreadable() -> None:
        while unreadable:
            files.add_bad_record(unreadable.popleft())
            totals.counts[Outcome.REJECTED.value] += 1

    request = replace(prepared.read, on_bad_record=unreadable.append)
    batches = read_ahead(rebatch(_batches(prepared, request), profile.batch_size), READ_AHEAD)
    with (
        Pipeline(prepared, dry_run=dry_run, state=state, run_id=run_id, cursor=cursor) as pipeline,
        closing(batches),
    ):
        for raw in batches:
            source = pipeline.number(raw)
            progress.read += source.num_rows
            result = pipeline.step(source, stop_at_reject=stop_at_reject)
            files.add(source, result.outcomes)
            for item in pc.value_counts(result.outcomes.column(OUTCOME)).to_pylist():
                totals.counts[item["values"]] += item["counts"]
            totals.counts[FILTERED] += result.filtered
            record_unreadable()
            progress.done = progress.read
            if on_progress:
                on_progress(progress)
            totals.stopped = _policy_stop(prepared, totals, result, stop_at_reject)
            if totals.stopped:
                break
    record_unreadable()
    return totals


def _batches(prepared: Prepared, request: ReadRequest) -> Iterator[pa.RecordBatch]:
    try:
        yield from prepared.source.read(request)
    except CrmBridgeError as err:
        raise err.with_context(profile=prepared.loaded.name) from None


def _count(prepared: Prepared) -> int | None:
    if prepared.local_filter is not None:
        return None
    try:
        return prepared.source.count(prepared.read)
    except CrmBridgeError:
        return None


def _policy_stop(
    prepared: Prepared, totals: Totals, result: StepResult, stop_at_reject: bool
) -> str | None:
    errors = prepared.profile.errors
    if stop_at_reject and totals.rejected:
        rejected = result.outcomes.filter(
            pc.equal(result.outcomes.column(OUTCOME), Outcome.REJECTED.value)
        )
        if rejected.num_rows:
            row = rejected.column(ROW_COLUMN)[0].as_py()
            reason = rejected.column(REASON)[0].as_py()
            return f"stopped at the first rejected record (record {row}): {reason}"
        return "stopped at the first rejected record (see the error file)"
    if errors.max_rejects is not None and totals.rejected > errors.max_rejects:
        return f"stopped: more than {errors.max_rejects} records were rejected"
    return None


__all__ = ["FILTERED", "Pipeline", "Progress", "Totals", "execute"]
