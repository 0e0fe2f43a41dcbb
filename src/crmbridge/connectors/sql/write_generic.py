"""The portable bulk path (SQL Server and any other dialect; the base of MySQL and SQLite).

Per batch: one SELECT of the rows whose match keys are in the batch (chunked ``IN`` lists),
compared with the batch in Arrow to tell new / changed / unchanged rows apart, then
``executemany`` INSERT for new rows, ``executemany`` UPDATE for changed ones and
``DELETE ... WHERE key IN (...)`` for deletions. Unchanged rows are not written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from crmbridge.connectors.sql.reading import fetch_by_keys, key_condition, key_tuples
from crmbridge.connectors.sql.writing import WritePlan, choose, finish, key_text
from crmbridge.core.outcomes import Outcome, WriteMode, WriteResult
from crmbridge.core.schema import FieldType

#: dialects whose drivers get dates, date-times and decimals as text (exact, and no
#: deprecated sqlite3 adapters)
_TEXT_TEMPORAL = frozenset({"sqlite", "mysql", "mariadb"})
_AS_TEXT = (FieldType.DATETIME, FieldType.DATE, FieldType.DECIMAL)


@dataclass(frozen=True)
class Match:
    """The batch compared with the stored rows, row by row."""

    exists: pa.Array  # bool: a stored row has the row's match keys
    changed: pa.Array  # bool: it exists and a written value differs from the stored one
    ids: pa.Array | None  # string: the stored primary key, when it was fetched


class GenericWriter:
    """SELECT existing keys, then executemany INSERT / UPDATE and DELETE ... IN."""

    def prepare(self, conn: sa.Connection, plan: WritePlan) -> None:
        """Nothing to prepare."""

    def apply(self, conn: sa.Connection, plan: WritePlan, data: pa.Table) -> WriteResult:
        n = data.num_rows
        if not plan.keys:
            self.insert(conn, plan, data)
            return finish(plan, data, choose(n, Outcome.CREATED), None)
        match = self.match(conn, plan, data)
        exists, changed = match.exists, match.changed
        mode = plan.mode
        if mode is WriteMode.INSERT:
            self.insert(conn, plan, data.filter(pc.invert(exists)))
            outcome = choose(n, Outcome.CREATED, (exists, Outcome.REJECTED))
        elif mode is WriteMode.UPDATE:
            self.update(conn, plan, data.filter(changed))
            outcome = choose(
                n,
                Outcome.UNCHANGED,
                (pc.invert(exists), Outcome.REJECTED),
                (changed, Outcome.UPDATED),
            )
        elif mode is WriteMode.UPSERT:
            self.upsert(conn, plan, data.filter(pc.invert(exists)), data.filter(changed))
            outcome = choose(
                n,
                Outcome.UNCHANGED,
                (pc.invert(exists), Outcome.CREATED),
                (changed, Outcome.UPDATED),
            )
        else:
            self.delete(conn, plan, data.filter(exists))
            outcome = choose(n, Outcome.DELETED, (pc.invert(exists), Outcome.REJECTED))
        ids = match.ids
        if plan.needs_db_ids and mode in (WriteMode.INSERT, WriteMode.UPSERT):
            ids = self.stored_ids(conn, plan, data)
        return finish(plan, data, outcome, ids)

    # -- comparing with what is stored --------------------------------------------------
    def fetch(
        self, conn: sa.Connection, plan: WritePlan, keys: pa.Table, columns: Sequence[str]
    ) -> pa.Table:
        """The stored rows whose match keys are rows of ``keys``: keys, then ``columns``."""
        return fetch_by_keys(conn, plan.info, plan.keys, keys, columns)

    def match(self, conn: sa.Connection, plan: WritePlan, data: pa.Table) -> Match:
        """Fetch the stored rows with the batch's keys and compare them with the batch."""
        compare = plan.values if plan.mode in (WriteMode.UPDATE, WriteMode.UPSERT) else ()
        columns = list(compare)
        if plan.needs_db_ids and plan.id_column is not None:
            columns.append(plan.id_column)
        stored = self.fetch(conn, plan, data.select(list(plan.keys)), columns)
        index = pc.index_in(key_text(data, plan.keys), value_set=key_text(stored, plan.keys))
        exists = pc.is_valid(index)
        old = stored.take(index)
        same = pa.repeat(True, data.num_rows)
        for name in compare:
            new_value, old_value = data.column(name), old.column(name)
            equal = pc.fill_null(pc.equal(new_value, old_value), False)
            both_null = pc.and_(pc.is_null(new_value), pc.is_null(old_value))
            same = pc.and_(same, pc.or_(equal, both_null))
        ids = None
        if plan.needs_db_ids and plan.id_column is not None:
            ids = old.column(plan.id_column).cast(pa.string()).combine_chunks()
        return Match(exists, pc.and_(exists, pc.invert(same)), ids)

    def stored_ids(self, conn: sa.Connection, plan: WritePlan, data: pa.Table) -> pa.Array:
        """The database-generated primary key of each row of ``data``, by its match keys."""
        assert plan.id_column is not None
        stored = self.fetch(conn, plan, data.select(list(plan.keys)), [plan.id_column])
        index = pc.index_in(key_text(data, plan.keys), value_set=key_text(stored, plan.keys))
        return stored.column(plan.id_column).cast(pa.string()).take(index).combine_chunks()

    # -- statements (engines override these) ------------------------------------------
    def insert(self, conn: sa.Connection, plan: WritePlan, rows: pa.Table) -> None:
        """INSERT ``rows`` (executemany)."""
        execute_many(conn, insert_sql(conn.dialect, plan), rows, plan.columns, plan)

    def update(self, conn: sa.Connection, plan: WritePlan, rows: pa.Table) -> None:
        """UPDATE the stored rows matching ``rows`` (executemany)."""
        if plan.values:
            execute_many(
                conn, update_sql(conn.dialect, plan), rows, (*plan.values, *plan.keys), plan
            )

    def upsert(
        self, conn: sa.Connection, plan: WritePlan, new: pa.Table, changed: pa.Table
    ) -> None:
        """INSERT ``new`` and UPDATE ``changed`` (rows known to exist)."""
        self.insert(conn, plan, new)
        self.update(conn, plan, changed)

    def delete(self, conn: sa.Connection, plan: WritePlan, rows: pa.Table) -> None:
        """DELETE the stored rows matching ``rows`` (chunked ``IN`` lists)."""
        table = plan.info.table
        columns = [table.c[k] for k in plan.keys]
        tuples = key_tuples(plan.info, plan.keys, rows)
        step = 1000
        for start in range(0, len(tuples), step):
            where = key_condition(columns, tuples[start : start + step], conn.dialect.name)
            conn.execute(sa.delete(table).where(where))


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


