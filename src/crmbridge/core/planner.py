"""The planner: one operation per record, decided from what the target holds (see
:mod:`crmbridge.core.plan` for what a plan is and how records are compared)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.core import identity
from crmbridge.core.outcomes import RejectCode, WriteMode
from crmbridge.core.plan import (
    _DELETED,
    _FROM_ROW,
    _HANDLE,
    _IDENTITY,
    ACTION_COLUMN,
    CHANGED_COLUMN,
    CODE_COLUMN,
    CREATED_BY_COLUMN,
    ID_COLUMN,
    OP_KEY_COLUMN,
    REASON_COLUMN,
    SET_PREFIX,
    SOURCE_KEY_COLUMN,
    VERSION_COLUMN,
    WAVE_COLUMN,
    WRITES,
    Action,
    OnMultiple,
    Plan,
    PlanSpec,
    changed_text,
    plan_schema,
)
from crmbridge.core.schema import ROW_COLUMN


class Planner:
    """Plans batch after batch for one run (see the module docstring)."""

    def __init__(self, spec: PlanSpec, *, remember: bool) -> None:
        self.spec = spec
        self.remember = remember
        #: records changed by earlier batches' plans (``remember``), deleted ones flagged
        self._virtual: pa.Table | None = None

    def plan(
        self,
        proposed: pa.RecordBatch,
        *,
        stored: pa.RecordBatch | None = None,
        candidates: pa.RecordBatch | None = None,
        skip: pa.Array | None = None,
    ) -> Plan:
        """The plan for ``proposed`` (the written fields, ROW_COLUMN, SOURCE_KEY_COLUMN).

        ``stored``: the same records in the target's stored form (default: ``proposed``).
        ``candidates``: the target's answer to ``match`` for the batch's keys (required when
        the spec has keys). ``skip``: per record a reason to leave it out, or null."""
        stored = proposed if stored is None else stored
        wanted = self._identity(stored)
        state = self._state(candidates, wanted)
        todo = pa.repeat(True, proposed.num_rows) if skip is None else pc.is_null(skip)
        parts: list[_Decided] = []
        remember = self.remember and bool(self.spec.keys)  # without keys no record meets another
        split = identity.waves(wanted)
        for wave, rows in enumerate(split):
            rows = rows.filter(todo.take(rows))
            if len(rows) == 0:
                continue
            decided = self._decide(
                _take(proposed, rows), _take(stored, rows), _take(wanted, rows), state, wave
            )
            later = wave < len(split) - 1  # a later wave sees what this one does
            if later or remember:
                change = decided.changes()
                state = _after(state, change) if later else state
                if remember:  # noted for the batches after (the state above is made already)
                    self._virtual = _fold(self._virtual, change)
            parts.append(decided)
        if skip is not None and not pc.all(todo).as_py():
            rows = pc.indices_nonzero(pc.invert(todo))
            parts.append(self._skipped(proposed.take(rows), skip.take(rows)))
        return replace(_assemble(proposed, parts, self.spec.fields), touches=wanted)

    def _identity(self, batch: pa.RecordBatch | pa.Table) -> pa.Array:
        if not self.spec.keys:
            return pa.nulls(batch.num_rows, pa.string())
        return identity.encode(batch, self.spec.keys, self.spec.rules)

    # -- what the target holds -----------------------------------------------------------
    def _state(self, candidates: pa.RecordBatch | None, wanted: pa.Array) -> pa.Table:
        """The candidate records as the target holds them, with what this run planned."""
        spec = self.spec
        names = [*spec.keys, *spec.value_fields]
        if candidates is None or not spec.keys or candidates.num_rows == 0:
            table = _empty_state(names)
        else:
            cand = pa.Table.from_batches([candidates])
            ids = _text(cand.column(ID_COLUMN))
            table = pa.table(
                {
                    _IDENTITY: self._identity(cand),
                    _HANDLE: ids,
                    ID_COLUMN: ids,
                    VERSION_COLUMN: _text(cand.column(VERSION_COLUMN)),
                    CREATED_BY_COLUMN: pa.nulls(cand.num_rows, pa.string()),
                    _FROM_ROW: pa.nulls(cand.num_rows, pa.int64()),
                    **{n: cand.column(n) for n in names if n in cand.column_names},
                }
            )
            table = table.filter(pc.is_valid(table.column(_IDENTITY)))
        virtual = _latest(self._virtual, table.column(_HANDLE), wanted)
        if virtual is None or virtual.num_rows == 0:
            return table
        replaced = pc.is_in(table.column(_HANDLE), value_set=virtual.column(_HANDLE))
        table = table.filter(pc.invert(pc.fill_null(replaced, False)))
        relevant = virtual.filter(
            pc.and_(
                pc.fill_null(pc.is_in(virtual.column(_IDENTITY), value_set=wanted), False),
                pc.invert(virtual.column(_DELETED)),
            )
        )
        return _concat(table, relevant.drop_columns([_DELETED]))

    # -- one wave -------------------------------------------------------------------------
    def _decide(
        self,
        proposed: pa.RecordBatch,
        stored: pa.RecordBatch,
        wanted: pa.Array,
        state: pa.Table,
        wave: int,
    ) -> _Decided:
        spec = self.spec
        n = proposed.num_rows
        there = _flat(state.column(_IDENTITY))
        count = identity.match_counts(wanted, there)
        first = identity.positions(wanted, there)
        none = pa.scalar(None, pa.string())
        if spec.mode is WriteMode.INSERT:
            duplicate = pc.greater(count, 0)
            action = pc.if_else(duplicate, Action.REJECT.value, Action.CREATE.value)
            code = pc.if_else(duplicate, RejectCode.DUPLICATE_KEY.value, none)
            at = pc.if_else(duplicate, first, pa.scalar(None, first.type))
        else:
            found = Action.DELETE if spec.mode is WriteMode.DELETE else Action.UPDATE
            absent = Action.CREATE if spec.mode is WriteMode.UPSERT else Action.REJECT
            missing = pc.is_null(wanted)
            zero = pc.equal(count, 0)
            many = pc.greater(count, 1)
            ambiguous = pc.and_(many, pa.scalar(spec.on_multiple is OnMultiple.REJECT))
            action = pc.case_when(
                pc.make_struct(missing, zero, ambiguous),
                Action.REJECT.value,
                absent.value,
                Action.REJECT.value,
                found.value,
            )
            code = pc.case_when(
                pc.make_struct(
                    missing,
                    pc.and_(zero, pa.scalar(absent is Action.REJECT)),
                    ambiguous,
                ),
                RejectCode.MISSING_KEY.value,
                RejectCode.NOT_FOUND.value,
                RejectCode.AMBIGUOUS_MATCH.value,
                none,
            )
            matched = pc.and_(pc.invert(pc.or_(zero, ambiguous)), pc.invert(missing))
            at = pc.if_else(matched, first, pa.scalar(None, first.type))
        rows = pa.array(range(n), pa.int64())
        if spec.on_multiple is OnMultiple.ALL and spec.mode is not WriteMode.INSERT:
            rows, at, action, code = _expand_all(wanted, there, count, rows, at, action, code)
        reasons = self._reasons(stored, wanted, state, count, rows, at, action, code)
        return self._build(proposed, stored, state, wave, rows, at, action, code, reasons)

    def _build(
        self,
        proposed: pa.RecordBatch,
        stored: pa.RecordBatch,
        state: pa.Table,
        wave: int,
        rows: pa.Array,
        at: pa.Array,
        action: pa.Array,
        code: pa.Array,
        reasons: pa.Array,
    ) -> _Decided:
        spec = self.spec
        values = _take(proposed, rows)
        ours_stored = _take(stored, rows)
        before = _aligned(state, at)
        is_update = pc.equal(action, Action.UPDATE.value)
        is_create = pc.equal(action, Action.CREATE.value)
        sets: dict[str, pa.Array] = {}
        changed = pa.repeat(False, len(rows))
        for name in spec.fields:
            ours = ours_stored.column(name)
            if name in spec.value_fields:
                differs = (
                    _differs(ours, before.column(name))
                    if name in before.column_names
                    else (pa.repeat(True, len(rows)))
                )
                if name in spec.keep_when_null:
                    differs = pc.and_(differs, pc.is_valid(ours))
                update_sets = pc.and_(is_update, differs)
            else:
                update_sets = pa.repeat(False, len(rows))
            sets[name] = pc.or_(is_create, update_sets)
            changed = pc.or_(changed, update_sets)
        action = pc.if_else(pc.and_(is_update, pc.invert(changed)), Action.UNCHANGED.value, action)
        on_record = pc.is_valid(at)
        handle = before.column(_HANDLE)
        record_id = pc.if_else(on_record, before.column(ID_COLUMN), pa.scalar(None, pa.string()))
        source_keys = _text(values.column(SOURCE_KEY_COLUMN))
        op_keys = spec.op_keys(source_keys)
        if spec.client_ids and spec.id_field in spec.fields:  # records that bring their id
            op_keys = pc.coalesce(_text(values.column(spec.id_field)), op_keys)
        if len(rows) != proposed.num_rows or _repeats(rows):
            # one record acting on several targets (on_multiple: all): a key per target
            op_keys = pc.binary_join_element_wise(op_keys, pc.fill_null(handle, ""), "\x1f")
        ops = pa.table(
            {
                ROW_COLUMN: values.column(ROW_COLUMN),
                SOURCE_KEY_COLUMN: source_keys,
                ACTION_COLUMN: action,
                ID_COLUMN: record_id,
                OP_KEY_COLUMN: op_keys,
                VERSION_COLUMN: before.column(VERSION_COLUMN),
                CREATED_BY_COLUMN: before.column(CREATED_BY_COLUMN),
                WAVE_COLUMN: pa.repeat(wave, len(rows)).cast(pa.int32()),
                CODE_COLUMN: code,
                REASON_COLUMN: reasons,
                CHANGED_COLUMN: changed_text(sets, spec.fields, is_update),
                **{SET_PREFIX + name: sets[name] for name in spec.fields},
                **{name: values.column(name) for name in spec.fields},
            }
        )
        shown = [n for n in spec.fields if n in before.column_names]
        return _Decided(ops, before.select(shown), partial(self._changes, ops, ours_stored, before))

    def _reasons(
        self,
        stored: pa.RecordBatch,
        wanted: pa.Array,
        state: pa.Table,
        count: pa.Array,
        rows: pa.Array,
        at: pa.Array,
        action: pa.Array,
        code: pa.Array,
    ) -> pa.Array:
        """The human reason of each rejection (Python only for the rejected rows)."""
        spec = self.spec
        rejected = pc.indices_nonzero(pc.equal(action, Action.REJECT.value)).to_pylist()
        if not rejected:
            return pa.nulls(len(action), pa.string())
        reasons: list[str | None] = [None] * len(action)
        codes, positions, records = code.to_pylist(), at.to_pylist(), rows.to_pylist()
        ids = state.column(ID_COLUMN).to_pylist()
        from_rows = state.column(_FROM_ROW).to_pylist()
        for i in rejected:
            r = records[i]
            key = identity.describe_key(stored, spec.keys, r) if spec.keys else ""
            match RejectCode(codes[i]):
                case RejectCode.MISSING_KEY:
                    reasons[i] = f"match key {_missing_part(stored, spec.keys, r)!r} has no value"
                case RejectCode.DUPLICATE_KEY:
                    at_i = positions[i]
                    if from_rows[at_i] is not None:
                        reasons[i] = (
                            f"record {from_rows[at_i]} of this run creates the {spec.object} "
                            f"record with {key}"
                        )
                    else:
                        where = f" (id {ids[at_i]})" if ids[at_i] is not None else ""
                        reasons[i] = f"a {spec.object} record with {key} already exists{where}"
                case RejectCode.NOT_FOUND:
                    what = " to delete" if spec.mode is WriteMode.DELETE else ""
                    reasons[i] = f"no {spec.object} record matches {key}{what}"
                case RejectCode.AMBIGUOUS_MATCH:
                    same = pc.indices_nonzero(
                        pc.fill_null(pc.equal(state.column(_IDENTITY), wanted[r]), False)
                    ).to_pylist()
                    listed = ", ".join(str(ids[j]) for j in same if ids[j] is not None)
                    suffix = f" (ids {listed})" if listed else ""
                    n = count[r].as_py()
                    reasons[i] = f"{n} {spec.object} records match {key}{suffix}"
                case _:
                    reasons[i] = codes[i]
        return pa.array(reasons, pa.string())

    def _changes(self, ops: pa.Table, stored: pa.RecordBatch, before: pa.Table) -> pa.Table:
        """State rows of the records the operations create, change or delete (stored form)."""
        spec = self.spec
        action = ops.column(ACTION_COLUMN)
        is_create = pc.equal(action, Action.CREATE.value)
        acts = pc.is_in(action, value_set=pa.array([a.value for a in WRITES]))
        op_key = ops.column(OP_KEY_COLUMN)
        created_handle = op_key if spec.client_ids else pc.binary_join_element_wise("+", op_key, "")
        handle = pc.if_else(is_create, created_handle, before.column(_HANDLE))
        record_id = pc.if_else(
            is_create,
            op_key if spec.client_ids else pa.scalar(None, pa.string()),
            before.column(ID_COLUMN),
        )
        created_by = pc.if_else(
            is_create,
            pa.scalar(None, pa.string()) if spec.client_ids else op_key,
            before.column(CREATED_BY_COLUMN),
        )
        columns: dict[str, pa.Array | pa.ChunkedArray] = {
            _IDENTITY: self._identity(stored) if spec.keys else pa.nulls(ops.num_rows, pa.string()),
            _HANDLE: handle,
            ID_COLUMN: record_id,
            VERSION_COLUMN: pa.nulls(ops.num_rows, pa.string()),
            CREATED_BY_COLUMN: created_by,
            _FROM_ROW: pc.if_else(is_create, ops.column(ROW_COLUMN), before.column(_FROM_ROW)),
        }
        for name in [*spec.keys, *spec.value_fields]:
            ours = stored.column(name)
            if name in before.column_names:
                was = _cast(before.column(name), ours.type)
                written = ops.column(SET_PREFIX + name) if name in spec.fields else None
                keep = pc.invert(pc.or_(is_create, written)) if written is not None else None
                columns[name] = pc.if_else(keep, was, ours) if keep is not None else ours
            else:
                columns[name] = ours
        columns[_DELETED] = pc.equal(action, Action.DELETE.value)
        return pa.table(columns).filter(acts)

    def _skipped(self, proposed: pa.RecordBatch, reasons: pa.Array) -> _Decided:
        n = proposed.num_rows
        nulls = pa.nulls(n, pa.string())
        ops = pa.table(
            {
                ROW_COLUMN: proposed.column(ROW_COLUMN),
                SOURCE_KEY_COLUMN: _text(proposed.column(SOURCE_KEY_COLUMN)),
                ACTION_COLUMN: pa.repeat(Action.SKIP.value, n).cast(pa.string()),
                ID_COLUMN: nulls,
                OP_KEY_COLUMN: nulls,
                VERSION_COLUMN: nulls,
                CREATED_BY_COLUMN: nulls,
                WAVE_COLUMN: pa.repeat(0, n).cast(pa.int32()),
                CODE_COLUMN: pa.repeat(RejectCode.SKIPPED.value, n).cast(pa.string()),
                REASON_COLUMN: _text(reasons),
                CHANGED_COLUMN: nulls,
                **{SET_PREFIX + name: pa.repeat(False, n) for name in self.spec.fields},
                **{name: proposed.column(name) for name in self.spec.fields},
            }
        )
        return _Decided(ops, pa.table({"_": pa.nulls(n)}).drop_columns(["_"]), _no_changes)


@dataclass
class _Decided:
    ops: pa.Table
    before: pa.Table  # current values of the matched records, aligned with ops
    #: the state rows after the operations that write (with _DELETED), made when needed
    changes: Callable[[], pa.Table]


def _no_changes() -> pa.Table:
    return pa.table({})


def _after(state: pa.Table, changes: pa.Table) -> pa.Table:
    """``state`` after the ``changes`` of operations: changed records replaced, deleted ones
    gone."""
    if changes.num_rows == 0:
        return state
    gone = pc.is_in(state.column(_HANDLE), value_set=changes.column(_HANDLE))
    kept = state.filter(pc.invert(pc.fill_null(gone, False)))
    alive = changes.filter(pc.invert(changes.column(_DELETED))).drop_columns([_DELETED])
    return _concat(kept, alive)


def _fold(virtual: pa.Table | None, changes: pa.Table) -> pa.Table | None:
    """Remember ``changes``: appended to the notes (the chunks are kept, nothing is copied);
    a record's latest note is the one that counts (:func:`_latest`)."""
    if changes.num_rows == 0:
        return virtual
    return changes if virtual is None else _concat(virtual, changes)


