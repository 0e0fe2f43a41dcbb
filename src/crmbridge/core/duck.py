"""The one DuckDB database crmbridge computes in, shared by everything in the process.

Opening a database costs ~30 ms and a buffer pool and thread pool of its own; a connection
(cursor) to the open one costs microseconds and nothing more. Its clock is UTC.
"""

from __future__ import annotations

import atexit
import contextlib
import functools

import duckdb
import pyarrow as pa


@functools.cache
def _shared_database() -> duckdb.DuckDBPyConnection:
    database = duckdb.connect()
    atexit.register(database.close)  # closed before the interpreter tears DuckDB down
    # Without the ICU extension DuckDB has no time zones and computes in UTC anyway.
    with contextlib.suppress(duckdb.Error):
        database.execute("SET GLOBAL TimeZone = 'UTC'")
    return database


def connect() -> duckdb.DuckDBPyConnection:
    """A new connection (its own registered batches, its own transaction), clock in UTC."""
    return _shared_database().cursor()


_INTEGER_TYPES = {8: "TINYINT", 16: "SMALLINT", 32: "INTEGER", 64: "BIGINT"}


def duckdb_type(dtype: pa.DataType) -> str | None:
    """The DuckDB type that carries ``dtype``; None for types crmbridge does not use."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "VARCHAR"
    if pa.types.is_signed_integer(dtype):
        return _INTEGER_TYPES[dtype.bit_width]
    if pa.types.is_float32(dtype):
        return "REAL"
    if pa.types.is_float64(dtype):
        return "DOUBLE"
    if pa.types.is_decimal128(dtype) and dtype.precision <= 38:
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if pa.types.is_boolean(dtype):
        return "BOOLEAN"
    if pa.types.is_date32(dtype):
        return "DATE"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        item = duckdb_type(dtype.value_type)
        return f"{item}[]" if item is not None else None
    if pa.types.is_struct(dtype):
        fields = [(f.name, duckdb_type(f.type)) for f in dtype]
        if any(t is None for _, t in fields):
            return None
        inner = ", ".join('"' + n.replace('"', '""') + f'" {t}' for n, t in fields)
        return f"STRUCT({inner})"
    return None
