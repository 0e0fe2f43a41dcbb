"""Nested values: records (structs) and lists of them, as declared in ``source.types``.

A declared type is a :class:`~crmbridge.core.schema.FieldType` name, a mapping of field names
to declared types (a record: ``{name: string, email: string}``), or a list of one declared type
(``[{sku: string, quantity: integer}]``: an array). Its Arrow type is a struct or a list, so
``customer.name`` in an expression is the field of a value, and an array can become the child
records of its parent (``children:`` in a profile).

A source delivers nested values as JSON text (JSON Lines, a text column): :func:`json_sql`
parses that text into the declared shape with DuckDB, converting every leaf by the same rules
as ``cast`` (docs/expressions.md "Conversions"). Text that is not JSON, not of the declared
shape (an array where a record is declared), or with a leaf that does not convert, gives NULL,
so the record is rejected with the value and the declared type in the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from crmbridge.core.duck import duckdb_type
from crmbridge.core.expressions import convert_sql, kind_of
from crmbridge.core.schema import FieldType, arrow_type
from crmbridge.errors import ConfigError

#: what ``source.types`` may say of one field
TypeSpec = FieldType | Mapping[str, Any] | Sequence[Any]


def spec_arrow_type(spec: TypeSpec) -> pa.DataType:
    """The Arrow type of a declared type (a ConfigError for a malformed one)."""
    if isinstance(spec, FieldType):
        return arrow_type(spec)
    if isinstance(spec, str):
        try:
            return arrow_type(FieldType(spec))
        except ValueError:
            known = ", ".join(t.value for t in FieldType)
            raise ConfigError(f"unknown type {spec!r}; use one of {known}") from None
    if isinstance(spec, Mapping):
        if not spec:
            raise ConfigError("a record type needs at least one field")
        return pa.struct([pa.field(str(k), spec_arrow_type(v)) for k, v in spec.items()])
    if isinstance(spec, Sequence) and len(spec) == 1:
        return pa.list_(spec_arrow_type(spec[0]))
    raise ConfigError("a list type has exactly one item type, e.g. [{sku: string}]")


def is_nested(dtype: pa.DataType) -> bool:
    """A record, or a list of anything but text (a CRM multi-select stays a plain list)."""
    if pa.types.is_struct(dtype):
        return True
    return bool(pa.types.is_list(dtype) and not pa.types.is_string(dtype.value_type))


def is_record_list(dtype: pa.DataType) -> bool:
    """A list of records: what ``children:`` turns into child records."""
    return bool(pa.types.is_list(dtype) and pa.types.is_struct(dtype.value_type))


def describe(dtype: pa.DataType) -> str:
    """``JSON object {name: text, quantity: integer}``: a nested type, for messages."""
    if pa.types.is_struct(dtype):
        inner = ", ".join(f"{f.name}: {_word(f.type)}" for f in dtype)
        return f"JSON object {{{inner}}}"
    return f"JSON array of {_word(dtype.value_type)}"


def _word(dtype: pa.DataType) -> str:
    if pa.types.is_struct(dtype) or pa.types.is_list(dtype):
        return describe(dtype)
    return kind_of(duckdb_type(dtype) or "VARCHAR")


def _shape(dtype: pa.DataType) -> Any:
    """The structure json_transform reads into: every leaf as text, converted afterwards."""
    if pa.types.is_struct(dtype):
        return {f.name: _shape(f.type) for f in dtype}
    if pa.types.is_list(dtype):
        return [_shape(dtype.value_type)]
    return "VARCHAR"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _convert(value: str, dtype: pa.DataType, depth: int) -> tuple[str, str]:
    """(SQL of ``value`` converted to ``dtype``, SQL that is true when a leaf did not
    convert). ``value`` is json_transform's output of :func:`_shape`."""
    if pa.types.is_struct(dtype):
        parts = [
            _convert(f"struct_extract({value}, {_text(f.name)})", f.type, depth) for f in dtype
        ]
        packed = ", ".join(
            f"{_quote(f.name)} := {sql}" for f, (sql, _) in zip(dtype, parts, strict=True)
        )
        bad = " OR ".join(f"coalesce({b}, FALSE)" for _, b in parts)
        return f"(CASE WHEN {value} IS NOT NULL THEN struct_pack({packed}) END)", f"({bad})"
    if pa.types.is_list(dtype):
        item = f"e{depth}"
        sql, bad = _convert(item, dtype.value_type, depth + 1)
        converted = f"list_transform({value}, lambda {item}: {sql})"
        failed = f"coalesce(list_bool_or(list_transform({value}, lambda {item}: {bad})), FALSE)"
        return converted, failed
    target = duckdb_type(dtype)
    assert target is not None
    sql = convert_sql(value, target, try_=True)
    return sql, f"({value} IS NOT NULL AND {sql} IS NULL)"


def json_sql(operand: str, dtype: pa.DataType) -> str:
    """DuckDB SQL reading the JSON text ``operand`` as ``dtype`` (a struct or a list); NULL
    for text that is not JSON of that shape or whose leaves do not convert."""
    shape = _text(json.dumps(_shape(dtype)))
    kind = "'OBJECT'" if pa.types.is_struct(dtype) else "'ARRAY'"
    text = f"CAST({operand} AS VARCHAR)"
    parsed = f"json_transform({text}, {shape})"
    converted, bad = _convert(parsed, dtype, 0)
    return (
        f"(CASE WHEN {text} IS NULL OR NOT json_valid({text}) THEN NULL "
        f"WHEN json_type({text}) <> {kind} THEN NULL "
        f"WHEN {bad} THEN NULL ELSE {converted} END)"
    )


__all__ = [
    "TypeSpec",
    "describe",
    "is_nested",
    "is_record_list",
    "json_sql",
    "spec_arrow_type",
]
