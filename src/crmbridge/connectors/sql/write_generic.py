"""The portable bulk path (SQLite, SQL Server and any other dialect; the base of MySQL).

* insert: with ``guard``, one SELECT of the batch's keys first (chunked ``IN`` lists), then
  ``executemany`` INSERT of the rows whose keys are not stored;
* update: one SELECT of the locators that exist, then ``executemany`` UPDATE;
* delete: one SELECT of the locators that exist, then ``DELETE ... WHERE id IN (...)``.

SQLite runs in-process, so ``executemany`` costs no round trips there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from crmbridge.connectors.sql.reading import fetch_by_keys, key_condition, key_tuples
from crmbridge.connectors.sql.tables import TableInfo
from crmbridge.connectors.sql.writing import VALUE_PREFIX, Target
from crmbridge.core import identity
from crmbridge.core.schema import FieldType

#: dialects whose drivers get dates, date-times and decimals as text (exact, and no
#: deprecated sqlite3 adapters)
_TEXT_TEMPORAL = frozenset({"sqlite", "mysql", "mariadb"})
_AS_TEXT = (FieldType.DATETIME, FieldType.DATE, FieldType.DECIMAL)
#: ids per DELETE ... IN (...)
_DELETE_CHUNK = 1000


class GenericWriter:
    """SELECT what exists, then executemany INSERT / UPDATE and DELETE ... IN."""

    def insert(
        self, conn: sa.Connection, target: Target, rows: pa.Table, *, guard: bool
    ) -> tuple[pa.Array, pa.Array | None]:
        todo = pa.repeat(True, rows.num_rows)
        if guard and target.keys:
            todo = pc.invert(stored_keys(conn, target, rows, list(target.keys)))
        self.insert_rows(conn, target, rows.filter(todo))
        return todo, None

    def update(
        self, conn: sa.Connection, target: Target, rows: pa.Table, fields: Sequence[str]
    ) -> pa.Array:
        found_by = list(target.locator)
        found = stored_keys(conn, target, rows, found_by)
        if fields and pc.any(found).as_py():
            sql = update_sql(conn.dialect, target.info, fields, found_by)
            values = rows.filter(found)
            columns = [VALUE_PREFIX + f for f in fields]
            named = values.select(columns).rename_columns(list(fields))
            data = pa.Table.from_arrays(
                [*named.columns, *values.select(found_by).columns], names=[*fields, *found_by]
            )
            execute_many(conn, sql, data, [*fields, *found_by], target.info)
        return found

    def delete(self, conn: sa.Connection, target: Target, rows: pa.Table) -> pa.Array:
        found_by = list(target.locator)
        found = stored_keys(conn, target, rows, found_by)
        table = target.info.table
        columns = [table.c[k] for k in found_by]
        tuples = key_tuples(target.info, found_by, rows.filter(found))
        for start in range(0, len(tuples), _DELETE_CHUNK):
            where = key_condition(columns, tuples[start : start + _DELETE_CHUNK], conn.dialect.name)
            conn.execute(sa.delete(table).where(where))
        return found

    def insert_rows(self, conn: sa.Connection, target: Target, rows: pa.Table) -> None:
        """INSERT ``rows`` (executemany); engines override this."""
        columns = list(target.columns)
        execute_many(
            conn, insert_sql(conn.dialect, target.info, columns), rows, columns, target.info
        )


def stored_keys(conn: sa.Connection, target: Target, rows: pa.Table, keys: list[str]) -> pa.Array:
    """Per row: is a row with its ``keys`` stored (compared as the database compares)?"""
    if rows.num_rows == 0:
        return pa.array([], pa.bool_())
    stored = fetch_by_keys(conn, target.info, keys, rows.select(keys), [])
    rules = {k: target.info.schema.field(k).key_rule for k in keys}
    wanted = identity.encode(rows, keys, rules)
    return pc.is_valid(identity.positions(wanted, identity.encode(stored, keys, rules)))


# -- SQL text and driver values -----------------------------------------------------------
def placeholder(dialect: sa.Dialect) -> str:
    """The positional parameter marker of the dialect's driver."""
    if dialect.paramstyle == "qmark":
        return "?"
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"parameter style {dialect.paramstyle!r}")  # pragma: no cover


def quoted(dialect: sa.Dialect, names: Sequence[str], *, raw: bool = False) -> list[str]:
    """The names quoted as identifiers where needed, for a statement run with parameters
    (SQLAlchemy doubles ``%`` for drivers whose markers are ``%s``); ``raw``: for a statement
    the driver runs without parameters."""
    return [_unescaped(dialect, dialect.identifier_preparer.quote(n), raw) for n in names]


def table_name(dialect: sa.Dialect, info: TableInfo, *, raw: bool = False) -> str:
    """The table's (schema-qualified) name, quoted; ``raw`` as for :func:`quoted`."""
    return _unescaped(dialect, dialect.identifier_preparer.format_table(info.table), raw)


def _unescaped(dialect: sa.Dialect, text: str, raw: bool) -> str:
    return text.replace("%%", "%") if raw and placeholder(dialect) == "%s" else text


def insert_sql(d: sa.Dialect, info: TableInfo, columns: Sequence[str]) -> str:
    """``INSERT INTO t (a, b) VALUES (?, ?)``."""
    marks = ", ".join([placeholder(d)] * len(columns))
    names = ", ".join(quoted(d, columns))
    return f"INSERT INTO {table_name(d, info)} ({names}) VALUES ({marks})"


def update_sql(d: sa.Dialect, info: TableInfo, fields: Sequence[str], keys: Sequence[str]) -> str:
    """``UPDATE t SET a = ?, b = ? WHERE k = ?`` (parameters: values, then keys)."""
    mark = placeholder(d)
    sets = ", ".join(f"{c} = {mark}" for c in quoted(d, fields))
    where = " AND ".join(f"{c} = {mark}" for c in quoted(d, keys))
    return f"UPDATE {table_name(d, info)} SET {sets} WHERE {where}"


def execute_many(
    conn: sa.Connection, sql: str, rows: pa.Table, columns: Sequence[str], info: TableInfo
) -> None:
    """Run ``sql`` once per row of ``rows`` with the values of ``columns`` (driver executemany)."""
    if rows.num_rows:
        conn.exec_driver_sql(sql, driver_rows(conn.dialect.name, info, rows, columns))


def driver_rows(
    dialect: str, info: TableInfo, rows: pa.Table, columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """``rows`` as tuples of values the DB-API driver binds as they are.

    Date-times are UTC: naive for columns without a time zone. SQLite and MySQL get dates,
    date-times and decimals as text (converted in Arrow, fast and exact).
    """
    values = [_driver_values(dialect, info, rows.column(c), c) for c in columns]
    return list(zip(*values, strict=True))


def _driver_values(dialect: str, info: TableInfo, array: Any, name: str) -> list[Any]:
    values: list[Any] = driver_array(dialect, info, array, name).to_pylist()
    return values


def driver_array(dialect: str, info: TableInfo, array: Any, name: str) -> Any:
    """Column ``name`` as the driver should get it (see :func:`driver_rows`), still Arrow."""
    ftype = info.schema.field(name).type
    if ftype is FieldType.DATETIME:
        aware = dialect == "postgresql" and getattr(info.column(name).type, "timezone", False)
        if not aware:
            array = array.cast(pa.timestamp("us"))
    if dialect in _TEXT_TEMPORAL and ftype in _AS_TEXT:
        array = array.cast(pa.string())
    return array
