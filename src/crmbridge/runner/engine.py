"""The run loop: read a batch, map and check it, plan it, apply the plan, record outcomes.

Each source batch goes through the same steps (all vectorized over Arrow):

    read -> number rows -> convert source types -> skip what an incremental read has seen
         -> filter + map (DuckDB) -> skip what was sent before -> resolve references
         -> convert to target types -> validate (ours, then the target's own rules)
         -> match + plan (runner/writing.py)  ── a preview / dry run stops here
         -> ledger: intent -> apply -> links -> success / error files -> ledger: confirm

A record rejected at any step is in the error file with its reason; nothing is dropped
silently. The source is read in a background thread a couple of batches ahead and mapped one
batch ahead in another (not when a reference looks up the object the run writes). Only the
main thread writes the ledger (the files' own thread writes the files, runner/outputs.py);
where the target allows it (``Capabilities.concurrent_match``), a batch's writes run on a
writer thread while the main thread plans the next batch, a plan kept only if the batch in
flight touches none of its records (``Plan.shares_records_with``).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ROW_COLUMN, BadRecord, ReadRequest
from crmbridge.core.batches import read_ahead, rebatch
from crmbridge.core.coerce import Coercer, Rejection
from crmbridge.core.expressions import BatchTransform
from crmbridge.core.identity import content_keys, encode
from crmbridge.core.outcomes import Outcome, RejectCode, WriteMode
from crmbridge.core.plan import SOURCE_KEY_COLUMN, Plan
from crmbridge.core.validate import validate
from crmbridge.errors import CrmBridgeError, RecordError
from crmbridge.profiles.model import Missing, OnReject
from crmbridge.runner.children import ChildWriter
from crmbridge.runner.children import count as count_children
from crmbridge.runner.incremental import Cursor
from crmbridge.runner.ledger import Pending, Recovery, RunLedger
from crmbridge.runner.outputs import OUTCOME, OUTCOME_SCHEMA, REASON, RunFiles, outcome_table
from crmbridge.runner.prepare import Prepared
from crmbridge.runner.relations import Relations, pending_column
from crmbridge.runner.writing import TargetWriter, planned_outcomes
from crmbridge.state import Sent, StateStore

#: counted besides the write outcomes: records the filter (or a skip rule) left out
FILTERED = "filtered"

#: batches read in advance while the current one is processed
READ_AHEAD = 2
#: batches mapped in advance while the current one is written
MAP_AHEAD = 1


@dataclass
class Progress:
    read: int = 0  # source records read so far
    done: int = 0  # records that reached an outcome (or were filtered out)
    total: int | None = None  # source records expected, when the source can tell


@dataclass
class Mapped:
    """One source batch after mapping and checks: the records to plan."""

    source: pa.RecordBatch  # numbered, as read
    #: the valid records: written fields typed per the target, ROW_COLUMN, SOURCE_KEY_COLUMN,
    #: and the columns references, links and deduplication need
    proposed: pa.RecordBatch
    rejected: list[Rejection]
    filtered: int
    #: per proposed record, why it is skipped (inserted by an earlier run), or null
    skip: pa.Array | None = None
    #: the incremental cursor's progress once this batch was read (for the ledger)
    cursor: dict[str, Any] | None = None
    #: the batch as the source delivered it (the ledger keeps its read-order position)
    raw: pa.RecordBatch | None = None


@dataclass
class StepResult:
    """What happened to one source batch."""

    outcomes: pa.Table  # OUTCOME_SCHEMA, one row per operation, in source order
    filtered: int
    plan: Plan | None = None
    mapped: pa.RecordBatch | None = None  # the records as they were (or would be) written
    sent: list[Sent] = field(default_factory=list)
    #: children section (its list field) -> the outcome of each child (runner/children.py)
    children: dict[str, pa.Table] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """This batch's counts: per outcome, filtered, and ``<field>.<outcome>`` of children."""
        found: dict[str, int] = {}
        for item in pc.value_counts(self.outcomes.column(OUTCOME)).to_pylist():
            found[item["values"]] = item["counts"]
        found[FILTERED] = self.filtered
        for name, table in self.children.items():
            found.update(count_children(name, table))
        return found


