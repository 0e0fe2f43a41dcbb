"""Carrying out a plan's operations on a table: creates, updates and deletes in one transaction.

The engine planned every operation (``core/plan.py``); this module only executes them, with a
few bulk statements per kind through the dialect's :class:`BulkWriter`:

* **creates** are inserted unless a row with their match keys exists by now (someone else made
  it since the plan, or — repeated, ``attempt > 1`` — our own earlier attempt did: then the
  stored row holds our values and the create is *confirmed*, not rejected);
* **updates** set, per group of rows that change the same fields, exactly those fields of the
  row their id finds (a row gone meanwhile: rejected ``not_found``);
* **deletes** remove the row their id finds (gone already: deleted when repeated, else
  rejected ``not_found``).

When a statement fails because of a row (NOT NULL, CHECK, foreign key, a value too long),
the group is retried half by half under savepoints until the bad rows stand alone: they are
rejected with the database's message and every other row goes in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import SecretStr

from crmbridge.connectors.base import (
    ACTION_COLUMN,
    ID_COLUMN,
    OP_KEY_COLUMN,
    ROW_COLUMN,
    ApplyRequest,
)
from crmbridge.connectors.sql.applied import Markers, marker_keys, needs_markers
from crmbridge.connectors.sql.failures import db_message, is_row_error, translate
from crmbridge.connectors.sql.matching import decode_ids, encode_ids, locator
from crmbridge.connectors.sql.reading import fetch_by_keys
from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.core import identity
from crmbridge.core.outcomes import Outcome, RejectCode, WriteResult
from crmbridge.errors import ConfigError, ErrorContext, UnsupportedOperationError

#: position of each row in the operations of one call
POS = "_crmbridge_pos"
#: prefix of the new values in the rows handed to ``BulkWriter.update``
VALUE_PREFIX = "_v_"

T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """What one apply call writes to."""

    info: TableInfo
    #: the fields the operations carry (without the engine's columns)
    columns: tuple[str, ...]
    #: the match keys (a create conflicts on them)
    keys: tuple[str, ...]
    #: where creates that nothing else identifies are recorded (see ``applied.py``)
    markers: Markers | None = None

    @property
    def locator(self) -> tuple[str, ...]:
        return locator(self.info, self.keys)

    @property
    def generated_ids(self) -> bool:
        """The primary key is made by the database (not among the written columns)."""
        pk = self.info.primary_key
        return bool(pk) and not set(pk) <= set(self.columns)


class BulkWriter(Protocol):
    """A dialect's bulk statements. Each raises the driver's error when a row breaks it (the
    caller isolates the row); each runs inside the caller's transaction."""

    def insert(
        self, conn: sa.Connection, target: Target, rows: pa.Table, *, guard: bool
    ) -> tuple[pa.Array, pa.Array | None]:
        """INSERT ``rows`` (the written columns). ``guard``: skip rows whose match keys are
        stored already. Returns per row whether it was inserted, and the database-made ids of
        the inserted rows when the dialect returns them (else None)."""

    def update(
        self, conn: sa.Connection, target: Target, rows: pa.Table, fields: Sequence[str]
    ) -> pa.Array:
        """Set ``fields`` (values in columns ``VALUE_PREFIX + field``) of the row each
        locator (the first columns of ``rows``) finds; per row whether one was found."""

    def delete(self, conn: sa.Connection, target: Target, rows: pa.Table) -> pa.Array:
        """Delete the row each locator finds; per row whether one was found."""


def apply_ops(
    engine: sa.Engine,
    bulk: BulkWriter,
    info: TableInfo,
    request: ApplyRequest,
    *,
    context: ErrorContext,
    secrets: Sequence[str | SecretStr],
    markers: Markers | None = None,
) -> WriteResult:
    """Carry out ``request.ops`` in one transaction; one outcome per operation, in order.
    ``markers``: the marker table for creates nothing else identifies (``applied.py``)."""
    ops = request.ops
    n = ops.num_rows
    if n == 0:
        return WriteResult.empty()
    target = _target(info, request, context)
    actions = ops.column(ACTION_COLUMN)
    if (
        markers is not None
        and OP_KEY_COLUMN in ops.schema.names
        and needs_markers(info, target.columns, target.keys)
        and pc.any(pc.equal(actions, "create")).as_py()
        and markers.ready()
    ):
        target = replace(target, markers=markers)
    result = _Result(n)
    try:
        with engine.begin() as conn:
            for action, step in (("delete", _delete), ("update", _update), ("create", _create)):
                rows = pc.indices_nonzero(pc.equal(actions, action))
                if len(rows):
                    step(conn, bulk, target, request, rows, result, secrets)
                if len(rows) == n:
                    break  # every operation was of this kind
    except sa.exc.SQLAlchemyError as err:
        raise translate(
            err, f"writing to table {info.name!r}", context=context, secrets=secrets
        ) from None
    return result.build()


