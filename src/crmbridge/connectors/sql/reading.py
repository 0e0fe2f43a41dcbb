"""Reading rows into Arrow batches typed per the table's fields, and looking rows up by key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.connectors.sql.values import BadValue, raw_column, to_arrow
from crmbridge.core.schema import Field
from crmbridge.errors import ErrorContext, RemoteError

#: most bound values in one lookup statement (SQL Server allows 2,100 parameters)
_MAX_PARAMS = {"mssql": 2000}
_DEFAULT_MAX_PARAMS = 30_000
_MAX_KEYS_PER_QUERY = 5_000


def convert_rows(
    rows: Sequence[Sequence[Any]], fields: Sequence[Field]
) -> tuple[pa.RecordBatch, list[BadValue]]:
    """A batch from result rows whose columns are ``fields``, built column by column, without
    the rows holding a value that does not fit its field; those values, first per row."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    arrays: list[pa.Array] = []
    bad: dict[int, BadValue] = {}
    for values, field in zip(columns, fields, strict=True):
        array, refused = to_arrow(values, field)
        arrays.append(array)
        for row, reason in refused:
            bad.setdefault(row, BadValue(row, field.name, values[row], reason))
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    if bad:
        batch = batch.filter(pa.array([i not in bad for i in range(len(rows))]))
    return batch, sorted(bad.values(), key=lambda b: b.row)


def rows_to_batch(rows: Sequence[Sequence[Any]], fields: Sequence[Field]) -> pa.RecordBatch:
    """A batch from result rows whose columns are ``fields``; a value that does not fit its
    field is a RemoteError naming the field."""
    batch, bad = convert_rows(rows, fields)
    if bad:
        first = bad[0]
        raise RemoteError(first.problem, context=ErrorContext(field=first.field))
    return batch


def bind_value(value: Any, column: sa.Column[Any]) -> Any:
    """A Python value ready to be bound for ``column``: UTC instants become naive for columns
    without a time zone (naive date-times are UTC)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
        if not getattr(column.type, "timezone", False):
            value = value.replace(tzinfo=None)
    return value


def select_rows(
    info: TableInfo, fields: Sequence[Field], where: sa.ColumnElement[bool] | None
) -> sa.Select[Any]:
    """SELECT the fields (as the driver returns them), filtered, in primary-key order (so
    reads are repeatable)."""
    stmt = sa.select(*(raw_column(info.column(f.name)) for f in fields))
    if where is not None:
        stmt = stmt.where(where)
    return stmt.order_by(*(info.column(name) for name in info.primary_key))


def stream_batches(
    conn: sa.Connection,
    stmt: sa.Select[Any],
    fields: Sequence[Field],
    batch_size: int,
    on_bad: Callable[[BadValue, int, Sequence[Any]], None],
) -> Iterator[pa.RecordBatch]:
    """Run ``stmt`` with a server-side cursor and yield batches of up to ``batch_size`` rows.

    A row with a value that does not fit its field is left out and given to ``on_bad`` with
    its 1-based position in the read and the row's values."""
    options = conn.execution_options(stream_results=True, yield_per=batch_size)
    result = options.execute(stmt)
    done = 0
    try:
        for rows in result.partitions():
            batch, bad = convert_rows(rows, fields)
            for value in bad:
                on_bad(value, done + value.row + 1, rows[value.row])
            done += len(rows)
            if batch.num_rows or not bad:
                yield batch
    finally:
        result.close()


def key_condition(
    columns: Sequence[sa.Column[Any]], keys: Sequence[tuple[Any, ...]], dialect: str
) -> sa.ColumnElement[bool]:
    """``(k1, k2) IN ((..), (..))``, spelled for the dialect (SQL Server has no row values)."""
    if len(columns) == 1:
        return columns[0].in_([k[0] for k in keys])
    if dialect == "mssql":
        return sa.or_(*(sa.and_(*(c == v for c, v in zip(columns, k, strict=True))) for k in keys))
    return sa.tuple_(*columns).in_(keys)


def key_tuples(info: TableInfo, keys: Sequence[str], values: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of ``values`` (key columns) as tuples of bindable Python values."""
    columns = [[bind_value(v, info.column(k)) for v in values.column(k).to_pylist()] for k in keys]
    return list(zip(*columns, strict=True))


def fetch_by_keys(
    conn: sa.Connection,
    info: TableInfo,
    keys: Sequence[str],
    values: pa.Table,
    columns: Sequence[str],
) -> pa.Table:
    """Rows of the table whose ``keys`` equal a row of ``values``: the key columns, then
    ``columns``, typed per the table's fields. Rows with a NULL key match nothing."""
    names = list(dict.fromkeys([*keys, *columns]))
    fields = [info.schema.field(n) for n in names]
    limit = _MAX_PARAMS.get(conn.dialect.name, _DEFAULT_MAX_PARAMS)
    chunk = max(1, min(_MAX_KEYS_PER_QUERY, limit // max(1, len(keys))))
    key_columns = [info.column(k) for k in keys]
    found: list[pa.RecordBatch] = []
    tuples = [t for t in key_tuples(info, keys, values) if None not in t]
    for start in range(0, len(tuples), chunk):
        where = key_condition(key_columns, tuples[start : start + chunk], conn.dialect.name)
        rows = conn.execute(sa.select(*(raw_column(info.column(n)) for n in names)).where(where))
        found.append(rows_to_batch(rows.all(), fields))
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    return pa.Table.from_batches(found, schema=schema)