@dataclass
class Totals:
    counts: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None  # why the run stopped early (error policy)
    #: why records were skipped ("inserted by run 12") -> how many
    skip_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return self.counts[Outcome.REJECTED.value]

    def add(self, result: StepResult) -> None:
        outcome = result.outcomes.column(OUTCOME)
        for item in pc.value_counts(outcome).to_pylist():
            self.counts[item["values"]] += item["counts"]
        self.counts[FILTERED] += result.filtered
        for name, table in result.children.items():
            self.counts.update(count_children(name, table))
        if self.counts[Outcome.SKIPPED.value]:
            skipped = result.outcomes.filter(pc.equal(outcome, Outcome.SKIPPED.value))
            self.skip_reasons.update(skipped.column(REASON).to_pylist())


def rejections_table(rejections: list[Rejection]) -> pa.Table:
    return outcome_table(
        pa.array([r.row for r in rejections], pa.int64()),
        pa.array([Outcome.REJECTED.value] * len(rejections), pa.string()),
        pa.nulls(len(rejections), pa.string()),
        pa.array(
            [f"field {r.field!r}: {r.reason}" if r.field else r.reason for r in rejections],
            pa.string(),
        ),
        pa.array([r.code.value for r in rejections], pa.string()),
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
        again: bool = False,
        first_row: int = 1,
    ) -> None:
        self.prepared = prepared
        self.dry_run = dry_run
        self.state = state
        self.cursor = cursor
        self.again = again
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
        self.relations = Relations(prepared, state=state, run_id=run_id, dry_run=dry_run)
        spec = prepared.plan_spec
        #: a reference looks records up in the object the run writes: a batch is mapped (its
        #: references looked up) only once the batch before is written
        self.reads_own_writes = any(
            r.object.casefold() == prepared.profile.target.object.casefold()
            for r in prepared.profile.references.values()
        )
        #: a batch may be planned while the one before is written: the target allows it, and
        #: the write phase writes nothing else first (references it creates, children)
        self.ahead = (
            not dry_run
            and not self.reads_own_writes
            and prepared.target_exists
            and prepared.target_caps.concurrent_match
            and not prepared.children
            and not any(r.missing is Missing.CREATE for r in prepared.profile.references.values())
        )
        if again and run_id is not None:  # inserted once more: new records, new ids
            spec = replace(spec, namespace=f"{spec.namespace}\x1frun {run_id}")
        self.writer = TargetWriter(
            prepared.target,
            spec,
            prepared.context,
            target_exists=prepared.target_exists,
            max_batch_size=prepared.target_caps.max_batch_size,
            remember=dry_run,
        )
        self._next_row = first_row
        self.children = [
            ChildWriter(child, prepared.target, prepared.context, dry_run=dry_run)
            for child in prepared.children
        ]

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._source_coercer.close()
        self._transform.close()
        self._target_coercer.close()
        for writer in self.children:
            writer.close()

    @property
    def rows_read(self) -> int:
        return self._next_row - 1

    def number(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The batch with ROW_COLUMN: each record's 1-based position in the source."""
        rows = pa.array(range(self._next_row, self._next_row + batch.num_rows), pa.int64())
        self._next_row += batch.num_rows
        return batch.append_column(pa.field(ROW_COLUMN, pa.int64()), rows)

    # -- the steps ------------------------------------------------------------------------
    def map(self, source: pa.RecordBatch) -> Mapped:
        """Convert, filter, map and check one numbered source batch."""
        keys = pa.RecordBatch.from_arrays(
            [source.column(ROW_COLUMN), self._source_keys(source)],
            names=[ROW_COLUMN, SOURCE_KEY_COLUMN],
        )
        typed, rejected = self._source_coercer.apply(source)
        seen = 0
        if self.cursor is not None:
            typed, seen = self.cursor.drop_seen(typed)
            self.cursor.advance(typed)
        result = self._transform.apply(typed)
        rejected += [Rejection(e.row, e.field, e.message) for e in result.errors]
        filtered = typed.num_rows - result.batch.num_rows - len(result.errors)
        mapped = _keep_source_keys(result.batch, keys)
        mapped, already_sent = self.relations.drop_sent(mapped)
        resolved = self.relations.resolve(mapped)
        rejected += resolved.rejected
        filtered += already_sent + resolved.skipped + seen
        converted, more = self._target_coercer.apply(resolved.batch)
        rejected += more
        later = {
            name: converted.column(pending_column(name))
            for name in resolved.pending
            if pending_column(name) in converted.schema.names
        }
        valid, more = validate(converted, self.prepared.rules, filled_later=later)
        rejected += more
        valid, more = self._target_checks(valid)
        rejected += more
        progress = self.cursor.progress() if self.cursor is not None else None
        return Mapped(source, valid, rejected, filtered, self._skips(valid), progress)

    def references(self, mapped: Mapped) -> Mapped:
        """The write phase's first step: create the referenced records the valid records
        need (``missing: create``); a record whose reference cannot be created is rejected."""
        proposed, failed = self.relations.create_missing(mapped.proposed)
        if not failed:
            return replace(mapped, proposed=proposed)
        kept = pc.is_in(mapped.proposed.column(ROW_COLUMN), value_set=proposed.column(ROW_COLUMN))
        skip = mapped.skip.filter(kept) if mapped.skip is not None else None
        return replace(mapped, proposed=proposed, rejected=mapped.rejected + failed, skip=skip)

    def plan(self, mapped: Mapped) -> Plan:
        proposed = mapped.proposed.select([*self.columns, ROW_COLUMN, SOURCE_KEY_COLUMN])
        return self.writer.plan(proposed, mapped.skip)

    def apply(self, plan: Plan, *, attempt: int = 1) -> pa.Table:
        """Carry the plan out (a dry run: what it would do)."""
        if self.dry_run:
            return planned_outcomes(plan.ops)
        return self.writer.apply(plan, attempt=attempt)

    def finish(self, mapped: Mapped, plan: Plan, outcomes: pa.Table) -> StepResult:
        """Links for the written records, and what to remember of them."""
        outcomes = self.relations.link(mapped.proposed, outcomes)
        children = {
            w.child.section.field: w.write(mapped.proposed, outcomes) for w in self.children
        }
        outcomes = pa.concat_tables([rejections_table(mapped.rejected), outcomes])
        outcomes = outcomes.take(pc.sort_indices(outcomes, [(ROW_COLUMN, "ascending")]))
        sent = [] if self.dry_run else self._sent(mapped, outcomes)
        shown = mapped.proposed.select([*self.columns, ROW_COLUMN])
        return StepResult(outcomes, mapped.filtered, plan, shown, sent, children)

    def step(self, source: pa.RecordBatch, *, stop_at_reject: bool = False) -> StepResult:
        """Every step for one numbered source batch, without the ledger (preview, dry run)."""
        mapped = self.map(source)
        if stop_at_reject:
            mapped = _until_first_reject(mapped)
        mapped = self.references(mapped)
        plan = self.plan(mapped)
        return self.finish(mapped, plan, self.apply(plan))

    # -- helpers --------------------------------------------------------------------------
    def _source_keys(self, source: pa.RecordBatch) -> pa.Array:
        key = self.prepared.source_key
        if key:
            return encode(source, key)
        names = [n for n in source.schema.names if n != ROW_COLUMN]
        return content_keys(source, names, ROW_COLUMN)

    def _target_checks(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[Rejection]]:
        """Values the target would refuse, found before anything is sent (dry run too)."""
        prepared = self.prepared
        if batch.num_rows == 0 or not prepared.target_exists:
            return batch, []
        reasons = prepared.target.refusals(
            prepared.profile.target.object, batch.select(self.columns)
        )
        if reasons is None or reasons.null_count == len(reasons):
            return batch, []
        bad = pc.is_valid(reasons)
        rows = batch.column(ROW_COLUMN).filter(bad).to_pylist()
        texts = reasons.filter(bad).to_pylist()
        found = [Rejection(r, None, t) for r, t in zip(rows, texts, strict=True)]
        return batch.filter(pc.invert(bad)), found

    def _skips(self, valid: pa.RecordBatch) -> pa.Array | None:
        """Records an earlier run of this profile inserted (insert without match keys)."""
        prepared = self.prepared
        if (
            self.state is None
            or self.again
            or prepared.target_caps.atomic  # a file is written anew by every run
            or prepared.profile.target.mode is not WriteMode.INSERT
            or prepared.plan_spec.keys
            or valid.num_rows == 0
        ):
            return None
        keys = valid.column(SOURCE_KEY_COLUMN).to_pylist()
        done = self.state.sent(prepared.inserted_scope, [k for k in keys if k is not None])
        if not done:
            return None
        return pa.array(
            [f"inserted by run {done[k]}" if k in done else None for k in keys],
            pa.string(),
        )

    def _sent(self, mapped: Mapped, outcomes: pa.Table) -> list[Sent]:
        prepared = self.prepared
        sent = self.relations.sent(mapped.proposed, outcomes)
        inserts = prepared.profile.target.mode is WriteMode.INSERT and not prepared.plan_spec.keys
        if inserts and not prepared.target_caps.atomic:
            created = outcomes.filter(pc.equal(outcomes.column(OUTCOME), Outcome.CREATED.value))
            rows = mapped.proposed.filter(
                pc.is_in(mapped.proposed.column(ROW_COLUMN), created.column(ROW_COLUMN))
            )
            keys = [k for k in rows.column(SOURCE_KEY_COLUMN).to_pylist() if k is not None]
            sent.append(Sent(prepared.inserted_scope, keys))
        return sent


def execute(
    prepared: Prepared,
    files: RunFiles,
    *,
    dry_run: bool,
    on_progress: Callable[[Progress], None] | None = None,
    state: StateStore | None = None,
    run_id: int | None = None,
    cursor: Cursor | None = None,
    ledger: RunLedger | None = None,
    recovery: Recovery | None = None,
    again: bool = False,
    plans: Callable[[Plan, pa.RecordBatch], None] | None = None,
) -> Totals:
    """Run every batch of the source through the pipeline; outcomes go to ``files``.

    ``ledger``: a real run records each batch's intent and confirmation (runner/ledger.py).
    ``recovery``: where an interrupted run stood, to continue from. ``plans``: called with
    each batch's plan and source batch (``--plan-out``)."""
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
    skip_rows = 0
    first_row = 1
    if recovery is not None:
        request = replace(request, after=recovery.after)
        skip_rows = recovery.rows_read if recovery.after is None else 0
        first_row = recovery.rows_read + 1
        progress.read = recovery.rows_read
    source = _skipping(_batches(prepared, request), skip_rows)
    batches = read_ahead(rebatch(source, profile.batch_size), READ_AHEAD)
    with (
        Pipeline(
            prepared,
            dry_run=dry_run,
            state=state,
            run_id=run_id,
            cursor=cursor,
            again=again,
            first_row=first_row,
        ) as pipeline,
        closing(batches),
    ):

        def mapping() -> Generator[Mapped, None, None]:
            for raw in batches:
                mapped = pipeline.map(pipeline.number(raw))
                yield replace(mapped, raw=raw)

        def record(
            numbered: pa.RecordBatch, result: StepResult, behind: int = 0, seq: int | None = None
        ) -> bool:
            """Files, counts and the ledger's confirmation of one finished batch (``seq``: its
            number in the ledger, default the last begun); whether the run stops here.
            ``behind``: rows read after it (being written)."""
            files.add(numbered, result.outcomes)
            for name, table in result.children.items():
                files.add_children(name, table)
            record_unreadable()
            totals.add(result)
            if ledger is not None:
                ledger.confirm(result, totals, files, seq=seq)
            progress.done = progress.read - behind
            if on_progress:
                on_progress(progress)
            totals.stopped = _policy_stop(prepared, totals, result, stop_at_reject)
            return totals.stopped is not None

        # records are mapped one batch ahead, in a thread of their own, while the target
        # writes the batch before: except when a reject stops the run at once, or when the
        # mapping looks up what the batch before writes
        in_order = stop_at_reject or pipeline.reads_own_writes
        mapped_batches = mapping() if in_order else read_ahead(mapping(), MAP_AHEAD)
        # and a batch is planned while the one before is written, on a thread of its own;
        # with no count that can stop the run, it is also queued behind the one being written
        # (its intent recorded), so the target does not wait for this thread's bookkeeping
        pipelined = ledger is not None and pipeline.ahead and not stop_at_reject
        queue_ahead = pipelined and profile.errors.max_rejects is None
        writer = ThreadPoolExecutor(1, "crmbridge-write") if pipelined else None
        flying: deque[Pending] = deque()  # begun, oldest first

        def finish_oldest(unread: int = 0) -> bool:
            """Wait for the oldest batch in flight and record it; whether the run stops.
            ``unread``: rows read and not yet begun."""
            assert ledger is not None
            done = flying.popleft()
            behind = unread + sum(p.mapped.source.num_rows for p in flying)
            result = ledger.end(pipeline, done)
            return record(done.mapped.source, result, behind, seq=done.seq)

        def finish_all(unread: int = 0) -> bool:
            """Record every batch in flight (those begun are written, even after a stop)."""
            stop = False
            while flying:
                stop = finish_oldest(unread) or stop
            return stop

        failed = True
        try:
            with closing(mapped_batches):
                for mapped in mapped_batches:
                    numbered = mapped.source
                    progress.read += numbered.num_rows
                    if stop_at_reject:
                        mapped = _until_first_reject(mapped)
                    mapped = pipeline.references(mapped)
                    if ledger is not None and writer is not None:
                        early = ledger.plan_ahead(pipeline, mapped) if flying else None
                        if early is not None and any(
                            early.shares_records_with(p.plan) for p in flying
                        ):
                            early = None  # made before what it depends on was written
                        if (early is None or not queue_ahead) and finish_all(numbered.num_rows):
                            break
                        sizes = files.children_sizes
                        flying.append(
                            ledger.begin(pipeline, mapped, sizes, plan=early, writer=writer)
                        )
                        if len(flying) > 1 and finish_oldest():
                            finish_all()
                            break
                        continue
                    if ledger is not None:
                        result = ledger.step(pipeline, mapped, files.children_sizes)
                    else:
                        plan = pipeline.plan(mapped)
                        if plans is not None:
                            plans(plan, numbered)
                        result = pipeline.finish(mapped, plan, pipeline.apply(plan))
                    if record(numbered, result):
                        break
                finish_all()
                if ledger is not None and not totals.stopped:
                    leftovers = ledger.leftovers(pipeline)  # in-flight operations not read again
                    if leftovers is not None:
                        result = StepResult(leftovers, 0)
                        files.add_orphans(leftovers)
                        totals.add(result)
                        ledger.confirm(result, totals, files)
            failed = False
        finally:
            if writer is not None:  # a write under way is finished, never left half done;
                # one queued behind it is not started (its intent is carried out on resume)
                writer.shutdown(wait=True, cancel_futures=failed)
    record_unreadable()
    return totals


def _until_first_reject(mapped: Mapped) -> Mapped:
    """``on_reject: stop``: only the records before the first rejected one go on."""
    if not mapped.rejected:
        return mapped
    first = min(r.row for r in mapped.rejected)
    keep = pc.less(mapped.proposed.column(ROW_COLUMN), first)
    skip = mapped.skip.filter(keep) if mapped.skip is not None else None
    rejected = [r for r in mapped.rejected if r.row == first]
    return Mapped(mapped.source, mapped.proposed.filter(keep), rejected, mapped.filtered, skip)


def _keep_source_keys(mapped: pa.RecordBatch, keys: pa.RecordBatch) -> pa.RecordBatch:
    """The mapped batch with each record's source key (looked up by row)."""
    at = pc.index_in(mapped.column(ROW_COLUMN), value_set=keys.column(ROW_COLUMN))
    return mapped.append_column(SOURCE_KEY_COLUMN, keys.column(SOURCE_KEY_COLUMN).take(at))


def _skipping(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pa.RecordBatch]:
    """``batches`` without their first ``rows`` records (resuming a source read by count)."""
    for batch in batches:
        if rows <= 0:
            yield batch
        elif batch.num_rows <= rows:
            rows -= batch.num_rows
        else:
            yield batch.slice(rows)
            rows = 0


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


__all__ = [
    "FILTERED",
    "OUTCOME_SCHEMA",
    "Mapped",
    "Pipeline",
    "Progress",
    "RecordError",
    "RejectCode",
    "StepResult",
    "Totals",
    "execute",
]