class _Result:
    """Outcomes of one call, filled in position by position."""

    def __init__(self, n: int) -> None:
        self.outcome: list[str | None] = [None] * n
        self.ids: list[str | None] = [None] * n
        self.reason: list[str | None] = [None] * n
        self.code: list[str | None] = [None] * n
        #: every operation created its record: their ids (see :meth:`created`)
        self._whole: pa.Array | None = None

    def set(
        self,
        positions: Sequence[int],
        outcome: Outcome,
        ids: Sequence[str | None] | None = None,
        reason: str | Sequence[str | None] | None = None,
        code: RejectCode | None = None,
    ) -> None:
        word, code_word = outcome.value, code.value if code else None
        n = len(self.outcome)
        reasons = [reason] * len(positions) if isinstance(reason, str | None) else list(reason)
        if len(positions) == n and list(positions) == list(range(n)):  # the whole call at once
            self.outcome = [word] * n
            self.ids = list(ids) if ids is not None else self.ids
            self.reason = reasons
            self.code = [code_word] * n
            return
        for j, i in enumerate(positions):
            self.outcome[i] = word
            self.ids[i] = ids[j] if ids is not None else self.ids[i]
            self.reason[i] = reasons[j]
            self.code[i] = code_word

    def created(self, ids: pa.Array) -> None:
        """Every operation of the call created its record (``ids``: theirs, in order)."""
        self._whole = ids

    def build(self) -> WriteResult:
        if self._whole is not None:
            return WriteResult.uniform(len(self.outcome), Outcome.CREATED, self._whole)
        return WriteResult.build(
            [o or Outcome.REJECTED.value for o in self.outcome], self.ids, self.reason, self.code
        )


def _target(info: TableInfo, request: ApplyRequest, context: ErrorContext) -> Target:
    if info.is_view:
        raise UnsupportedOperationError(
            f"{info.name!r} is a view; views are read-only", context=context
        )
    internal = {ROW_COLUMN, ACTION_COLUMN, ID_COLUMN, "_crmbridge_op_key"}
    columns = tuple(n for n in request.ops.schema.names if n not in internal)
    creates = pc.any(pc.equal(request.ops.column(ACTION_COLUMN), "create")).as_py()
    for name in columns:
        field = info.schema.field(name, context=context)
        if field.read_only and (creates or name not in request.keys):
            raise ConfigError(
                f"field {name!r} is read-only (generated by the database)", context=context
            )
    return Target(info, columns, tuple(request.keys))


def _typed(target: Target, ops: pa.Table | pa.RecordBatch, names: Sequence[str]) -> pa.Table:
    """Columns ``names`` of ``ops`` cast to the table's types."""
    arrays = []
    for name in names:
        column = ops.column(name)
        wanted = target.info.schema.field(name).arrow_type
        arrays.append(column if column.type == wanted else column.cast(wanted))
    return pa.Table.from_arrays(arrays, names=list(names))


# -- creates ------------------------------------------------------------------------------
def _create(
    conn: sa.Connection,
    bulk: BulkWriter,
    target: Target,
    request: ApplyRequest,
    positions: pa.Array,
    result: _Result,
    secrets: Sequence[str | SecretStr],
) -> None:
    markers = target.markers
    op_keys: list[str] = []
    if markers is not None:
        op_keys = marker_keys(
            request.namespace,
            request.object,
            request.ops.column(OP_KEY_COLUMN).take(positions).to_pylist(),
        )
        if request.attempt > 1:  # applied by an earlier attempt whose answer was lost
            positions, op_keys = _confirm_marked(conn, markers, positions, op_keys, result)
            if not len(positions):
                return
    every = len(positions) == request.ops.num_rows  # all the call's operations, in order
    rows = _typed(target, request.ops if every else request.ops.take(positions), target.columns)
    guard = bool(target.keys)
    done, refused = _isolated(
        conn, lambda part: bulk.insert(conn, target, part, guard=guard), rows, secrets
    )
    if every and not refused and len(done) == 1 and markers is None:
        inserted, made_ids = done[0][1]
        if pc.all(inserted).as_py():  # the usual call: every row went in at once
            result.created(_created_id_array(conn, target, rows, made_ids))
            return
    where = positions.to_pylist()
    for part, (inserted, made_ids) in done:
        at = [where[i] for i in part.indices]
        ids = _created_ids(conn, target, part.rows, made_ids)
        new = pc.indices_nonzero(inserted).to_pylist()
        result.set([at[i] for i in new], Outcome.CREATED, [ids[i] for i in new])
        if markers is not None:
            keys_made = [op_keys[part.indices[i]] for i in new]
            markers.record(conn, request.object, keys_made, [ids[i] for i in new])
        clashed = pc.indices_nonzero(pc.invert(inserted)).to_pylist()
        if not clashed:
            continue
        same = _holds(conn, target, part.rows.take(clashed))
        keys = ", ".join(target.keys)
        for j, i in enumerate(clashed):
            if request.attempt > 1 and same[j]:  # our own earlier attempt made it
                result.set([at[i]], Outcome.CREATED, [ids[i]], "already created (confirmed)")
            else:
                result.set(
                    [at[i]],
                    Outcome.REJECTED,
                    reason=f"a record with the same {keys} exists (created since the plan)",
                    code=RejectCode.DUPLICATE_KEY,
                )
    for index, message in refused:
        result.set([where[index]], Outcome.REJECTED, reason=message, code=RejectCode.INVALID_VALUE)


