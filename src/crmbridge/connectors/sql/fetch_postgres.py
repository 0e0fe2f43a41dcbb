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
    buffer = io.BytesIO()
    with driver_errors(conn, sql), raw.cursor() as cursor:
        cursor.execute(_SESSION)
        with cursor.copy(sql, params) as copy:
            for chunk in copy:
                buffer.write(chunk)
    return parse(buffer.getvalue(), info, fields)


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