def _latest(notes: pa.Table | None, handles: pa.ChunkedArray, wanted: pa.Array) -> pa.Table | None:
    """The latest note of each record a batch can meet: one of its candidates (``handles``)
    or one whose identity it wants. Two lookups in the notes, whatever their size."""
    if notes is None or notes.num_rows == 0:
        return None
    hit = pc.fill_null(pc.is_in(notes.column(_IDENTITY), value_set=wanted, skip_nulls=True), False)
    met = pa.chunked_array(
        [*notes.column(_HANDLE).filter(hit).chunks, *handles.chunks], pa.string()
    ).combine_chunks()
    if len(met) == 0:
        return None
    found = pc.fill_null(pc.is_in(notes.column(_HANDLE), value_set=met), False)
    mine = notes.filter(found)
    if mine.num_rows == 0:
        return None
    order = pa.array(range(mine.num_rows), pa.int64())
    last = (
        pa.table({_HANDLE: mine.column(_HANDLE), "n": order})
        .group_by(_HANDLE, use_threads=False)
        .aggregate([("n", "max")])
        .column("n_max")
    )
    return mine.take(pc.take(last, pc.sort_indices(last)))  # in the order they were noted


def _assemble(proposed: pa.RecordBatch, parts: list[_Decided], fields: Sequence[str]) -> Plan:
    written = [proposed.schema.field(f) for f in fields]
    schema = plan_schema(written)
    before_schema = pa.schema(written)
    if not parts:
        return Plan(schema.empty_table(), before_schema.empty_table())
    ops = pa.concat_tables([_conform(d.ops, schema) for d in parts])
    before = pa.concat_tables(
        [_conform(d.before, before_schema, rows=d.ops.num_rows) for d in parts]
    )
    order = pc.sort_indices(ops, sort_keys=[(ROW_COLUMN, "ascending"), (WAVE_COLUMN, "ascending")])
    return Plan(_take(ops, order), _take(before, order))


