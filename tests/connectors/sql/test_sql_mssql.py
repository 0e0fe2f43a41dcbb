"""SQL Server cannot run here (no server, no ODBC driver): check the SQL generated for it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import sqlalchemy as sa
from sql_helpers import SOURCE, people
from sqlalchemy.dialects.mssql.pyodbc import MSDialect_pyodbc

from crmbridge.connectors.sql.reading import key_condition
from crmbridge.connectors.sql.tables import TableInfo, table_for
from crmbridge.connectors.sql.types import field_for
from crmbridge.connectors.sql.write_generic import driver_rows, insert_sql, update_sql
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ErrorContext


def _sql_server_2022() -> MSDialect_pyodbc:
    """The pyodbc dialect as initialised by a connection to SQL Server 2022."""
    dialect = MSDialect_pyodbc(paramstyle="qmark")
    dialect.server_version_info = (16, 0)
    dialect._supports_nvarchar_max = True
    dialect._setup_version_attributes()
    return dialect


MSSQL = _sql_server_2022()


def people_info() -> TableInfo:
    table = people(sa.MetaData(schema="crm"))
    schema = ObjectSchema("people", tuple(field_for(c) for c in table.columns), id_field="id")
    return TableInfo(table, schema, is_view=False, unique_keys=(frozenset({"id"}),))


def compiled(statement: sa.ClauseElement) -> str:
    return " ".join(str(statement.compile(dialect=MSSQL)).split())


def test_insert_and_update_use_qmark_parameters() -> None:
    columns = ("id", "name", "seen", "score")
    assert insert_sql(MSSQL, people_info(), columns) == (
        "INSERT INTO crm.people (id, name, seen, score) VALUES (?, ?, ?, ?)"
    )
    assert update_sql(MSSQL, people_info(), columns[1:], ["id"]) == (
        "UPDATE crm.people SET name = ?, seen = ?, score = ? WHERE id = ?"
    )


def test_reserved_words_are_bracketed() -> None:
    table = sa.Table("order", sa.MetaData(), sa.Column("key", sa.Integer), sa.Column("x", sa.Text))
    schema = ObjectSchema("order", tuple(field_for(c) for c in table.columns))
    info = TableInfo(table, schema, is_view=False, unique_keys=())
    update = update_sql(MSSQL, info, ["x"], ["key"])
    assert update == "UPDATE [order] SET x = ? WHERE [key] = ?"


def test_composite_keys_are_matched_without_row_values() -> None:
    table = people(sa.MetaData())
    where = key_condition([table.c.id, table.c.name], [(1, "a"), (2, "b")], "mssql")
    assert compiled(sa.delete(table).where(where)) == (
        "DELETE FROM people WHERE people.id = ? AND people.name = ? "
        "OR people.id = ? AND people.name = ?"
    )
    single = key_condition([table.c.id], [(1,), (2,)], "mssql")
    assert compiled(sa.select(table.c.id).where(single)) == (
        "SELECT people.id FROM people WHERE people.id IN (__[POSTCOMPILE_id_1])"
    )


def test_driver_values_are_naive_utc_and_decimals() -> None:
    rows = pa.table(
        {
            "id": [1],
            "name": ["Ada"],
            "seen": pa.array(
                [dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)], pa.timestamp("us", "UTC")
            ),
            "score": pa.array([Decimal("1.50")], pa.decimal128(10, 2)),
        }
    )
    assert driver_rows("mssql", people_info(), rows, ["id", "name", "seen", "score"]) == [
        (1, "Ada", dt.datetime(2024, 1, 1, 10), Decimal("1.50"))
    ]


def test_created_tables_use_sql_server_types() -> None:
    table = table_for("deals", "crm", SOURCE, ["code"], context=ErrorContext())
    ddl = compiled(sa.schema.CreateTable(table))
    for expected in (
        "CREATE TABLE crm.deals (",
        "id BIGINT NULL",
        "code NVARCHAR(12) NOT NULL",
        "amount NUMERIC(12, 2) NULL",
        "won BIT NULL",
        "day DATE NULL",
        "at DATETIMEOFFSET NULL",
        "notes NVARCHAR(max) NULL",
        "stage NVARCHAR(4) NULL",
        "PRIMARY KEY (code)",
    ):
        assert expected in ddl, ddl
    assert "computed" not in ddl
