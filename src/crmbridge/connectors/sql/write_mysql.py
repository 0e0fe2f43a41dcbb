"""MariaDB / MySQL bulk path: the portable path, with INSERTs rendered in Arrow.

pymysql is pure Python: it escapes every value of an ``executemany`` one by one and then
sends multi-row ``INSERT ... VALUES (..), (..)`` statements. This writer builds the same
statements, escaping whole columns at once with Arrow string kernels, exactly as pymysql
escapes (backslash escapes, or doubled quotes under ``NO_BACKSLASH_ESCAPES``). A plain
multi-row INSERT, so a clash with a unique index is an error (and a rejected row), never a
silent update of another record. Updates and deletes take the portable path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from crmbridge.connectors.sql.failures import driver_errors
from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.connectors.sql.write_generic import GenericWriter, driver_array, quoted, table_name
from crmbridge.connectors.sql.writing import Target

#: largest statement sent (MariaDB's max_allowed_packet defaults to 16 MB)
MAX_STATEMENT_BYTES = 4 * 1024 * 1024
#: pymysql's escapes, backslash first
_BACKSLASH_ESCAPES = (
    ("\\", "\\\\"),
    ("\0", "\\0"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\x1a", "\\Z"),
    ("'", "\\'"),
    ('"', '\\"'),
)
#: pymysql.constants.SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES
_NO_BACKSLASH_ESCAPES = 512


class MySqlWriter(GenericWriter):
    """GenericWriter whose INSERTs are rendered in Arrow."""

    def insert_rows(self, conn: sa.Connection, target: Target, rows: pa.Table) -> None:
        columns = list(target.columns)
        table = table_name(conn.dialect, target.info, raw=True)
        head = f"INSERT INTO {table} ({_names(conn, columns)}) VALUES "
        _execute(conn, head, _value_rows(conn, target.info, rows, columns), "")


def _names(conn: sa.Connection, names: Sequence[str]) -> str:
    return ", ".join(quoted(conn.dialect, names, raw=True))


def _value_rows(
    conn: sa.Connection, info: TableInfo, rows: pa.Table, columns: Sequence[str]
) -> list[str]:
    """``(v1, v2, ...)`` per row, every value an escaped SQL literal."""
    if not rows.num_rows:
        return []
    backslash = not _no_backslash_escapes(conn)
    literals = [
        literal_column(driver_array("mysql", info, rows.column(c), c), backslash=backslash)
        for c in columns
    ]
    joined = pc.binary_join_element_wise(*literals, ", ")
    values: list[str] = pc.binary_join_element_wise("(", joined, ")", "").to_pylist()
    return values


def _no_backslash_escapes(conn: sa.Connection) -> bool:
    """Does the session have ``NO_BACKSLASH_ESCAPES`` (then only quotes are doubled)?"""
    status = getattr(_raw(conn), "server_status", None)  # pymysql tracks it
    if status is not None:
        return bool(status & _NO_BACKSLASH_ESCAPES)
    mode = conn.exec_driver_sql("SELECT @@SESSION.sql_mode").scalar_one()
    return "NO_BACKSLASH_ESCAPES" in str(mode)


def literal_column(array: Any, *, backslash: bool = True) -> Any:
    """Every value of ``array`` as a MySQL literal: NULL, a number, 1/0, or a quoted string."""
    dtype = array.type
    if pa.types.is_boolean(dtype):
        text = pc.if_else(array, "1", "0")
    elif pa.types.is_integer(dtype) or pa.types.is_decimal(dtype):
        text = array.cast(pa.string())
    elif pa.types.is_floating(dtype):
        text = array.cast(pa.string())
        finite = pc.is_finite(array)  # 'nan' would be read as a column name: quote it
        text = pc.if_else(finite, text, pc.binary_join_element_wise("'", text, "'", ""))
    else:
        text = array.cast(pa.string())
        if backslash:
            for old, new in _BACKSLASH_ESCAPES:
                text = pc.replace_substring(text, old, new)
        else:
            text = pc.replace_substring(text, "'", "''")
        text = pc.binary_join_element_wise("'", text, "'", "")
    return pc.fill_null(text, "NULL")


def _statements(head: str, rows: list[str], tail: str) -> Iterator[str]:
    """``head`` + rows joined by commas + ``tail``, split to stay under MAX_STATEMENT_BYTES."""
    start, size = 0, len(head) + len(tail)
    for i, row in enumerate(rows):
        if i > start and size + len(row) * 4 > MAX_STATEMENT_BYTES:
            yield head + ", ".join(rows[start:i]) + tail
            start, size = i, len(head) + len(tail)
        size += len(row) * 4 + 2  # at most 4 bytes of UTF-8 per character
    if start < len(rows):
        yield head + ", ".join(rows[start:]) + tail


def _raw(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection


def _execute(conn: sa.Connection, head: str, rows: list[str], tail: str) -> None:
    """Run the statements through the driver without parameters (so ``%`` stays as it is)."""
    for sql in _statements(head, rows, tail):
        with driver_errors(conn, head + "..."), _raw(conn).cursor() as cursor:
            cursor.execute(sql)