def table_name(dialect: sa.Dialect, plan: WritePlan, *, raw: bool = False) -> str:
    """The table's (schema-qualified) name, quoted; ``raw`` as for :func:`quoted`."""
    return _unescaped(dialect, dialect.identifier_preparer.format_table(plan.info.table), raw)


def _unescaped(dialect: sa.Dialect, text: str, raw: bool) -> str:
    return text.replace("%%", "%") if raw and placeholder(dialect) == "%s" else text


def insert_sql(d: sa.Dialect, plan: WritePlan) -> str:
    """``INSERT INTO t (a, b) VALUES (?, ?)``."""
    marks = ", ".join([placeholder(d)] * len(plan.columns))
    columns = ", ".join(quoted(d, plan.columns))
    return f"INSERT INTO {table_name(d, plan)} ({columns}) VALUES ({marks})"


def update_sql(d: sa.Dialect, plan: WritePlan) -> str:
    """``UPDATE t SET a = ?, b = ? WHERE k = ?`` (parameters: values, then keys)."""
    mark = placeholder(d)
    sets = ", ".join(f"{c} = {mark}" for c in quoted(d, plan.values))
    where = " AND ".join(f"{c} = {mark}" for c in quoted(d, plan.keys))
    return f"UPDATE {table_name(d, plan)} SET {sets} WHERE {where}"


def execute_many(
    conn: sa.Connection, sql: str, rows: pa.Table, columns: Sequence[str], plan: WritePlan
) -> None:
    """Run ``sql`` once per row of ``rows`` with the values of ``columns`` (driver executemany)."""
    if rows.num_rows:
        conn.exec_driver_sql(sql, driver_rows(conn.dialect.name, plan, rows, columns))


def driver_rows(
    dialect: str, plan: WritePlan, rows: pa.Table, columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """``rows`` as tuples of values the DB-API driver binds as they are.

    Date-times are UTC: naive for columns without a time zone. SQLite and MySQL get dates,
    date-times and decimals as text (converted in Arrow, fast and exact).
    """
    values = [_driver_values(dialect, plan, rows.column(c), c) for c in columns]
    return list(zip(*values, strict=True))


def _driver_values(dialect: str, plan: WritePlan, array: Any, name: str) -> list[Any]:
    values: list[Any] = driver_array(dialect, plan, array, name).to_pylist()
    return values


def driver_array(dialect: str, plan: WritePlan, array: Any, name: str) -> Any:
    """Column ``name`` as the driver should get it (see :func:`driver_rows`), still Arrow."""
    ftype = plan.info.schema.field(name).type
    if ftype is FieldType.DATETIME:
        aware = dialect == "postgresql" and getattr(plan.info.column(name).type, "timezone", False)
        if not aware:
            array = array.cast(pa.timestamp("us"))
    if dialect in _TEXT_TEMPORAL and ftype in _AS_TEXT:
        array = array.cast(pa.string())
    return array
