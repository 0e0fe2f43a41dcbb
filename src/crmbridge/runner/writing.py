"""Match, then plan, then apply: what the run does to the target for one batch of records.

    proposed ──stored_form──▶ keys ──match──▶ candidates ──core.plan──▶ Plan
    Plan ──(dry run: that is the answer)──▶ apply in waves and chunks, with retries ──▶ outcomes

A preview and a dry run stop at the plan; a real run carries the plan's operations out with
``Connector.apply`` and nothing else, so both report the same outcomes. Retries of a write
live here (and only here): a call that failed transiently or may have been applied is repeated
with the same operations and ``attempt + 1``, and the target confirms what it finds done.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ApplyRequest, Connector, MatchRequest
from crmbridge.core import identity
from crmbridge.core.batches import chunks
from crmbridge.core.outcomes import Outcome, RejectCode, WriteMode, WriteResult
from crmbridge.core.plan import (
    ACTION_COLUMN,
    CODE_COLUMN,
    CREATED_BY_COLUMN,
    ID_COLUMN,
    OP_KEY_COLUMN,
    REASON_COLUMN,
    SET_PREFIX,
    WAVE_COLUMN,
    WRITES,
    Action,
    Plan,
    PlanSpec,
)
from crmbridge.core.planner import Planner
from crmbridge.core.retry import RetryPolicy, with_retries
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ErrorContext, FatalError, RecordError, RetryableError
from crmbridge.runner.outputs import OUTCOME_SCHEMA, outcome_table

log = logging.getLogger("crmbridge.runner")

#: key values per match call (a connector pages further as its system needs)
MATCH_PAGE = 10_000
#: how the engine repeats a write that failed transiently or may have been applied
WRITE_RETRIES = RetryPolicy(attempts=4, backoff=0.5, max_pause=30.0)


@dataclass
class TargetWriter:
    """Plans and carries out the writes of one run to one target object."""

    target: Connector
    spec: PlanSpec
    context: ErrorContext
    #: False in a preview / dry run of a profile whose target the run would create
    target_exists: bool = True
    max_batch_size: int | None = None
    #: dry run: remember planned effects across batches (nothing is written)
    remember: bool = False
    retries: RetryPolicy = WRITE_RETRIES
    _planner: Planner = field(init=False)
    #: operation key of a create -> the id the target gave the record (this plan's earlier
    #: waves: a later wave's operations on the records they create name them so)
    _created: dict[str, str] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._planner = Planner(self.spec, remember=self.remember)

    # -- plan ----------------------------------------------------------------------------
    def plan(self, proposed: pa.RecordBatch, skip: pa.Array | None = None) -> Plan:
        """The plan for ``proposed`` (the written fields, ROW_COLUMN, SOURCE_KEY_COLUMN)."""
        fields = list(self.spec.fields)
        stored = proposed
        if self.target_exists and proposed.num_rows:
            shown = self.target.stored_form(self.spec.object, proposed.select(fields))
            stored = _with_columns(proposed, shown, fields)
        can_match = self.target_exists and self.target.capabilities().match
        candidates = self.match_candidates(stored) if self.spec.keys and can_match else None
        return self._planner.plan(proposed, stored=stored, candidates=candidates, skip=skip)

    def match_candidates(self, stored: pa.RecordBatch) -> pa.RecordBatch | None:
        """The target's candidate records for the keys of ``stored`` (distinct keys, one
        ``match`` call per page of them)."""
        keys = list(self.spec.keys)
        wanted = identity.encode(stored, keys, self.spec.rules)
        present = stored.filter(pc.is_valid(wanted))
        if present.num_rows == 0:
            return None
        distinct = (
            pa.Table.from_batches([present.select(keys)]).group_by(keys, use_threads=False)
        ).aggregate([])
        values = distinct.select(keys).combine_chunks()
        found: list[pa.RecordBatch] = []
        compared = self.spec.value_fields if self.spec.mode is not WriteMode.INSERT else ()
        fields = list(dict.fromkeys([*keys, *compared]))  # an insert compares no values
        for start in range(0, values.num_rows, MATCH_PAGE):
            page = values.slice(start, MATCH_PAGE).to_batches()
            if not page:
                continue
            request = MatchRequest(
                self.spec.object,
                keys,
                page[0],
                rules=dict(self.spec.rules),
                fields=fields,
                context=self.context,
            )
            found.append(self.target.match(request))
        found = [b for b in found if b.num_rows]
        if not found:
            return None
        return pa.Table.from_batches(found).combine_chunks().to_batches()[0]

    # -- apply ---------------------------------------------------------------------------
    def apply(self, plan: Plan, *, attempt: int = 1) -> pa.Table:
        """Carry out ``plan``'s operations; the outcome of each (OUTCOME_SCHEMA).

        ``attempt > 1``: the operations may have been carried out already (a resumed run's
        in-flight batch): the target confirms those."""
        ops = plan.ops
        writes = pc.is_in(ops.column(ACTION_COLUMN), pa.array([a.value for a in WRITES]))
        outcomes = [planned_outcomes(ops.filter(pc.invert(writes)))]
        todo = ops.filter(writes)
        waves = _waves(todo)
        self._created = {}
        for number, wave in enumerate(waves):
            wave = self._resolve(wave)
            keep_ids = number < len(waves) - 1  # a later wave may need the ids it creates
            for chunk in chunks(wave.combine_chunks().to_batches()[0], self.max_batch_size):
                outcomes.append(self._apply_isolating(chunk, attempt, keep_ids))
        self._created = {}
        table = pa.concat_tables([t for t in outcomes if t.num_rows] or outcomes[:1])
        rows = table.column(ROW_COLUMN)
        if len(rows) < 2 or pc.all(pc.less(rows[:-1], rows[1:])).as_py():
            return table  # in order already (the usual batch: one wave of creates)
        return table.take(pc.sort_indices(table, sort_keys=[(ROW_COLUMN, "ascending")]))

    def _resolve(self, wave: pa.Table) -> pa.Table:
        """Fill in the ids of records created by earlier waves of this run."""
        if not self._created or wave.num_rows == 0:
            return wave
        created_by = wave.column(CREATED_BY_COLUMN)
        if created_by.null_count == len(created_by):
            return wave
        made = pa.array(list(self._created), pa.string())
        ids = pa.array(list(self._created.values()), pa.string())
        known = ids.take(pc.index_in(created_by, value_set=made))
        filled = pc.coalesce(wave.column(ID_COLUMN), known)
        return wave.set_column(wave.column_names.index(ID_COLUMN), ID_COLUMN, filled)

    def _apply_isolating(self, chunk: pa.RecordBatch, attempt: int, keep_ids: bool) -> pa.Table:
        """Apply ``chunk``; when the target refuses a record by raising a RecordError, the
        operations are applied half by half until that record stands alone, rejected."""
        try:
            return self._apply_chunk(chunk, attempt, keep_ids)
        except RecordError as err:
            if chunk.num_rows == 1:
                rows = chunk.column(ROW_COLUMN)
                return outcome_table(
                    rows,
                    pa.array([Outcome.REJECTED.value], pa.string()),
                    pa.nulls(1, pa.string()),
                    pa.array([err.message], pa.string()),
                    pa.array([RejectCode.REFUSED.value], pa.string()),
                )
        half = chunk.num_rows // 2
        return pa.concat_tables(
            [
                self._apply_isolating(chunk.slice(0, half), attempt, keep_ids),
                self._apply_isolating(chunk.slice(half), attempt, keep_ids),
            ]
        )

    def _apply_chunk(self, chunk: pa.RecordBatch, attempt: int, keep_ids: bool) -> pa.Table:
        """Apply one chunk; ``keep_ids``: remember the ids of the records it creates."""
        spec = self.spec
        columns = [ACTION_COLUMN, ID_COLUMN, OP_KEY_COLUMN, ROW_COLUMN, *spec.fields]
        ops = chunk.select(columns)
        is_update = pc.equal(chunk.column(ACTION_COLUMN), Action.UPDATE.value)
        unset = {
            name: pc.and_(is_update, pc.invert(chunk.column(SET_PREFIX + name)))
            for name in spec.fields
        }
        request = ApplyRequest(
            spec.object,
            ops,
            keys=spec.keys,
            unset=unset,
            context=self.context,
            attempt=attempt,
            namespace=spec.namespace,
        )

        def once(retry: int) -> WriteResult:
            return self.target.apply(_again(request, attempt + retry - 1))

        def note(n: int, err: RetryableError, pause: float) -> None:
            log.warning("%s; trying again in %.1f s (attempt %d)", err, pause, n + 1)

        result = with_retries(once, self.retries, on_retry=note)
        if len(result) != chunk.num_rows:
            raise FatalError(
                f"the {self.target.type_name} connector returned {len(result)} outcomes for "
                f"{chunk.num_rows} operations",
                context=self.context,
            )
        if keep_ids:
            self._note(chunk, result)
        return outcome_table(
            chunk.column(ROW_COLUMN), result.outcome, result.target_id, result.reason, result.codes
        )

    def _note(self, chunk: pa.RecordBatch, result: WriteResult) -> None:
        """Remember the ids of the records ``chunk`` created."""
        created = pc.and_(
            pc.equal(chunk.column(ACTION_COLUMN), Action.CREATE.value),
            pc.equal(result.outcome, Outcome.CREATED.value),
        )
        for key, record_id in zip(
            chunk.column(OP_KEY_COLUMN).filter(created).to_pylist(),
            result.target_id.filter(created).to_pylist(),
            strict=True,
        ):
            if key is not None and record_id is not None:
                self._created[key] = record_id


def planned_outcomes(ops: pa.Table) -> pa.Table:
    """The outcomes a plan's rows get when carried out as planned (dry run, unchanged,
    rejected and skipped records of a real run). Skipped ones count as ``skipped``."""
    if ops.num_rows == 0:
        return OUTCOME_SCHEMA.empty_table()
    words = {a.value: (a.outcome or Outcome.SKIPPED).value for a in Action}
    actions = ops.column(ACTION_COLUMN)
    outcome = pa.array([words[v] for v in actions.to_pylist()], pa.string())
    return outcome_table(
        ops.column(ROW_COLUMN),
        outcome,
        ops.column(ID_COLUMN),
        ops.column(REASON_COLUMN),
        ops.column(CODE_COLUMN),
    )


def _waves(ops: pa.Table) -> list[pa.Table]:
    if ops.num_rows == 0:
        return []
    waves = ops.column(WAVE_COLUMN)
    top = pc.max(waves).as_py() or 0
    if top == 0:
        return [ops]
    return [ops.filter(pc.equal(waves, w)) for w in range(top + 1)]


def _again(request: ApplyRequest, attempt: int) -> ApplyRequest:
    return request if attempt == request.attempt else replace(request, attempt=attempt)


def _with_columns(
    batch: pa.RecordBatch, values: pa.RecordBatch, names: Sequence[str]
) -> pa.RecordBatch:
    """``batch`` with the columns ``names`` taken from ``values`` (same rows)."""
    for name in names:
        i = batch.schema.get_field_index(name)
        batch = batch.set_column(i, batch.schema.field(i), values.column(name))
    return batch


__all__ = ["MATCH_PAGE", "WRITE_RETRIES", "TargetWriter", "planned_outcomes"]
