"""Finding stored rows for key values (``match``), and the ids that point at a stored row.

* **Key rules**: a text column compares as its collation does (``tables.key_rule_for``):
  that is each field's ``key_rule``.
* **Candidates**: for an exact key, ``key IN (...)``; for a case-insensitive one on a column
  that compares exactly, ``lower(trim(key)) IN (...)``; a phone key reads every row with a value
  (no index can help). The engine then compares the candidates under the rule itself.
* **Ids**: a stored row is found again by its *locator*: the primary key, or (a table without
  one) the match keys' stored values. The id text is the value itself for one column and a
  JSON list for several, so it reads well in the success file and parses back exactly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from crmbridge.connectors.base import ID_COLUMN, VERSION_COLUMN, MatchRequest
from crmbridge.connectors.sql import fetch_postgres
from crmbridge.connectors.sql.reading import key_condition, key_tuples, rows_to_batch
from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.connectors.sql.values import raw_column
from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import Field

_KEYS_PER_QUERY = {"mssql": 500}
_DEFAULT_KEYS_PER_QUERY = 5_000


def locator(info: TableInfo, keys: Sequence[str]) -> tuple[str, ...]:
    """The columns that find one stored row again: the primary key, else the match keys."""
    return info.primary_key or tuple(keys)


def encode_ids(table: pa.Table | pa.RecordBatch, columns: Sequence[str]) -> pa.Array:
    """The id text of each row (see the module docstring)."""
    if not columns:
        return pa.nulls(table.num_rows, pa.string())
    if len(columns) == 1:
        return _flat(pc.cast(table.column(columns[0]), pa.string()))
    parts = [table.column(c).to_pylist() for c in columns]
    return pa.array(
        [
            None if any(v is None for v in row) else json.dumps([_plain(v) for v in row])
            for row in zip(*parts, strict=True)
        ],
        pa.string(),
    )


def decode_ids(ids: pa.Array, info: TableInfo, columns: Sequence[str]) -> pa.Table:
    """The locator columns of ``ids`` (id texts), typed per the table's fields."""
    fields = [info.schema.field(c) for c in columns]
    if len(columns) == 1:
        return pa.table({columns[0]: _cast_text(ids, fields[0])})
    rows = [json.loads(v) if v is not None else [None] * len(columns) for v in ids.to_pylist()]
    return pa.table(
        {
            f.name: _cast_text(pa.array([r[i] for r in rows], pa.string()), f)
            for i, f in enumerate(fields)
        }
    )


def match_rows(conn: sa.Connection, info: TableInfo, request: MatchRequest) -> pa.RecordBatch:
    """The candidate rows for ``request`` (see the module docstring): the keys, the fields,
    ID_COLUMN (no version: the engine compares values)."""
    keys = list(request.keys)
    found_by = locator(info, keys)
    names = list(dict.fromkeys([*keys, *request.fields, *found_by]))
    fields = [info.schema.field(n) for n in names]
    select = sa.select(*(raw_column(info.column(n)) for n in names))
    postgres = conn.dialect.name == "postgresql"
    fast = postgres and fetch_postgres.parses_exactly(info, names)
    if postgres and all(request.rules.get(k) is not KeyRule.PHONE for k in keys):
        # a lookup by key values: the index on the keys is used even when the statistics
        # are stale (a table filling up during the run looks empty, and would be read whole
        # for every batch)
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    parts: list[pa.Table] = []
    for where in _conditions(conn, info, request):
        found = fetch_postgres.fetch(conn, info, select.where(where), fields) if fast else None
        if found is None:  # a value only the exact reader explains (or not PostgreSQL)
            found = pa.Table.from_batches(
                [rows_to_batch(conn.execute(select.where(where)).all(), fields)]
            )
        parts.append(found)
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    table = pa.concat_tables([p.cast(schema) for p in parts]) if parts else schema.empty_table()
    table = table.combine_chunks()
    table = table.append_column(ID_COLUMN, encode_ids(table, found_by))
    table = table.append_column(VERSION_COLUMN, pa.nulls(table.num_rows, pa.string()))
    keep = [*keys, *[f for f in request.fields if f not in keys], ID_COLUMN, VERSION_COLUMN]
    return table.select(keep).to_batches()[0] if table.num_rows else _empty(table.select(keep))


