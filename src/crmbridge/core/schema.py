"""Field types and object schemas: the common vocabulary every connector maps its system onto.

Each :class:`FieldType` has one Arrow type, so a batch read from any system has a predictable
shape. Datetimes are instants in UTC (``timestamp[us, tz=UTC]``); a system that stores naive
date-times is read as UTC unless its connection says otherwise.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from crmbridge.core.identity import KeyRule
from crmbridge.errors import ConfigError, ErrorContext

#: Name of the column the engine adds to every batch it reads: the record's position in the
#: source (1-based). Connectors pass it through untouched and never write it to a target.
ROW_COLUMN = "_crmbridge_row"


class FieldType(enum.StrEnum):
    STRING = "string"  # short text, usually with a length limit
    TEXT = "text"  # long text
    INTEGER = "integer"
    DECIMAL = "decimal"  # exact, with precision and scale
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"  # an instant, UTC
    ENUM = "enum"  # text limited to allowed_values (the keys, not the labels)
    ID = "id"  # a record identifier
    LIST = "list"  # a list of texts (a CRM's multi-select); allowed_values limit the items

    @property
    def is_text(self) -> bool:
        return self in _TEXT_TYPES


_TEXT_TYPES = frozenset({FieldType.STRING, FieldType.TEXT, FieldType.ENUM, FieldType.ID})

DEFAULT_DECIMAL_PRECISION = 38
DEFAULT_DECIMAL_SCALE = 9


def arrow_type(
    ftype: FieldType, precision: int | None = None, scale: int | None = None
) -> pa.DataType:
    """The Arrow type that carries values of ``ftype``."""
    if ftype.is_text:
        return pa.string()
    if ftype is FieldType.INTEGER:
        return pa.int64()
    if ftype is FieldType.DECIMAL:
        p = precision or DEFAULT_DECIMAL_PRECISION
        s = DEFAULT_DECIMAL_SCALE if scale is None else scale
        return pa.decimal128(p, s)
    if ftype is FieldType.FLOAT:
        return pa.float64()
    if ftype is FieldType.BOOLEAN:
        return pa.bool_()
    if ftype is FieldType.DATE:
        return pa.date32()
    if ftype is FieldType.DATETIME:
        return pa.timestamp("us", tz="UTC")
    if ftype is FieldType.LIST:
        return pa.list_(pa.string())
    raise AssertionError(ftype)  # pragma: no cover


def field_type_of(dtype: pa.DataType) -> FieldType:
    """The FieldType that best describes an Arrow type (for sources that are typed already)."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return FieldType.STRING
    if pa.types.is_integer(dtype):
        return FieldType.INTEGER
    if pa.types.is_decimal(dtype):
        return FieldType.DECIMAL
    if pa.types.is_floating(dtype):
        return FieldType.FLOAT
    if pa.types.is_boolean(dtype):
        return FieldType.BOOLEAN
    if pa.types.is_date(dtype):
        return FieldType.DATE
    if pa.types.is_timestamp(dtype):
        return FieldType.DATETIME
    return FieldType.STRING


@dataclass(frozen=True)
class Field:
    """One field (column) of an object, as the system describes it."""

    name: str
    type: FieldType = FieldType.STRING
    length: int | None = None  # maximum characters for text types
    #: maximum bytes (UTF-8) for text kept in a byte-limited column (MySQL TEXT: 65,535)
    max_bytes: int | None = None
    precision: int | None = None  # decimals
    scale: int | None = None  # decimals
    required: bool = False  # a record cannot be created without a value
    key: bool = False  # part of the primary key / record id
    read_only: bool = False  # computed or system-maintained; never written
    allowed_values: tuple[str, ...] | None = None  # enum keys
    label: str | None = None
    #: read only when a read names it (fields of related records: costly, often unwanted);
    #: not part of "every field"
    on_request: bool = False
    #: how the system compares values of this field when it looks records up by it: the
    #: default rule of a match key on it (see :mod:`crmbridge.core.identity`)
    key_rule: KeyRule = KeyRule.EXACT

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.type, self.precision, self.scale)

    def describe_type(self) -> str:
        if self.type is FieldType.DECIMAL and self.precision:
            return f"decimal({self.precision},{self.scale or 0})"
        if self.length and self.type.is_text:
            return f"{self.type.value}({self.length})"
        if self.max_bytes and self.type.is_text:
            return f"{self.type.value}({self.max_bytes} bytes)"
        return self.type.value


@dataclass(frozen=True)
class ObjectSchema:
    """An object (table, sheet, file, CRM module) and its fields, in the system's order."""

    name: str
    fields: tuple[Field, ...]
    id_field: str | None = None  # the field that holds the system's record id, if any
    label: str | None = None
    #: with ``DeleteReporting.FLAG``: the field that is true for a deleted record
    deleted_field: str | None = None
    _by_name: dict[str, Field] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def default_field_names(self) -> list[str]:
        """The fields a read returns when it names none (all but the on-request ones)."""
        return [f.name for f in self.fields if not f.on_request]

    def has(self, name: str) -> bool:
        return name in self._by_name

    @property
    def key_fields(self) -> list[str]:
        """The fields of the primary key (``Field.key``), in order."""
        return [f.name for f in self.fields if f.key]

    def field(self, name: str, *, context: ErrorContext | None = None) -> Field:
        """The field called ``name``; an unknown name is a ConfigError suggesting close matches."""
        try:
            return self._by_name[name]
        except KeyError:
            raise unknown_name_error(
                "field",
                name,
                self.field_names,
                context=(context or ErrorContext()).merge(object=self.name),
            ) from None

    def select(self, names: Sequence[str] | None) -> ObjectSchema:
        """The schema restricted to ``names`` (in that order); None keeps every field."""
        if names is None:
            return self
        return ObjectSchema(
            self.name,
            tuple(self.field(n) for n in names),
            self.id_field,
            self.label,
            self.deleted_field,
        )

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(f.name, f.arrow_type) for f in self.fields])


def suggest(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to three known names close to ``name`` (case-insensitive), best first."""
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.6)
    return [lowered[h] for h in hits]


def unknown_name_error(
    what: str, name: str, known: Iterable[str], *, context: ErrorContext | None = None
) -> ConfigError:
    """'unknown field 'emial'; did you mean 'email'?' as a ConfigError."""
    close = suggest(name, known)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown {what} {name!r}{hint}", context=context)
