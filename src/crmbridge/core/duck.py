"""The one DuckDB database crmbridge computes in, shared by everything in the process.

Opening a database costs ~30 ms and a buffer pool and thread pool of its own; a connection
(cursor) to the open one costs microseconds and nothing more. Its clock is UTC.
"""

from __future__ import annotations

import contextlib
import functools

import duckdb


@functools.cache
def _shared_database() -> duckdb.DuckDBPyConnection:
    database = duckdb.connect()
    # Without the ICU extension DuckDB has no time zones and computes in UTC anyway.
    with contextlib.suppress(duckdb.Error):
        database.execute("SET GLOBAL TimeZone = 'UTC'")
    return database


def connect() -> duckdb.DuckDBPyConnection:
    """A new connection (its own registered batches, its own transaction), clock in UTC."""
    return _shared_database().cursor()