def _confirm_marked(
    conn: sa.Connection,
    markers: Markers,
    positions: pa.Array,
    op_keys: list[str],
    result: _Result,
) -> tuple[pa.Array, list[str]]:
    """Confirm the creates the marker table knows; the positions and keys left to insert."""
    applied = markers.found(conn, op_keys)
    if not applied:
        return positions, op_keys
    where = positions.to_pylist()
    done = [i for i, k in enumerate(op_keys) if k in applied]
    result.set(
        [where[i] for i in done],
        Outcome.CREATED,
        [applied[op_keys[i]] for i in done],
        "already created (confirmed)",
    )
    left = [i for i, k in enumerate(op_keys) if k not in applied]
    return positions.take(pa.array(left, pa.int64())), [op_keys[i] for i in left]


def _created_ids(
    conn: sa.Connection, target: Target, rows: pa.Table, made: pa.Array | None
) -> list[str | None]:
    """The id of each created row: its locator's values, or the database-made key."""
    return _strings(_created_id_array(conn, target, rows, made))


def _created_id_array(
    conn: sa.Connection, target: Target, rows: pa.Table, made: pa.Array | None
) -> pa.Array:
    found_by = target.locator
    if not found_by or (target.generated_ids and made is None and not target.keys):
        return pa.nulls(rows.num_rows, pa.string())
    if not target.generated_ids:
        return _text(encode_ids(rows, found_by))
    if made is not None:
        return _text(made)
    stored = _aligned(conn, target, rows, list(found_by))
    return _text(encode_ids(stored, found_by))


def _holds(conn: sa.Connection, target: Target, rows: pa.Table) -> list[bool]:
    """Per row: does the stored row with its keys hold exactly its values?"""
    if not target.keys:
        return [False] * rows.num_rows
    stored = _aligned(conn, target, rows, list(target.columns))
    same = pc.is_valid(stored.column(target.keys[0]))
    for name in target.columns:
        ours, theirs = rows.column(name), stored.column(name)
        equal = pc.or_(
            pc.fill_null(pc.equal(ours, theirs), False),
            pc.and_(pc.is_null(ours), pc.is_null(theirs)),
        )
        same = pc.and_(same, equal)
    return [bool(v) for v in same.to_pylist()]


def _aligned(conn: sa.Connection, target: Target, rows: pa.Table, columns: list[str]) -> pa.Table:
    """The stored row with each row's match keys (exactly equal), aligned with ``rows``."""
    keys = list(target.keys)
    stored = fetch_by_keys(conn, target.info, keys, rows.select(keys), columns)
    at = identity.positions(identity.encode(rows, keys), identity.encode(stored, keys))
    return stored.take(at)


