"""MariaDB / MySQL bulk path: the portable path, with statements rendered in Arrow.

pymysql is pure Python: it escapes every value of an ``executemany`` one by one and then
sends multi-row ``INSERT ... VALUES (..), (..)`` statements. This writer builds the same
statements, escaping whole columns at once with Arrow string kernels, exactly as pymysql
escapes (backslash escapes, or doubled quotes under ``NO_BACKSLASH_ESCAPES``). The key lookup
``SELECT ... WHERE key IN (...)`` is rendered the same way.

* new rows: a plain multi-row INSERT, so a clash with another unique index is an error (and
  a rejected row), never a silent update of a different record;
* changed rows (known to exist from the key lookup): multi-row
  ``INSERT ... ON DUPLICATE KEY UPDATE`` when the match keys carry a unique index and the batch
  has every NOT NULL column without a default (MySQL checks those before it finds the
  duplicate); otherwise one ``UPDATE`` per row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from crmbridge.connectors.sql.failures import driver_errors
from crmbridge.connectors.sql.reading import rows_to_batch
from crmbridge.connectors.sql.write_generic import GenericWriter, driver_array, quoted, table_name
from crmbridge.connectors.sql.writing import WritePlan

#: largest statement sent (MariaDB's max_allowed_packet defaults to 16 MB)
MAX_STATEMENT_BYTES = 4 * 1024 * 1024
#: keys per lookup statement
KEYS_PER_LOOKUP = 5_000
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
    """GenericWriter whose INSERTs, multi-row updates and key lookups are rendered in Arrow."""

    def insert(self, conn: sa.Connection, plan: WritePlan, rows: pa.Table) -> None:
        _execute(conn, _insert_head(conn, plan), _value_rows(conn, plan, rows, plan.columns), "")

    def update(self, conn: sa.Connection, plan: WritePlan, rows: pa.Table) -> None:
        if not (plan.values and plan.info.is_unique(plan.keys) and plan.required_present):
            super().update(conn, plan, rows)
            return
        sets = ", ".join(f"{c} = VALUES({c})" for c in quoted(conn.dialect, plan.values, raw=True))
        tail = f" ON DUPLICATE KEY UPDATE {sets}"
        _execute(conn, _insert_head(conn, plan), _value_rows(conn, plan, rows, plan.columns), tail)

    def delete(self, conn: sa.Connection, plan: WritePlan, rows: pa.Table) -> None:
        head = f"DELETE FROM {_table(conn, plan)} WHERE "
        for where in _key_in_lists(conn, plan, rows):
            with driver_errors(conn, head + "..."), _raw(conn).cursor() as cursor:
                cursor.execute(head + where)

    def fetch(
        self, conn: sa.Connection, plan: WritePlan, keys: pa.Table, columns: Sequence[str]
    ) -> pa.Table:
        names = list(dict.fromkeys([*plan.keys, *columns]))
        fields = [plan.info.schema.field(n) for n in names]
        schema = pa.schema([pa.field(f.name, f.arrow_type) for f in fields])
        head = (
            f"SELECT {_names(conn, names)} FROM {table_name(conn.dialect, plan, raw=True)} WHERE "
        )
        batches = [
            rows_to_batch(_query(conn, head + where), fields)
            for where in _key_in_lists(conn, plan, keys)
        ]
        return pa.Table.from_batches(batches, schema=schema)


def _key_in_lists(conn: sa.Connection, plan: WritePlan, keys: pa.Table) -> Iterator[str]:
    """``k IN (..)`` / ``(k1, k2) IN ((..), (..))`` for the rows of ``keys`` without NULLs,
    KEYS_PER_LOOKUP at a time."""
    keys = keys.filter(pc.invert(_any_null(keys.select(list(plan.keys)))))
    composite = len(plan.keys) > 1
    column = f"({_names(conn, plan.keys)})" if composite else _names(conn, plan.keys)
    for start in range(0, keys.num_rows, KEYS_PER_LOOKUP):
        part = keys.slice(start, KEYS_PER_LOOKUP)
        values = _value_rows(conn, plan, part, plan.keys, row=composite)
        yield f"{column} IN ({', '.join(values)})"


def _names(conn: sa.Connection, names: Sequence[str]) -> str:
    return ", ".join(quoted(conn.dialect, names, raw=True))


def _table(conn: sa.Connection, plan: WritePlan) -> str:
    return table_name(conn.dialect, plan, raw=True)


def _insert_head(conn: sa.Connection, plan: WritePlan) -> str:
    return f"INSERT INTO {_table(conn, plan)} ({_names(conn, plan.columns)}) VALUES "


def _any_null(table: pa.Table) -> pa.Array:
    mask = pa.repeat(False, table.num_rows)
    for column in table.columns:
        mask = pc.or_(mask, pc.is_null(column))
    return mask


def _value_rows(
    conn: sa.Connection,
    plan: WritePlan,
    rows: pa.Table,
    columns: Sequence[str],
    *,
    row: bool = True,
) -> list[str]:
    """``(v1, v2, ...)`` per row (``v1`` alone when not ``row``), every value an escaped
    SQL literal."""
    if not rows.num_rows:
        return []
    backslash = not _no_backslash_escapes(conn)
    literals = [
        literal_column(driver_array("mysql", plan, rows.column(c), c), backslash=backslash)
        for c in columns
    ]
    joined = pc.binary_join_element_wise(*literals, ", ")
    if row:
        joined = pc.binary_join_element_wise("(", joined, ")", "")
    values: list[str] = joined.to_pylist()
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


def _query(conn: sa.Connection, sql: str) -> list[Any]:
    with driver_errors(conn, sql[:200] + "..."), _raw(conn).cursor() as cursor:
        cursor.execute(sql)
        rows: list[Any] = cursor.fetchall()
        return rows
