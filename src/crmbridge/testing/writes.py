"""Writing records to a connector in tests the way a run does: check, match, plan, apply.

    result = write_records(connector, "Leads", batch, WriteMode.UPSERT, keys=["email1"])

``batch`` holds the target fields, typed per the target (ROW_COLUMN is added when missing).
The records are checked against the target's schema (required fields, lengths, options) and
the connector's own refusals (``checks=False``: left to the target), then planned and carried
out exactly as a real run does (``runner/writing.py``). The outcome of each record comes back
in order, as a :class:`~crmbridge.core.outcomes.WriteResult`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ROW_COLUMN, ApplyRequest, Connector, CreateIdentity
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
from crmbridge.core.plan import (
    SOURCE_KEY_COLUMN,
    OnMultiple,
    Plan,
    PlanSpec,
    effective_keys,
)
from crmbridge.core.schema import ObjectSchema
from crmbridge.core.validate import TargetRules, validate
from crmbridge.errors import ErrorContext, UnsupportedOperationError
from crmbridge.runner.outputs import CODE, OUTCOME, REASON, TARGET_ID, outcome_table
from crmbridge.runner.writing import TargetWriter, planned_outcomes


@dataclass
class Planned:
    writer: TargetWriter
    plan: Plan
    #: the records refused before planning (OUTCOME_SCHEMA)
    rejected: pa.Table


def plan_records(
    connector: Connector,
    object: str,
    batch: pa.RecordBatch,
    mode: WriteMode,
    *,
    keys: Sequence[str] = (),
    update_fields: Sequence[str] | None = None,
    rules: Mapping[str, KeyRule] | None = None,
    on_multiple: OnMultiple = OnMultiple.REJECT,
    namespace: str = "test",
    checks: bool = True,
) -> Planned:
    """The plan a run makes for ``batch``, the writer that would carry it out, and the
    records refused by the checks."""
    caps = connector.capabilities()
    if not connector.writable:  # the connector says why, in its own words
        connector.apply(ApplyRequest(object, batch))
    if mode not in caps.write_modes:
        modes = ", ".join(sorted(m.value for m in caps.write_modes)) or "nothing"
        raise UnsupportedOperationError(
            f"{connector.type_name} targets cannot {mode.value} (they can: {modes})"
        )
    schema: ObjectSchema | None = None
    if not caps.atomic:  # a file target is written anew: what it holds now does not matter
        schema = connector.describe(object)
    if ROW_COLUMN not in batch.schema.names:
        rows = pa.array(range(1, batch.num_rows + 1), pa.int64())
        batch = batch.append_column(ROW_COLUMN, rows)
    if SOURCE_KEY_COLUMN not in batch.schema.names:  # every record a new source record
        fresh = pa.array([uuid.uuid4().hex for _ in range(batch.num_rows)], pa.string())
        batch = batch.append_column(SOURCE_KEY_COLUMN, fresh)
    fields = tuple(n for n in batch.schema.names if n not in (ROW_COLUMN, SOURCE_KEY_COLUMN))
    rejected = []
    if schema is not None:
        keys = effective_keys(mode, keys, fields, schema.id_field, schema.key_fields)
    if schema is not None and checks:
        rules_of_target = TargetRules(
            schema.select(list(fields)), mode, keys, truncate=lambda _: False
        )
        batch, found = validate(batch, rules_of_target)
        rejected += found
        refusals = connector.refusals(object, batch.select(list(fields)))
        if refusals is not None and refusals.null_count < len(refusals):
            bad = pc.is_valid(refusals)
            rows_bad = batch.column(ROW_COLUMN).filter(bad).to_pylist()
            from crmbridge.core.coerce import Rejection

            rejected += [
                Rejection(r, None, t)
                for r, t in zip(rows_bad, refusals.filter(bad).to_pylist(), strict=True)
            ]
            batch = batch.filter(pc.invert(bad))
    chosen = dict(rules or {})
    spec = PlanSpec(
        object=object,
        mode=mode,
        fields=fields,
        keys=tuple(keys),
        rules={
            k: chosen.get(k, schema.field(k).key_rule if schema else KeyRule.EXACT) for k in keys
        },
        update_fields=tuple(update_fields) if update_fields is not None else None,
        on_multiple=on_multiple,
        client_ids=caps.create_identity is CreateIdentity.CLIENT_ID,
        namespace=namespace,
        id_field=schema.id_field if schema else None,
    )
    writer = TargetWriter(
        connector, spec, ErrorContext(object=object), max_batch_size=caps.max_batch_size
    )
    refused = outcome_table(
        pa.array([r.row for r in rejected], pa.int64()),
        pa.array([Outcome.REJECTED.value] * len(rejected), pa.string()),
        pa.nulls(len(rejected), pa.string()),
        pa.array([r.reason for r in rejected], pa.string()),
        pa.array([r.code.value for r in rejected], pa.string()),
    )
    return Planned(writer, writer.plan(batch), refused)


def write_records(
    connector: Connector,
    object: str,
    batch: pa.RecordBatch,
    mode: WriteMode,
    *,
    keys: Sequence[str] = (),
    update_fields: Sequence[str] | None = None,
    rules: Mapping[str, KeyRule] | None = None,
    on_multiple: OnMultiple = OnMultiple.REJECT,
    dry_run: bool = False,
    attempt: int = 1,
    namespace: str = "test",
    checks: bool = True,
) -> WriteResult:
    """Check and plan ``batch`` against ``connector`` and carry the plan out (``dry_run``:
    only plan); one outcome per record of ``batch``, in order (its first operation's)."""
    planned = plan_records(
        connector,
        object,
        batch,
        mode,
        keys=keys,
        update_fields=update_fields,
        rules=rules,
        on_multiple=on_multiple,
        namespace=namespace,
        checks=checks,
    )
    ops = planned.plan.ops
    done = planned_outcomes(ops) if dry_run else planned.writer.apply(planned.plan, attempt=attempt)
    outcomes = pa.concat_tables([planned.rejected, done])
    rows = (
        batch.column(ROW_COLUMN)
        if ROW_COLUMN in batch.schema.names
        else pa.array(range(1, batch.num_rows + 1), pa.int64())
    )
    picked = outcomes.take(pc.index_in(rows, value_set=outcomes.column(ROW_COLUMN)))
    return WriteResult(
        picked.column(OUTCOME).combine_chunks(),
        picked.column(TARGET_ID).combine_chunks(),
        picked.column(REASON).combine_chunks(),
        picked.column(CODE).combine_chunks(),
    )


__all__ = ["Planned", "plan_records", "write_records"]