# -- updates and deletes ------------------------------------------------------------------
def _update(
    conn: sa.Connection,
    bulk: BulkWriter,
    target: Target,
    request: ApplyRequest,
    positions: pa.Array,
    result: _Result,
    secrets: Sequence[str | SecretStr],
) -> None:
    ops = request.ops.take(positions)
    fields = [c for c in target.columns if c not in target.keys]
    unset = {f: request.unset[f].take(positions) for f in fields if f in request.unset}
    where = positions.to_pylist()
    for written, members in _patterns(fields, unset, ops.num_rows).items():
        part = ops.take(pa.array(members, pa.int64()))
        located = decode_ids(part.column(ID_COLUMN), target.info, target.locator)
        values = _typed(target, part, written)
        rows = pa.Table.from_arrays(
            [*located.columns, *values.columns],
            names=[*target.locator, *(VALUE_PREFIX + w for w in written)],
        )
        done, refused = _isolated(
            conn, partial(_update_rows, bulk, conn, target, written), rows, secrets
        )
        ids = part.column(ID_COLUMN).to_pylist()
        for piece, found in done:
            hit = found.to_pylist()
            updated = [i for j, i in enumerate(piece.indices) if hit[j]]
            gone = [i for j, i in enumerate(piece.indices) if not hit[j]]
            result.set(
                [where[members[i]] for i in updated], Outcome.UPDATED, [ids[i] for i in updated]
            )
            result.set(
                [where[members[i]] for i in gone],
                Outcome.REJECTED,
                reason="the record is gone (deleted since the plan)",
                code=RejectCode.NOT_FOUND,
            )
        for index, message in refused:
            result.set(
                [where[members[index]]],
                Outcome.REJECTED,
                reason=message,
                code=RejectCode.INVALID_VALUE,
            )


def _update_rows(
    bulk: BulkWriter, conn: sa.Connection, target: Target, fields: Sequence[str], rows: pa.Table
) -> pa.Array:
    return bulk.update(conn, target, rows, fields)


def _patterns(
    fields: Sequence[str], unset: dict[str, pa.Array], n: int
) -> dict[tuple[str, ...], list[int]]:
    """Rows grouped by the fields they write (one UPDATE statement per group)."""
    if not n:
        return {}
    if not unset:
        return {tuple(fields): list(range(n))}
    left = {f: unset[f].to_pylist() if f in unset else [False] * n for f in fields}
    groups: dict[tuple[str, ...], list[int]] = {}
    for i in range(n):
        groups.setdefault(tuple(f for f in fields if not left[f][i]), []).append(i)
    return groups


def _delete(
    conn: sa.Connection,
    bulk: BulkWriter,
    target: Target,
    request: ApplyRequest,
    positions: pa.Array,
    result: _Result,
    secrets: Sequence[str | SecretStr],
) -> None:
    ops = request.ops.take(positions)
    rows = decode_ids(ops.column(ID_COLUMN), target.info, target.locator)
    done, refused = _isolated(conn, lambda p: bulk.delete(conn, target, p), rows, secrets)
    where = positions.to_pylist()
    ids = ops.column(ID_COLUMN).to_pylist()
    for piece, found in done:
        for j, i in enumerate(piece.indices):
            if found[j].as_py() or request.attempt > 1:  # gone: our earlier attempt did it
                result.set([where[i]], Outcome.DELETED, [ids[i]])
            else:
                result.set(
                    [where[i]],
                    Outcome.REJECTED,
                    reason="the record is gone (deleted since the plan)",
                    code=RejectCode.NOT_FOUND,
                )
    for index, message in refused:
        result.set([where[index]], Outcome.REJECTED, reason=message, code=RejectCode.REFUSED)


# -- isolating rows that break a statement ----------------------------------------------
@dataclass
class _Part:
    rows: pa.Table
    indices: list[int]  # positions of its rows in the whole group


def _isolated(
    conn: sa.Connection,
    action: Callable[[pa.Table], T],
    rows: pa.Table,
    secrets: Sequence[str | SecretStr],
) -> tuple[list[tuple[_Part, T]], list[tuple[int, str]]]:
    """``action(rows)`` under a savepoint; when a row breaks it, each half again, until the
    bad rows stand alone: (part, answer) for the parts that went in, (position, the
    database's message) for each bad row."""
    done: list[tuple[_Part, T]] = []
    refused: list[tuple[int, str]] = []

    def run(part: _Part) -> None:
        try:
            with conn.begin_nested():
                done.append((part, action(part.rows)))
                return
        except sa.exc.DBAPIError as err:
            if not is_row_error(err):
                raise
            if part.rows.num_rows == 1:
                refused.append((part.indices[0], db_message(err, secrets)))
                return
        half = part.rows.num_rows // 2
        run(_Part(part.rows.slice(0, half), part.indices[:half]))
        run(_Part(part.rows.slice(half), part.indices[half:]))

    if rows.num_rows:
        run(_Part(rows, list(range(rows.num_rows))))
    return done, refused


def _strings(values: pa.Array) -> list[str | None]:
    return [None if v is None else str(v) for v in values.to_pylist()]


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values if values.type == pa.string() else values.cast(pa.string())


__all__ = ["POS", "VALUE_PREFIX", "BulkWriter", "Target", "apply_ops"]
