"""Reading rows into Arrow batches typed per the table's fields, and looking rows up by key."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.core.schema import Field, FieldType
from crmbridge.errors import ErrorContext, RemoteError

#: most bound values in one lookup statement (SQL Server allows 2,100 parameters)
_MAX_PARAMS = {"mssql": 2000}
_DEFAULT_MAX_PARAMS = 30_000
_MAX_KEYS_PER_QUERY = 5_000


def to_arrow(values: Sequence[Any], field: Field) -> pa.Array:
    """The values of one column as an Arrow array of ``field.arrow_type``.

    Values the driver returns in another Python type (MySQL TINYINT(1) as int, UUIDs, JSON,
    SQLite's loosely typed columns, decimals with more digits than the field's scale) are
    converted one by one; a value that cannot be converted is a RemoteError naming the field.
    """
    target = field.arrow_type
    try:
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    convert = _converter(field)
    out: list[Any] = []
    for value in values:
        try:
            out.append(None if value is None else convert(value))
        except (ValueError, TypeError, ArithmeticError):
            raise RemoteError(
                f"value {str(value)[:100]!r} is not a valid {field.describe_type()}",
                context=ErrorContext(field=field.name),
            ) from None
    return pa.array(out, target)


def _converter(field: Field) -> Callable[[Any], Any]:
    ftype = field.type
    if ftype is FieldType.BOOLEAN:
        return _to_bool
    if ftype is FieldType.INTEGER:
        return _to_int
    if ftype is FieldType.FLOAT:
        return float
    if ftype is FieldType.DECIMAL:
        exponent = decimal.Decimal(1).scaleb(-(field.scale or 0))
        context = decimal.Context(prec=80)
        return lambda v: decimal.Decimal(str(v)).quantize(exponent, context=context)
    if ftype is FieldType.DATE:
        return _to_date
    if ftype is FieldType.DATETIME:
        return lambda v: v if isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))
    return _to_text


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered not in ("0", "1", "true", "false", "t", "f"):
            raise ValueError(value)
        return lowered in ("1", "true", "t")
    return bool(value)


def _to_int(value: Any) -> int:
    number = decimal.Decimal(str(value))
    if number != number.to_integral_value():
        raise ValueError(value)
    return int(number)


def _to_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def rows_to_batch(rows: Sequence[Sequence[Any]], fields: Sequence[Field]) -> pa.RecordBatch:
    """A batch from result rows whose columns are ``fields``, built column by column."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    arrays = [to_arrow(values, f) for values, f in zip(columns, fields, strict=True)]
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


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
    """SELECT the fields, filtered, in primary-key order (so reads are repeatable)."""
    stmt = sa.select(*(info.column(f.name) for f in fields))
    if where is not None:
        stmt = stmt.where(where)
    return stmt.order_by(*(info.column(name) for name in info.primary_key))


def stream_batches(
    conn: sa.Connection, stmt: sa.Select[Any], fields: Sequence[Field], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """Run ``stmt`` with a server-side cursor and yield batches of ``batch_size`` rows."""
    options = conn.execution_options(stream_results=True, yield_per=batch_size)
    result = options.execute(stmt)
    try:
        for rows in result.partitions():
            yield rows_to_batch(rows, fields)
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
        rows = conn.execute(sa.select(*(info.column(n) for n in names)).where(where)).all()
        found.append(rows_to_batch(rows, fields))
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    return pa.Table.from_batches(found, schema=schema)
