"""What a write *would* do, without writing: the outcomes of preview and dry run.

Uses the target connector's ``lookup`` to see which records exist and compares their values
with the ones the run would write, so a dry run reports created / updated / unchanged /
deleted / rejected exactly as the real run decides them.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connectors.base import ROW_COLUMN, Connector, WriteRequest
from crmbridge.core.keys import key_strings
from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
from crmbridge.errors import ErrorContext, UnsupportedOperationError


def _describe_key(batch: pa.RecordBatch, keys: list[str], i: int) -> str:
    return ", ".join(f"{k}={batch.column(k)[i].as_py()!r}" for k in keys)


def plan_write(
    connector: Connector, request: WriteRequest, target_exists: bool = True
) -> WriteResult:
    """The outcome each record of ``request`` would get.

    ``target_exists`` False: the target object would be created by the run, so it is empty."""
    batch, mode, keys = request.batch, request.mode, list(request.match_keys)
    n = batch.num_rows
    if not target_exists:
        if mode in (WriteMode.INSERT, WriteMode.UPSERT):
            return WriteResult.uniform(n, Outcome.CREATED)
        return WriteResult.build(
            [Outcome.REJECTED.value] * n, reasons=["the target does not exist yet"] * n
        )
    if not keys:
        if mode is WriteMode.INSERT:
            return WriteResult.uniform(n, Outcome.CREATED)
        raise UnsupportedOperationError(f"mode {mode.value} needs match keys")
    if not connector.capabilities().lookup:
        if mode is WriteMode.INSERT:
            return WriteResult.uniform(n, Outcome.CREATED)
        raise UnsupportedOperationError(
            f"a dry run of {mode.value} needs to look records up, which {connector.type_name} "
            "connections cannot do",
            context=ErrorContext(connection=connector.name, object=request.object),
        )
    schema = connector.describe(request.object)
    values = [c for c in batch.schema.names if c not in keys and c != ROW_COLUMN]
    if request.update_fields is not None:  # existing records only get these fields
        values = [c for c in values if c in request.update_fields]
    found = connector.lookup(request.object, keys, batch.select(keys), values)
    wanted, there = key_strings(batch, keys), key_strings(found, keys)
    position = pc.index_in(wanted, value_set=there)
    exists = pc.is_valid(position).to_pylist()
    counts = pc.value_counts(there).to_pylist() if len(there) else []
    matches = {c["values"]: c["counts"] for c in counts}
    aligned = found.take(pc.fill_null(position, 0)) if len(found) else None
    changed = _changed(batch, aligned, values) if aligned is not None else [True] * n
    id_column = (
        schema.id_field if schema.id_field and schema.id_field in found.schema.names else None
    )
    ids = (
        (aligned.column(id_column) if id_column else batch.column(keys[0]))
        if aligned is not None
        else None
    )

    outcomes: list[str] = []
    target_ids: list[str | None] = []
    reasons: list[str | None] = []
    for i in range(n):
        key = wanted[i].as_py()
        target_id = None
        if exists[i] and ids is not None:
            target_id = str(ids[i].as_py())
        outcome, reason = _decide(mode, exists[i], matches.get(key, 0), changed[i])
        if reason:
            reason = reason.format(key=_describe_key(batch, keys, i), id=target_id)
        outcomes.append(outcome.value)
        target_ids.append(target_id if outcome is not Outcome.CREATED else None)
        reasons.append(reason)
    return WriteResult.build(outcomes, target_ids, reasons)


def _decide(
    mode: WriteMode, exists: bool, matches: int, changed: bool
) -> tuple[Outcome, str | None]:
    if matches > 1 and mode is not WriteMode.INSERT:
        return Outcome.REJECTED, f"{matches} records match {{key}}"
    if mode is WriteMode.INSERT:
        if exists:
            return Outcome.REJECTED, "a record with {key} already exists (id {id})"
        return Outcome.CREATED, None
    if not exists:
        if mode is WriteMode.UPSERT:
            return Outcome.CREATED, None
        return Outcome.REJECTED, "no record matches {key}"
    if mode is WriteMode.DELETE:
        return Outcome.DELETED, None
    return (Outcome.UPDATED if changed else Outcome.UNCHANGED), None


def _changed(batch: pa.RecordBatch, found: pa.RecordBatch, fields: list[str]) -> list[bool]:
    """Per row: does any of ``fields`` differ between ``batch`` and the aligned ``found``?"""
    changed = pa.array([False] * batch.num_rows)
    for name in fields:
        if name not in found.schema.names:
            return [True] * batch.num_rows
        ours = batch.column(name)
        try:
            theirs = found.column(name).cast(ours.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return [True] * batch.num_rows
        same = pc.or_kleene(
            pc.fill_null(pc.equal(ours, theirs), False),
            pc.and_(pc.is_null(ours), pc.is_null(theirs)),
        )
        changed = pc.or_(changed, pc.invert(same))
    return [bool(v) for v in changed.to_pylist()]
