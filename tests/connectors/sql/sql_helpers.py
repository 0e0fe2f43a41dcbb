"""Shared helpers of the SQL connector tests: tables in SQLAlchemy Core, rows, batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from crmbridge.connectors.base import ROW_COLUMN
from crmbridge.connectors.sql import SqlConnector, SqlSettings
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import Field, FieldType, ObjectSchema
from crmbridge.testing.writes import write_records

UTC = dt.UTC
#: date-times with microseconds on MariaDB too
DATETIME = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def people(metadata: sa.MetaData, name: str = "people") -> sa.Table:
    """A table with one column of every field type and a primary key."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("email", sa.String(60)),
        sa.Column("score", sa.Numeric(10, 2)),
        sa.Column("born", sa.Date),
        sa.Column("seen", DATETIME),
        sa.Column("active", sa.Boolean),
        sa.Column("rating", sa.Float),
        sa.Column("notes", sa.Text),
    )


PEOPLE = [
    {
        "id": 1,
        "name": "Ada",
        "email": "ada@example.com",
        "score": Decimal("12.50"),
        "born": dt.date(1815, 12, 10),
        "seen": dt.datetime(2024, 3, 1, 9, 30, 0, 123456, tzinfo=UTC),
        "active": True,
        "rating": 4.5,
        "notes": "Über «quotes» 'and' \"more\"",
    },
    {
        "id": 2,
        "name": "Bob",
        "email": None,
        "score": Decimal("-3.00"),
        "born": None,
        "seen": dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
        "active": False,
        "rating": None,
        "notes": "",
    },
    {
        "id": 3,
        "name": "Chloé",
        "email": "c@example.com",
        "score": None,
        "born": dt.date(2000, 2, 29),
        "seen": None,
        "active": None,
        "rating": -1.25,
        "notes": None,
    },
    {
        "id": 4,
        "name": "Dan, Jr.",
        "email": "dan@example.com",
        "score": Decimal("99999999.99"),
        "born": dt.date(1970, 1, 1),
        "seen": dt.datetime(1999, 1, 1, tzinfo=UTC),
        "active": True,
        "rating": 0.0,
        "notes": "line one\nline two",
    },
    {
        "id": 5,
        "name": "Eve",
        "email": "eve@example.com",
        "score": Decimal("0.01"),
        "born": dt.date(1990, 6, 15),
        "seen": dt.datetime(2030, 6, 15, 12, 0, tzinfo=UTC),
        "active": False,
        "rating": 1e10,
        "notes": "tab\there",
    },
]


def create(url: str, *tables: Any, rows: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Create tables (builders taking a MetaData) in the database at ``url`` and fill them."""
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    built = [make(metadata) for make in tables]
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            for table in built:
                if rows and rows.get(table.name):
                    conn.execute(table.insert(), rows[table.name])
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> list[Any]:
    """Run SQL statements at ``url``; the rows of the last one."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result: list[Any] = []
            for statement in statements:
                res = conn.exec_driver_sql(statement)
                result = list(res.all()) if res.returns_rows else []
            return result
    finally:
        engine.dispose()


def connector(url: str, base_dir: Path | None = None, **settings: Any) -> SqlConnector:
    """An opened SQL connector for ``url``."""
    conn = SqlConnector("testdb", SqlSettings(url=url, **settings), base_dir=base_dir)
    conn.open()
    return conn


def batch(rows: Sequence[dict[str, Any]], types: dict[str, pa.DataType]) -> pa.RecordBatch:
    """A write batch of ``rows`` typed per ``types`` (field -> Arrow type), plus ROW_COLUMN."""
    names = list(rows[0])
    arrays = [pa.array([r[n] for r in rows], types[n]) for n in names]
    arrays.append(pa.array(range(1, len(rows) + 1), pa.int64()))
    return pa.RecordBatch.from_arrays(arrays, names=[*names, ROW_COLUMN])


def write(
    conn: SqlConnector,
    object: str,
    rows: Sequence[dict[str, Any]],
    mode: WriteMode,
    keys: Sequence[str] = (),
    update_fields: Sequence[str] | None = None,
) -> WriteResult:
    schema = conn.describe(object)
    types = {f.name: f.arrow_type for f in schema.fields}
    return write_records(
        conn,
        object,
        batch(rows, types),
        mode,
        keys=keys,
        update_fields=update_fields,
        checks=False,  # what the database itself says
    )


def stored(url: str, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in execute(url, sql)]


#: the fields of a table to create (every field type, a read-only field left out)
SOURCE = ObjectSchema(
    "deals",
    (
        Field("id", FieldType.INTEGER, key=True),
        Field("code", FieldType.STRING, length=12, required=True),
        Field("amount", FieldType.DECIMAL, precision=12, scale=2),
        Field("rate", FieldType.FLOAT),
        Field("won", FieldType.BOOLEAN),
        Field("day", FieldType.DATE),
        Field("at", FieldType.DATETIME),
        Field("notes", FieldType.TEXT),
        Field("stage", FieldType.ENUM, allowed_values=("open", "won")),
        Field("owner", FieldType.ID),
        Field("computed", FieldType.STRING, read_only=True),
    ),
    id_field="id",
)
