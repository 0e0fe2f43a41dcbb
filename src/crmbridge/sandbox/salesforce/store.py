"""SQLite storage: one table per sObject, plus the sandbox's own bookkeeping.

One connection guarded by a re-entrant lock serves every thread. Text columns compare
case-insensitively (``NOCASE``), as SOQL does; ids and references compare exactly. A
soft-deleted record keeps its row with ``IsDeleted = 1`` (the recycle bin); a hard delete
removes the row.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from crmbridge.sandbox.salesforce.ids import make_id
from crmbridge.sandbox.salesforce.objects import NUMBER_TYPES, OBJECTS, FieldDef, ObjectDef
from crmbridge.sandbox.salesforce.values import stamp


def column_type(fdef: FieldDef) -> str:
    if fdef.type in ("boolean", "int"):
        return "INTEGER"
    if fdef.type in NUMBER_TYPES:
        return "REAL"
    if fdef.type in ("id", "reference") or fdef.case_sensitive:
        return "TEXT"
    return "TEXT COLLATE NOCASE"


def _schema_sql() -> list[str]:
    statements = [
        "CREATE TABLE IF NOT EXISTS sandbox_meta (key TEXT PRIMARY KEY, value TEXT)",
        "CREATE TABLE IF NOT EXISTS sandbox_users (username TEXT PRIMARY KEY, "
        "password TEXT, user_id TEXT)",
    ]
    for odef in OBJECTS.values():
        cols = [
            f'"{f.name}" {column_type(f)}' + (" PRIMARY KEY" if f.name == "Id" else "")
            for f in odef.fields
        ]
        statements.append(f"CREATE TABLE IF NOT EXISTS {odef.table} ({', '.join(cols)})")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS idx_{odef.table}_mod "
            f'ON {odef.table} ("SystemModstamp", "Id")'
        )
        for f in odef.fields:
            if f.external_id or f.type == "reference":
                statements.append(
                    f"CREATE INDEX IF NOT EXISTS idx_{odef.table}_{f.name.lower()} "
                    f'ON {odef.table} ("{f.name}")'
                )
    return statements


class Store:
    """The sandbox database. ``clock`` gives the current instant (tests may set it)."""

    def __init__(self, path: str, clock: Callable[[], dt.datetime] | None = None) -> None:
        self._lock = threading.RLock()
        self._savepoints = itertools.count(1)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        with self._lock:
            statements = _schema_sql()
            tables = [t for t in statements if t.startswith("CREATE TABLE")]
            for statement in tables:
                self._conn.execute(statement)
            self._add_new_columns()
            for statement in statements:
                if statement not in tables:
                    self._conn.execute(statement)

    def _add_new_columns(self) -> None:
        """Fields added to the sandbox since a data file was made become columns of it."""
        for odef in OBJECTS.values():
            have = {r[1] for r in self._conn.execute(f"PRAGMA table_info({odef.table})")}
            for f in odef.fields:
                if f.name not in have:
                    self._conn.execute(
                        f'ALTER TABLE {odef.table} ADD COLUMN "{f.name}" {column_type(f)}'
                    )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is applied together or not at all (nests as savepoints)."""
        with self._lock:
            name = f"sp{next(self._savepoints)}"
            self._conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            self._conn.execute(f"RELEASE {name}")

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql, tuple(params)).fetchall()]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        with self._lock:
            return self._conn.execute(sql, tuple(params)).rowcount

    def now(self) -> str:
        """The current instant, stored form, whole seconds (as Salesforce keeps stamps)."""
        return stamp(self.clock().replace(microsecond=0))

    # -- bookkeeping ------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM sandbox_meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self.execute("INSERT OR REPLACE INTO sandbox_meta (key, value) VALUES (?, ?)", (key, value))

    def new_id(self, odef: ObjectDef) -> str:
        """The next id of ``odef`` (ids grow with creation order, like Salesforce's)."""
        with self._lock:
            key = f"seq:{odef.name}"
            number = int(self.meta(key) or "0") + 1
            self.set_meta(key, str(number))
            return make_id(odef.prefix, number)

    # -- records --------------------------------------------------------------------------
    def row(self, odef: ObjectDef, record_id: str) -> dict[str, Any] | None:
        rows = self.query(f'SELECT * FROM {odef.table} WHERE "Id" = ?', (record_id,))
        return rows[0] if rows else None

    def insert(self, odef: ObjectDef, values: dict[str, Any]) -> None:
        names = list(values)
        cols = ", ".join(f'"{n}"' for n in names)
        marks = ", ".join("?" for _ in names)
        self.execute(f"INSERT INTO {odef.table} ({cols}) VALUES ({marks})", list(values.values()))

    def update(self, odef: ObjectDef, record_id: str, values: dict[str, Any]) -> None:
        if not values:
            return
        sets = ", ".join(f'"{n}" = ?' for n in values)
        self.execute(
            f'UPDATE {odef.table} SET {sets} WHERE "Id" = ?', [*values.values(), record_id]
        )

    def remove(self, odef: ObjectDef, record_id: str) -> None:
        self.execute(f'DELETE FROM {odef.table} WHERE "Id" = ?', (record_id,))

    def ids_where(
        self, odef: ObjectDef, fdef: FieldDef, value: Any, *, deleted: bool = False
    ) -> list[str]:
        """Ids of the records whose ``fdef`` equals ``value`` (live ones unless ``deleted``)."""
        live = "" if deleted else ' AND "IsDeleted" = 0'
        rows = self.query(
            f'SELECT "Id" FROM {odef.table} WHERE "{fdef.name}" = ?{live} ORDER BY "Id"',
            (value,),
        )
        return [str(r["Id"]) for r in rows]

    # -- users ----------------------------------------------------------------------------
    def user_id(self, username: str, password: str) -> str | None:
        rows = self.query(
            "SELECT user_id, password FROM sandbox_users WHERE username = ?", (username,)
        )
        if rows and rows[0]["password"] == password:
            return str(rows[0]["user_id"])
        return None

    def user_by_name(self, username: str) -> str | None:
        rows = self.query("SELECT user_id FROM sandbox_users WHERE username = ?", (username,))
        return str(rows[0]["user_id"]) if rows else None
