"""SQL column types <-> crmbridge field types.

Reading: :func:`field_for` describes a reflected column. Creating tables: :func:`sql_type_for`
picks the column type for a field on each dialect.
"""

from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa

from crmbridge.core.schema import (
    DEFAULT_DECIMAL_PRECISION,
    DEFAULT_DECIMAL_SCALE,
    Field,
    FieldType,
)

#: largest precision an Arrow decimal128 holds; wider database decimals are read as this
MAX_DECIMAL_PRECISION = 38
#: VARCHAR length used for keys and enum/id fields without a length when creating tables
DEFAULT_KEY_LENGTH = 255
#: text fields longer than this become TEXT / CLOB columns when creating tables
MAX_VARCHAR_LENGTH = 4000


def _mysql_types() -> Any:
    """SQLAlchemy's MySQL dialect when it is loaded, else None: a reflected type can only be
    one of its types then, and importing it costs ~90 ms for every other database."""
    return sys.modules.get("sqlalchemy.dialects.mysql")


def field_type_of(sqltype: sa.types.TypeEngine[Any]) -> tuple[FieldType, dict[str, Any]] | None:
    """The field type (and length/precision/allowed values) for a SQL type; None: unsupported."""
    if isinstance(sqltype, sa.Boolean):
        return FieldType.BOOLEAN, {}
    mysql = _mysql_types()
    if mysql is not None and isinstance(sqltype, mysql.TINYINT) and sqltype.display_width == 1:
        return FieldType.BOOLEAN, {}  # MySQL / MariaDB BOOLEAN is TINYINT(1)
    if isinstance(sqltype, sa.Enum):
        values = tuple(str(v) for v in sqltype.enums)
        return FieldType.ENUM, {
            "allowed_values": values,
            "length": max((len(v) for v in values), default=None),
        }
    if isinstance(sqltype, sa.Uuid):
        return FieldType.ID, {"length": 36}
    if isinstance(sqltype, sa.Integer):
        return FieldType.INTEGER, {}
    if isinstance(sqltype, sa.Float):  # before Numeric: Float is a Numeric
        return FieldType.FLOAT, {}
    if isinstance(sqltype, sa.Numeric):
        return FieldType.DECIMAL, _decimal_size(sqltype.precision, sqltype.scale)
    if isinstance(sqltype, sa.DateTime):
        return FieldType.DATETIME, {}
    if isinstance(sqltype, sa.Date):
        return FieldType.DATE, {}
    if isinstance(sqltype, sa.String) and not isinstance(sqltype, sa.JSON):
        if mysql is not None and isinstance(sqltype, mysql.SET):
            return None
        length = sqltype.length
        if length and not isinstance(sqltype, sa.Text):
            return FieldType.STRING, {"length": length}
        return FieldType.TEXT, {}
    return None


def _decimal_size(precision: int | None, scale: int | None) -> dict[str, Any]:
    if precision is None:
        return {"precision": DEFAULT_DECIMAL_PRECISION, "scale": DEFAULT_DECIMAL_SCALE}
    precision = min(precision, MAX_DECIMAL_PRECISION)
    return {"precision": precision, "scale": min(scale or 0, precision)}


def has_default(column: sa.Column[Any]) -> bool:
    """The database fills the column when an insert leaves it out."""
    return (
        column.server_default is not None
        or column.identity is not None
        or column.autoincrement is True
        or column.computed is not None
    )


def is_generated(column: sa.Column[Any]) -> bool:
    """Computed, or an identity the database always generates: never written."""
    identity = column.identity
    return column.computed is not None or (identity is not None and bool(identity.always))


def field_for(column: sa.Column[Any], *, rowid_alias: bool = False) -> Field:
    """The crmbridge field describing a reflected column.

    ``rowid_alias``: the column is SQLite's ``INTEGER PRIMARY KEY`` (filled when left out).
    Columns of types crmbridge does not carry (binary, time of day, JSON, arrays, intervals)
    are read as text and are read-only.
    """
    mapped = field_type_of(column.type)
    ftype, extra = mapped if mapped else (FieldType.TEXT, {})
    generated = is_generated(column)
    return Field(
        name=column.name,
        type=ftype,
        required=not column.nullable and not has_default(column) and not rowid_alias,
        key=column.primary_key,
        read_only=generated or mapped is None,
        label=column.comment or None,
        **extra,
    )


def sql_type_for(field: Field, *, key: bool = False) -> sa.types.TypeEngine[Any]:
    """The column type to create for ``field`` (portable across the supported dialects)."""
    ftype = field.type
    if ftype is FieldType.INTEGER:
        return sa.BigInteger()
    if ftype is FieldType.DECIMAL:
        return sa.Numeric(
            field.precision or DEFAULT_DECIMAL_PRECISION,
            DEFAULT_DECIMAL_SCALE if field.scale is None else field.scale,
        )
    if ftype is FieldType.FLOAT:
        return sa.Double()
    if ftype is FieldType.BOOLEAN:
        return sa.Boolean()
    if ftype is FieldType.DATE:
        return sa.Date()
    if ftype is FieldType.DATETIME:
        from sqlalchemy.dialects import mysql

        return sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    length = field.length
    if ftype is FieldType.TEXT and not key:
        return sa.UnicodeText()
    if length is None and (key or ftype in (FieldType.ENUM, FieldType.ID)):
        length = max(len(v) for v in field.allowed_values) if field.allowed_values else None
        length = length or DEFAULT_KEY_LENGTH
    if length is None or (length > MAX_VARCHAR_LENGTH and not key):
        return sa.UnicodeText()
    return sa.Unicode(length)