def _expand_all(
    wanted: pa.Array,
    there: pa.Array,
    count: pa.Array,
    rows: pa.Array,
    at: pa.Array,
    action: pa.Array,
    code: pa.Array,
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """``on_multiple: all``: one operation per matched record for records matching several."""
    many = pc.greater(count, 1)
    if not pc.any(many).as_py():
        return rows, at, action, code
    where: dict[str, list[int]] = {}
    needed = set(wanted.filter(many).to_pylist())
    for i, value in enumerate(there.to_pylist()):
        if value in needed:
            where.setdefault(value, []).append(i)
    new_rows, new_at, new_action, new_code = [], [], [], []
    for row, pos, act, cod, key, multi in zip(
        rows.to_pylist(),
        at.to_pylist(),
        action.to_pylist(),
        code.to_pylist(),
        wanted.to_pylist(),
        many.to_pylist(),
        strict=True,
    ):
        for target in where[key] if multi else [pos]:
            new_rows.append(row)
            new_at.append(target)
            new_action.append(act)
            new_code.append(cod)
    return (
        pa.array(new_rows, pa.int64()),
        pa.array(new_at, at.type),
        pa.array(new_action, pa.string()),
        pa.array(new_code, pa.string()),
    )


def _empty_state(names: Sequence[str]) -> pa.Table:
    del names
    return pa.table(
        {
            _IDENTITY: pa.array([], pa.string()),
            _HANDLE: pa.array([], pa.string()),
            ID_COLUMN: pa.array([], pa.string()),
            VERSION_COLUMN: pa.array([], pa.string()),
            CREATED_BY_COLUMN: pa.array([], pa.string()),
            _FROM_ROW: pa.array([], pa.int64()),
        }
    )


def _concat(first: pa.Table, second: pa.Table) -> pa.Table:
    """Rows of both tables; columns of either (missing ones null), types of ``first``."""
    if second.num_rows == 0:
        return first
    if first.num_rows == 0 and not set(second.column_names) <= set(first.column_names):
        return second
    names = list(dict.fromkeys([*first.column_names, *second.column_names]))
    types = {f.name: f.type for f in second.schema} | {f.name: f.type for f in first.schema}
    schema = pa.schema([pa.field(n, types[n]) for n in names])
    return pa.concat_tables([_conform(first, schema), _conform(second, schema)])


def _conform(table: pa.Table, schema: pa.Schema, *, rows: int | None = None) -> pa.Table:
    """``table`` with exactly ``schema``'s columns (missing ones null), cast where needed."""
    n = table.num_rows if rows is None else rows
    columns = []
    for f in schema:
        if f.name in table.column_names:
            column = table.column(f.name)
            columns.append(column if column.type == f.type else _cast(column, f.type))
        else:
            columns.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _cast(column: pa.ChunkedArray | pa.Array, dtype: pa.DataType) -> pa.ChunkedArray | pa.Array:
    if column.type == dtype:
        return column
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), dtype)
    try:
        return column.cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return pa.nulls(len(column), dtype)


