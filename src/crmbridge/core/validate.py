"""Checks mapped records against the target's schema before anything is written.

Vectorized over a batch: required fields, text lengths in characters and, for byte-limited
columns, in bytes (reject or truncate, per field; a cut never splits a character), enum
options (for list fields: each item), and match keys that must have a value. A record that
fails is removed from the batch and reported as a :class:`~crmbridge.core.coerce.Rejection`
naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.core.coerce import Rejection
from crmbridge.core.outcomes import RejectCode, WriteMode
from crmbridge.core.schema import ROW_COLUMN, Field, ObjectSchema


@dataclass(frozen=True)
class TargetRules:
    schema: ObjectSchema
    mode: WriteMode
    match_keys: Sequence[str]
    #: field name -> True to cut an over-long value to the limit, False to reject the record
    truncate: Callable[[str], bool]
    #: send enum values that are not among the field's options instead of rejecting them
    allow_unlisted_values: bool = False


def _preview(value: object, limit: int = 40) -> str:
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _no_key(key: str, i: int) -> str:
    return f"match key {key!r} has no value"


def _no_value(i: int) -> str:
    return "required field has no value"


def _unlisted(column: pa.Array, field: Field, i: int) -> str:
    options = ", ".join(v for v in field.allowed_values or () if v)
    return f"{_preview(column[i].as_py())} is not one of the options of {field.name!r}: {options}"


def _too_long(column: pa.Array, lengths: pa.Array, field: Field, i: int) -> str:
    value = _preview(column[i].as_py())
    return f"{value} is {lengths[i].as_py()} characters, the limit is {field.length}"


def _too_many_bytes(column: pa.Array, sizes: pa.Array, field: Field, i: int) -> str:
    value = _preview(column[i].as_py())
    return f"{value} is {sizes[i].as_py()} bytes (UTF-8), the limit is {field.max_bytes} bytes"


def _unlisted_item(column: pa.Array, field: Field, i: int) -> str:
    options = set(field.allowed_values or ())
    bad = [v for v in column[i].as_py() or [] if v is not None and v not in options]
    listed = ", ".join(field.allowed_values or ())
    return f"{_preview(bad[0])} is not one of the options of {field.name!r}: {listed}"


def _cut_bytes(column: pa.Array, over: pa.Array, limit: int) -> pa.Array:
    """``column`` with the ``over`` values cut to ``limit`` UTF-8 bytes at a character
    boundary (Python for those few values only)."""
    values = column.to_pylist()
    for i in pc.indices_nonzero(over).to_pylist():
        values[i] = values[i].encode("utf-8")[:limit].decode("utf-8", "ignore")
    return pa.array(values, column.type)


def _items_unlisted(column: pa.Array, options: pa.Array) -> pa.Array:
    """Per list value: whether an item is not among ``options``."""
    flat = pc.list_flatten(column)
    if len(flat) == 0:
        return pa.array([False] * len(column))
    parents = pc.list_parent_indices(column)
    bad_items = pc.and_(pc.is_valid(flat), pc.invert(pc.is_in(flat, options)))
    rows = pc.filter(parents, pc.fill_null(bad_items, False)).to_pylist()
    mask = [False] * len(column)
    for row in rows:
        mask[row] = True
    return pa.array(mask)


def validate(
    batch: pa.RecordBatch,
    rules: TargetRules,
    *,
    filled_later: Mapping[str, pa.Array] | None = None,
) -> tuple[pa.RecordBatch, list[Rejection]]:
    """The records of ``batch`` that fit the target, and a rejection for each that does not.

    ``filled_later``: field -> the rows where it has no value yet but will get one before the
    write (a reference whose record is created first); a required field is fine there."""
    later = filled_later or {}
    if batch.num_rows == 0:
        return batch, []
    rows = batch.column(ROW_COLUMN)
    bad = pa.array([False] * batch.num_rows)
    rejections: dict[int, Rejection] = {}
    columns = dict(zip(batch.schema.names, batch.columns, strict=True))

    def reject(
        mask: pa.Array,
        field: str,
        reason: Callable[[int], str],
        code: RejectCode = RejectCode.INVALID_VALUE,
    ) -> None:
        nonlocal bad
        if not pc.any(mask).as_py():
            return
        for i in pc.indices_nonzero(mask).to_pylist():
            row = rows[i].as_py()
            rejections.setdefault(row, Rejection(row, field, reason(i), code))
        bad = pc.or_(bad, mask)

    if rules.mode is not WriteMode.INSERT:
        for key in rules.match_keys:
            if key in columns:
                reject(pc.is_null(columns[key]), key, partial(_no_key, key), RejectCode.MISSING_KEY)

    if rules.mode is not WriteMode.DELETE:
        for field in rules.schema.fields:
            column = columns.get(field.name)
            if column is None:
                continue
            if field.required:
                empty = pc.is_null(column)
                if field.name in later:
                    empty = pc.and_(empty, pc.invert(later[field.name]))
                reject(empty, field.name, _no_value)
            if pa.types.is_null(column.type):
                continue  # no values at all: nothing more to check
            listed = pa.types.is_list(column.type)
            if field.allowed_values is not None and not rules.allow_unlisted_values:
                options = pa.array(field.allowed_values, pa.string())
                if listed:
                    bad_items = _items_unlisted(column, options)
                    reject(bad_items, field.name, partial(_unlisted_item, column, field))
                else:
                    unlisted = pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, options)))
                    why = partial(_unlisted, column, field)
                    reject(pc.fill_null(unlisted, False), field.name, why)
            if field.max_bytes and field.type.is_text and not listed:
                column = columns[field.name]
                sizes = pc.binary_length(column)
                over = pc.fill_null(pc.greater(sizes, field.max_bytes), False)
                if pc.any(over).as_py():
                    if rules.truncate(field.name):
                        columns[field.name] = _cut_bytes(column, over, field.max_bytes)
                    else:
                        why = partial(_too_many_bytes, column, sizes, field)
                        reject(over, field.name, why)
            if field.length and field.type.is_text and not listed:
                column = columns[field.name]
                lengths = pc.utf8_length(column)
                over = pc.fill_null(pc.greater(lengths, field.length), False)
                if not pc.any(over).as_py():
                    continue
                if rules.truncate(field.name):
                    cut = pc.utf8_slice_codeunits(column, 0, field.length)
                    columns[field.name] = pc.if_else(over, cut, column)
                else:
                    reject(over, field.name, partial(_too_long, column, lengths, field))

    out = pa.RecordBatch.from_arrays(list(columns.values()), schema=batch.schema)
    if rejections:
        out = out.filter(pc.invert(bad))
    return out, list(rejections.values())
