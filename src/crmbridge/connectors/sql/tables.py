"""Tables and views of a database: reflection into crmbridge schemas, and creating tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from crmbridge.connectors.sql.types import field_for, sql_type_for
from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext


@dataclass(frozen=True)
class TableInfo:
    """A reflected table or view and what crmbridge knows about it."""

    table: sa.Table
    schema: ObjectSchema
    is_view: bool
    #: column sets with a unique constraint or unique index (the primary key included)
    unique_keys: tuple[frozenset[str], ...]

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.table.primary_key.columns)

    def is_unique(self, columns: Sequence[str]) -> bool:
        """Do ``columns`` carry a unique constraint (usable by ON CONFLICT / ON DUPLICATE KEY)?"""
        return frozenset(columns) in self.unique_keys

    def column(self, name: str) -> sa.Column[Any]:
        return self.table.c[name]


def reflect(conn: sa.Connection, name: str, schema: str | None, *, is_view: bool) -> TableInfo:
    """Reflect table or view ``name`` (which must exist) into a :class:`TableInfo`."""
    table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
    pk = [c.name for c in table.primary_key.columns]
    rowid = conn.dialect.name == "sqlite" and len(pk) == 1 and _is_integer_pk(table, pk[0])
    fields = tuple(
        replace(
            field_for(c, rowid_alias=rowid and c.name == pk[0]),
            key_rule=key_rule_for(c, conn.dialect.name),
        )
        for c in table.columns
    )
    id_field = pk[0] if len(pk) == 1 else None
    return TableInfo(
        table=table,
        schema=ObjectSchema(name, fields, id_field=id_field),
        is_view=is_view,
        unique_keys=() if is_view else _unique_keys(conn, name, schema, pk),
    )


def _is_integer_pk(table: sa.Table, name: str) -> bool:
    return isinstance(table.c[name].type, sa.Integer)


def _unique_keys(
    conn: sa.Connection, name: str, schema: str | None, pk: list[str]
) -> tuple[frozenset[str], ...]:
    inspector = sa.inspect(conn)
    found = [frozenset(pk)] if pk else []
    for constraint in inspector.get_unique_constraints(name, schema=schema):
        found.append(frozenset(c for c in constraint["column_names"] if c))
    for index in inspector.get_indexes(name, schema=schema):
        partial = any(
            k.endswith("_where") and v is not None
            for k, v in index.get("dialect_options", {}).items()
        )
        names = index["column_names"]
        if index["unique"] and not partial and all(names):
            found.append(frozenset(c for c in names if c))
    return tuple(dict.fromkeys(found))


def table_for(
    name: str,
    db_schema: str | None,
    schema: ObjectSchema,
    keys: Sequence[str],
    *,
    context: ErrorContext,
) -> sa.Table:
    """The table to create for ``schema``: a column per field.

    The primary key is ``keys`` (the match keys) or else the schema's id field; read-only fields
    are left out; required fields and key columns are NOT NULL.
    """
    key = list(keys) or ([schema.id_field] if schema.id_field else [])
    for k in key:
        schema.field(k, context=context)  # unknown key -> ConfigError with suggestions
    columns = [
        sa.Column(
            f.name,
            sql_type_for(f, key=f.name in key),
            primary_key=f.name in key,
            nullable=not (f.required or f.name in key),
            autoincrement=False,
        )
        for f in schema.fields
        if not f.read_only or f.name in key
    ]
    if not columns:
        raise ConfigError("cannot create a table without columns", context=context)
    return sa.Table(name, sa.MetaData(), *columns, schema=db_schema)


def key_rule_for(column: sa.Column[Any], dialect: str) -> KeyRule:
    """How the database compares values of ``column`` when it looks rows up: MySQL and
    MariaDB's default ``*_ci`` collations, SQLite ``NOCASE`` and PostgreSQL ``citext`` ignore
    case (``casefold``); everything else compares exactly."""
    column_type = column.type
    if type(column_type).__name__.lower() == "citext":
        return KeyRule.CASEFOLD
    if not isinstance(column_type, sa.String):
        return KeyRule.EXACT
    collation = (column_type.collation or "").lower()
    if dialect in ("mysql", "mariadb"):
        if collation.endswith(("_bin", "_cs")) or collation == "binary":
            return KeyRule.EXACT
        return KeyRule.CASEFOLD
    if dialect == "sqlite" and collation == "nocase":
        return KeyRule.CASEFOLD
    return KeyRule.EXACT
