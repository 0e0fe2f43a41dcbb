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


class Planner:
    """Decides each record's outcome without writing: preview and dry run.

    It remembers what it planned earlier in the run (by match key), so a record whose key an
    earlier record of the run would have created, changed or deleted is judged against that
    state, as the real run would judge it. That memory holds one entry per key written.
    """

    def __init__(self, connector: Connector, *, target_exists: bool = True) -> None:
        self.connector = connector
        self.target_exists = target_exists
        #: key -> (values written, target id); None: planned as deleted
        self._planned: dict[str, tuple[tuple[object, ...], str | None] | None] = {}

    def plan(self, request: WriteRequest) -> WriteResult:
        """The outcome each record of ``request`` would get."""
        batch, mode, keys = request.batch, request.mode, list(request.match_keys)
        n = batch.num_rows
        if not keys:
            if mode is WriteMode.INSERT:
                return WriteResult.uniform(n, Outcome.CREATED)
            raise UnsupportedOperationError(f"mode {mode.value} needs match keys")
        if self.target_exists and not self.connector.capabilities().lookup:
            if mode is WriteMode.INSERT:
                return WriteResult.uniform(n, Outcome.CREATED)
            raise UnsupportedOperationError(
                f"a dry run of {mode.value} needs to look records up, which "
                f"{self.connector.type_name} connections cannot do",
                context=ErrorContext(connection=self.connector.name, object=request.object),
            )
        values = [c for c in batch.schema.names if c not in keys and c != ROW_COLUMN]
        if request.update_fields is not None:  # existing records only get these fields
            values = [c for c in values if c in request.update_fields]
        stored = self._stored(request, keys, values)
        wanted = key_strings(batch, keys).to_pylist()
        rows = list(zip(*(batch.column(v).to_pylist() for v in values), strict=True))
        if not values:
            rows = [()] * n
        outcomes: list[str] = []
        target_ids: list[str | None] = []
        reasons: list[str | None] = []
        for i, key in enumerate(wanted):
            if key is not None and key in self._planned:
                earlier = self._planned[key]
                exists, matches = earlier is not None, int(earlier is not None)
                changed = earlier is None or earlier[0] != rows[i]
                target_id = earlier[1] if earlier is not None else None
            else:
                exists, matches, changed, target_id = stored.state(i, key)
            outcome, reason = _decide(mode, exists, matches, changed)
            if reason:
                reason = reason.format(key=_describe_key(batch, keys, i), id=target_id)
            if key is not None and outcome in (Outcome.CREATED, Outcome.UPDATED):
                self._planned[key] = (rows[i], target_id)
            elif key is not None and outcome is Outcome.DELETED:
                self._planned[key] = None
            outcomes.append(outcome.value)
            target_ids.append(target_id if outcome is not Outcome.CREATED else None)
            reasons.append(reason)
        return WriteResult.build(outcomes, target_ids, reasons)

    def _stored(self, request: WriteRequest, keys: list[str], values: list[str]) -> _Stored:
        """What the target holds now for the batch's keys (one look-up)."""
        batch = request.batch
        if not self.target_exists:
            return _Stored.empty(batch.num_rows)
        schema = self.connector.describe(request.object)
        found = self.connector.lookup(request.object, keys, batch.select(keys), values)
        there = key_strings(found, keys)
        position = pc.index_in(key_strings(batch, keys), value_set=there)
        counts = pc.value_counts(there).to_pylist() if len(there) else []
        aligned = found.take(pc.fill_null(position, 0)) if len(found) else None
        id_column = schema.id_field if schema.id_field in found.schema.names else None
        ids = None
        if aligned is not None:
            ids = aligned.column(id_column) if id_column else batch.column(keys[0])
        return _Stored(
            exists=pc.is_valid(position).to_pylist(),
            matches={c["values"]: c["counts"] for c in counts},
            changed=(
                _changed(batch, aligned, values) if aligned is not None else [True] * batch.num_rows
            ),
            ids=[None if v is None else str(v) for v in ids.to_pylist()] if ids else None,
        )


class _Stored:
    """The target's current state for each record of one batch."""

    def __init__(
        self,
        exists: list[bool],
        matches: dict[str, int],
        changed: list[bool],
        ids: list[str | None] | None,
    ) -> None:
        self.exists, self.matches, self.changed, self.ids = exists, matches, changed, ids

    @classmethod
    def empty(cls, n: int) -> _Stored:
        return cls([False] * n, {}, [True] * n, None)

    def state(self, i: int, key: str | None) -> tuple[bool, int, bool, str | None]:
        exists = self.exists[i]
        target_id = self.ids[i] if exists and self.ids is not None else None
        return exists, self.matches.get(key or "", 0), self.changed[i], target_id


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