def _conditions(
    conn: sa.Connection, info: TableInfo, request: MatchRequest
) -> list[sa.ColumnElement[bool]]:
    keys = list(request.keys)
    dialect = conn.dialect.name
    rules = {k: request.rules.get(k, KeyRule.EXACT) for k in keys}
    if any(r is KeyRule.PHONE for r in rules.values()):
        return [sa.and_(*(info.column(k).is_not(None) for k in keys))]
    values = pa.Table.from_batches([request.values])
    columns: list[Any] = []
    for k in keys:
        column = info.column(k)
        folds = rules[k] is not KeyRule.EXACT and info.schema.field(k).key_rule is KeyRule.EXACT
        if folds:
            columns.append(sa.func.lower(sa.func.trim(column)))
            folded = [_fold(v) for v in values.column(k).to_pylist()]
            values = values.set_column(
                values.column_names.index(k), k, pa.array(folded, pa.string())
            )
        else:
            columns.append(column)
    if dialect == "postgresql" and all(r is KeyRule.EXACT for r in rules.values()):
        literals = _array_literals(values.select(keys))
        if literals is not None:  # the keys as array texts, written by Arrow
            return [_any_of_texts(columns, literals)] if literals[0][0] != "{}" else []
    tuples = [t for t in key_tuples(info, keys, values) if None not in t]
    if any(rules[k] is not KeyRule.EXACT for k in keys):  # both spellings of ß and the like
        tuples += [tuple(v.casefold() if isinstance(v, str) else v for v in t) for t in tuples]
        tuples = list(dict.fromkeys(tuples))
    if dialect == "postgresql" and tuples:  # one array parameter per key, not one per value
        return [_any_of(columns, [info.column(k) for k in keys], tuples)]
    step = _KEYS_PER_QUERY.get(dialect, _DEFAULT_KEYS_PER_QUERY) // max(1, len(keys))
    return [
        key_condition(columns, tuples[start : start + step], dialect)
        for start in range(0, len(tuples), max(1, step))
    ]


#: Arrow types whose text PostgreSQL reads back as the same value, and the array type it is
#: read as (compared with the column by the index's own cross-type operators)
_ARRAY_OF = (
    (pa.types.is_integer, postgresql.ARRAY(sa.BigInteger)),
    (pa.types.is_string, postgresql.ARRAY(sa.Text)),
    (pa.types.is_date32, postgresql.ARRAY(sa.Date)),
    (pa.types.is_decimal, postgresql.ARRAY(sa.Numeric)),
)


def _array_literals(values: pa.Table) -> list[tuple[str, Any]] | None:
    """Per key column, the rows with every key as a PostgreSQL array text (``{1,2}``,
    ``{"a","b \\"c\\""}``) and its array type; None for a type without an exact text."""
    complete = values.filter(functools.reduce(pc.and_, [pc.is_valid(c) for c in values.columns]))
    out: list[tuple[str, Any]] = []
    for column in complete.columns:
        kind = next((t for test, t in _ARRAY_OF if test(column.type)), None)
        if kind is None:
            return None
        text = pc.cast(column, pa.string())
        if pa.types.is_string(column.type):
            text = pc.replace_substring(pc.replace_substring(text, "\\", "\\\\"), '"', '\\"')
            text = pc.binary_join_element_wise('"', text, '"', "")
        items = pa.ListArray.from_arrays(
            pa.array([0, len(text)], pa.int32()),
            _flat(text) if len(text) else pa.array([], pa.string()),
        )
        joined = pc.binary_join(items, ",")[0].as_py()
        out.append(("{" + joined + "}", kind))
    return out


def _any_of_texts(columns: Sequence[Any], literals: Sequence[tuple[str, Any]]) -> Any:
    """``k = ANY(CAST(:text AS type[]))``; several keys: ``IN (SELECT * FROM unnest(...))``."""
    arrays = [
        sa.cast(sa.bindparam(f"k{i}", text, type_=sa.Text), kind)
        for i, (text, kind) in enumerate(literals)
    ]
    if len(columns) == 1:
        return columns[0] == sa.any_(arrays[0])
    names = [f"k{i}" for i in range(len(arrays))]
    pairs = sa.func.unnest(*arrays).table_valued(*names).render_derived()
    return sa.tuple_(*columns).in_(sa.select(*(pairs.c[n] for n in names)))


def _any_of(
    columns: Sequence[Any], typed: Sequence[sa.Column[Any]], tuples: Sequence[tuple[Any, ...]]
) -> sa.ColumnElement[bool]:
    """PostgreSQL: ``k = ANY(:array)``, or ``(a, b) IN (SELECT * FROM unnest(:a, :b))``."""
    arrays = [
        sa.bindparam(f"k{i}", [t[i] for t in tuples], type_=postgresql.ARRAY(c.type))
        for i, c in enumerate(typed)
    ]
    if len(columns) == 1:
        condition: sa.ColumnElement[bool] = columns[0] == sa.any_(arrays[0])
        return condition
    names = [f"k{i}" for i in range(len(typed))]
    pairs = sa.func.unnest(*arrays).table_valued(*names).render_derived()  # AS t(k0, k1)
    return sa.tuple_(*columns).in_(sa.select(*(pairs.c[n] for n in names)))


def _fold(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _cast_text(values: pa.Array, field: Field) -> pa.Array:
    target = field.arrow_type
    return values if values.type == target else pc.cast(values, target)


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | str | float | bool) or value is None else str(value)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _empty(table: pa.Table) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([], f.type) for f in table.schema], schema=table.schema
    )


__all__ = ["decode_ids", "encode_ids", "locator", "match_rows"]
