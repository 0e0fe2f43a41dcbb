"""PostgreSQL: the rows of a SELECT as Arrow columns without a Python object per value.

``COPY (SELECT ...) TO STDOUT (FORMAT csv, FORCE_QUOTE *)`` streams the result as CSV, which
Arrow's C++ reader parses straight into each field's Arrow type. Every non-NULL value is
quoted, so an unquoted empty field is NULL and ``""`` an empty string; nothing else is read as
NULL (``NA`` stays text).

Exactness is the exact reader's (``values.to_arrow``): this path is taken only for columns
whose text form parses back to the same value (integers, ``double precision``, ``numeric``,
booleans, dates, timestamps, text), with the session's output fixed (ISO dates, UTC, shortest
exact floats). A value Arrow cannot parse exactly (``infinity``, a year after 9999, more
decimals than the field's scale, an integer beyond 64 bits) makes :func:`fetch` answer
None: the caller reads those rows the exact way, which names the value that does not fit.
"""

from __future__ import annotations

import io
import select
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import sqlalchemy as sa

from crmbridge.connectors.sql.failures import driver_errors
from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.core.schema import Field, FieldType

_PARSED = {
    FieldType.INTEGER,
    FieldType.DECIMAL,
    FieldType.FLOAT,
    FieldType.BOOLEAN,
    FieldType.DATE,
    FieldType.DATETIME,
    FieldType.STRING,
    FieldType.TEXT,
}

#: the session's output formats while the COPY runs (undone when its transaction ends)
_SESSION = (
    "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 3"
)


def parses_exactly(info: TableInfo, names: Sequence[str]) -> bool:
    """Whether every column of ``names`` reads back exactly from its CSV text."""
    for name in names:
        field = info.schema.field(name)
        sqltype = info.column(name).type
        if field.type not in _PARSED or isinstance(sqltype, sa.Enum | sa.Uuid | sa.JSON):
            return False
        if field.type is FieldType.FLOAT and not isinstance(sqltype, sa.Double):
            return False  # a ``real``'s shortest text is not the float64 the driver returns
    return True


def fetch(
    conn: sa.Connection,
    info: TableInfo,
    stmt: sa.Select[Any],
    fields: Sequence[Field],
) -> pa.Table | None:
    """The rows of ``stmt`` (its columns are ``fields``), or None when a value does not parse
    exactly (see the module docstring). ``parses_exactly`` must hold for the fields."""
    compiled = stmt.compile(dialect=conn.dialect)
    params: Mapping[str, Any] = compiled.params
    sql = f"COPY ({compiled}) TO STDOUT (FORMAT csv, FORCE_QUOTE *)"
    raw: Any = conn.connection.driver_connection
    with driver_errors(conn, sql), raw.cursor() as cursor:
        cursor.execute(_SESSION)
        data = _copy_out(raw, _bound(raw, sql, params))
    return parse(data, info, fields)


def _bound(raw: Any, sql: str, params: Mapping[str, Any]) -> str:
    """``sql`` with ``params`` as literals (how psycopg binds a COPY's parameters too)."""
    import psycopg

    return str(psycopg.ClientCursor(raw).mogrify(sql, params))


def _copy_out(raw: Any, sql: str) -> bytes:
    """The output of ``COPY ... TO STDOUT``, read with libpq's own calls: the server sends
    one message per row, and psycopg's ``Copy`` iterator costs several Python calls for each
    (a third of an upsert's lookups). Binding is client-side, as psycopg's own COPY does."""
    import psycopg  # the postgres extra: only a PostgreSQL connection gets here

    pgconn = raw.pgconn
    pgconn.send_query(sql.encode(raw.info.encoding))
    started = _result(pgconn)
    if started is None:
        raise psycopg.OperationalError("the server sent no answer to COPY")
    if started.status != psycopg.pq.ExecStatus.COPY_OUT:
        _finish(pgconn)
        raise psycopg.errors.error_from_result(started, encoding=raw.info.encoding)
    parts: list[bytes] = []
    while True:
        size, chunk = pgconn.get_copy_data(1)
        if size > 0:
            parts.append(bytes(chunk))
        elif size == 0:  # nothing buffered: wait for the server (the GIL is free meanwhile)
            _wait(pgconn)
        else:
            break
    error = _finish(pgconn)
    if error is not None:
        raise psycopg.errors.error_from_result(error, encoding=raw.info.encoding)
    return b"".join(parts)


def _wait(pgconn: Any) -> None:
    select.select([pgconn.socket], [], [])
    pgconn.consume_input()


def _result(pgconn: Any) -> Any:
    """libpq's next result, waited for without holding the GIL."""
    pgconn.consume_input()
    while pgconn.is_busy():
        _wait(pgconn)
    return pgconn.get_result()


def _finish(pgconn: Any) -> Any:
    """Read the results left after a COPY; the first that failed, if any."""
    from psycopg import pq

    failed = None
    while (result := _result(pgconn)) is not None:
        if failed is None and result.status not in (
            pq.ExecStatus.COMMAND_OK,
            pq.ExecStatus.COPY_OUT,
        ):
            failed = result
    return failed


def parse(data: bytes, info: TableInfo, fields: Sequence[Field]) -> pa.Table | None:
    """The CSV ``data`` as a table typed per ``fields``; None if a value does not parse."""
    names = [f.name for f in fields]
    schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
    if not data:
        return schema.empty_table()
    types = {}
    for f in fields:
        zoned = getattr(info.column(f.name).type, "timezone", False)
        naive = f.type is FieldType.DATETIME and not zoned  # stored as UTC wall-clock time
        types[f.name] = pa.timestamp("us") if naive else f.arrow_type
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(column_names=names, use_threads=False),
            parse_options=pcsv.ParseOptions(newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
                true_values=["t"],
                false_values=["f"],
            ),
        )
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


__all__ = ["fetch", "parse", "parses_exactly"]