def _aligned(state: pa.Table, at: pa.Array) -> pa.Table:
    """Rows of ``state`` at positions ``at`` (a null position gives a null row)."""
    if state.num_rows == 0:
        return pa.table(
            {n: pa.nulls(len(at), state.schema.field(n).type) for n in state.column_names}
        )
    return state.take(at)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    flat = _flat(values)
    return flat if pa.types.is_string(flat.type) else pc.cast(flat, pa.string())


def _differs(ours: pa.Array, theirs: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Per row: is ``ours`` another value than ``theirs`` (null equals null)?"""
    other = _flat(theirs)
    if other.type != ours.type:
        try:
            other = other.cast(ours.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.repeat(True, len(ours))
    if pa.types.is_list(ours.type):  # a multi-select: Arrow compares no lists
        pairs = zip(ours.to_pylist(), other.to_pylist(), strict=True)
        return pa.array([a != b for a, b in pairs], pa.bool_())
    equal = pc.fill_null(pc.equal(ours, other), False)
    both_null = pc.and_(pc.is_null(ours), pc.is_null(other))
    return pc.invert(pc.or_(equal, both_null))


def _repeats(rows: pa.Array) -> bool:
    return len(rows) > 1 and len(pc.unique(rows)) != len(rows)


def _missing_part(batch: pa.RecordBatch, keys: Sequence[str], i: int) -> str:
    for k in keys:
        value = batch.column(k)[i].as_py()
        if value is None or (isinstance(value, str) and not value.strip()):
            return k
    return keys[0]


_Taken = TypeVar("_Taken", pa.Array, pa.RecordBatch, pa.Table)


def _take(data: _Taken, rows: pa.Array) -> _Taken:
    """``data.take(rows)``; ``data`` itself when ``rows`` are all its rows in order (the
    usual case: one wave, no record skipped), without copying every column."""
    n = len(data)
    if len(rows) != n or (n and (rows[0].as_py() != 0 or rows[-1].as_py() != n - 1)):
        return data.take(rows)
    if n < 2 or pc.all(pc.equal(pc.pairwise_diff(rows), 1)).as_py():
        return data
    return data.take(rows)


__all__ = ["Planner"]
