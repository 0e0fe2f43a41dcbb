"""Entities and fields: Sage CRM's metadata mapped onto crmbridge's schema vocabulary.

Users see a column without its prefix, as the web services' typed answers name it:
``comp_name`` is ``name``, ``comp_updateddate`` is ``updateddate``. A company's or person's
children are flattened into dotted fields (SOAP only, where the answers nest them):

* ``address.<column>``: the primary address (else the Business one, else the first);
* ``phone.<type>`` the number, ``phone.<type>_areacode``, ``phone.<type>_countrycode`` for
  the types Business, Fax, Mobile, Home (``phone.business``);
* ``email.<type>`` for Business and Private (``email.business``);
* ``person.<column>``: a company's primary person (else its first).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import Field, FieldType, ObjectSchema

#: the prefixes of the standard tables
KNOWN_PREFIXES = {
    "company": "comp",
    "person": "pers",
    "opportunity": "oppo",
    "cases": "case",
    "lead": "lead",
    "address": "addr",
    "phone": "phon",
    "email": "emai",
    "communication": "comm",
    "users": "user",
}
PHONE_TYPES = ("Business", "Fax", "Mobile", "Home")
EMAIL_TYPES = ("Business", "Private")
#: Sage field type -> FieldType (types not listed are strings)
SAGE_TYPES = {
    "integer": FieldType.INTEGER,
    "int": FieldType.INTEGER,
    "numeric": FieldType.DECIMAL,
    "currency": FieldType.DECIMAL,
    "datetime": FieldType.DATETIME,
    "date": FieldType.DATETIME,
    "multiline": FieldType.TEXT,
    "selection": FieldType.ENUM,
    "checkbox": FieldType.BOOLEAN,
}
DECIMAL_PRECISION, DECIMAL_SCALE = 24, 6
#: the system columns (without prefix) the server sets itself
SYSTEM_COLUMNS = frozenset(
    {"createdby", "createddate", "updatedby", "updateddate", "timestamp", "deleted"}
)


@dataclass(frozen=True)
class RawField:
    """A column as the metadata describes it (both APIs are normalised to this)."""

    column: str  # prefixed, e.g. comp_name
    type: str
    length: int | None = None
    required: bool = False
    read_only: bool = False
    caption: str | None = None
    values: tuple[str, ...] | None = None  # drop-down codes


@dataclass(frozen=True)
class Child:
    """Where a flattened child field comes from."""

    kind: str  # address | phone | email | person
    column: str  # the child's column, e.g. addr_city
    type: str | None = None  # the link type (phone, email), e.g. Business


@dataclass(frozen=True)
class EntityMeta:
    """Everything the connector knows about one entity."""

    schema: ObjectSchema
    prefix: str
    id_column: str
    #: user field name -> prefixed column (own fields only)
    columns: Mapping[str, str]
    #: user field name -> child source (flattened fields only)
    children: Mapping[str, Child] = field(default_factory=dict)
    #: Sage's own field types by user field name
    sage_types: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def id_field(self) -> str:
        return short_name(self.id_column)

    def column(self, name: str) -> str | None:
        """The database column of an own field (None for a child field or an unknown one)."""
        return self.columns.get(name)

    def field_of(self, column: str) -> str | None:
        """The user field name of a prefixed column."""
        name = short_name(column)
        return name if self.columns.get(name, "").lower() == column.lower() else None


def short_name(column: str) -> str:
    """``comp_name`` -> ``name``."""
    return column.split("_", 1)[1] if "_" in column else column


def prefix_of(entity: str, columns: Sequence[str]) -> str:
    """The column prefix of an entity: the known one, else the most common in its columns."""
    if entity.lower() in KNOWN_PREFIXES:
        return KNOWN_PREFIXES[entity.lower()]
    counts = Counter(c.split("_", 1)[0] for c in columns if "_" in c)
    return counts.most_common(1)[0][0] if counts else entity.lower()[:4]


def to_field(raw: RawField, name: str, *, key: bool = False) -> Field:
    ftype = SAGE_TYPES.get(raw.type.lower(), FieldType.STRING)
    system = short_name(raw.column) in SYSTEM_COLUMNS
    if short_name(raw.column) == "deleted":
        ftype = FieldType.BOOLEAN  # NULL live, 1 deleted
    return Field(
        name=name,
        type=ftype,
        length=raw.length if ftype in (FieldType.STRING, FieldType.ENUM) else None,
        precision=DECIMAL_PRECISION if ftype is FieldType.DECIMAL else None,
        scale=DECIMAL_SCALE if ftype is FieldType.DECIMAL else None,
        required=raw.required and not key and not system,
        key=key,
        read_only=raw.read_only or key or system,
        allowed_values=raw.values if ftype is FieldType.ENUM and raw.values else None,
        label=raw.caption or None,
        key_rule=key_rule(name, ftype),
    )


def key_rule(name: str, ftype: FieldType) -> KeyRule:
    """How the CRM compares a field's values when it finds records by them: text as SQL
    Server's default collation does (without case), e-mail addresses as addresses, the rest
    exactly."""
    if not ftype.is_text:
        return KeyRule.EXACT
    short = name.split(".")[-1] if "." in name else name
    if name.startswith("email.") or short.endswith(("email", "emailaddress")):
        return KeyRule.EMAIL
    return KeyRule.CASEFOLD


def build_meta(
    entity: str,
    raw_fields: Sequence[RawField],
    children: Mapping[str, Sequence[RawField]] | None = None,
) -> EntityMeta:
    """The EntityMeta of an entity; ``children`` maps a nested kind (address, phone, email,
    person) to the child entity's fields."""
    prefix = prefix_of(entity, [f.column for f in raw_fields])
    own = [f for f in raw_fields if f.column.lower().startswith(prefix + "_")]
    id_column = next(
        (f.column for f in own if f.column.lower() == f"{prefix}_{entity.lower()}id"),
        own[0].column if own else f"{prefix}_{entity.lower()}id",
    )
    fields: list[Field] = []
    columns: dict[str, str] = {}
    types: dict[str, str] = {}
    for raw in own:
        name = short_name(raw.column)
        fields.append(to_field(raw, name, key=raw.column == id_column))
        columns[name] = raw.column
        types[name] = raw.type
    flat: dict[str, Child] = {}
    for kind, child_fields in (children or {}).items():
        for name, child, template in _child_fields(kind, child_fields):
            flat[name] = child
            fields.append(to_field(template, name, key=False))
            types[name] = template.type
    fields = [_read_only_child(f) if f.name in flat else f for f in fields]
    schema = ObjectSchema(
        entity,
        tuple(fields),
        id_field=short_name(id_column),
        label=entity,
        deleted_field="deleted" if "deleted" in columns else None,
    )
    return EntityMeta(schema, prefix, id_column, columns, flat, types)


def _read_only_child(f: Field) -> Field:
    return replace(f, required=False, key=False)


def _child_fields(kind: str, raw: Sequence[RawField]) -> list[tuple[str, Child, RawField]]:
    by_short = {short_name(f.column): f for f in raw}
    out: list[tuple[str, Child, RawField]] = []
    if kind in ("address", "person"):
        for short, f in by_short.items():
            if short in SYSTEM_COLUMNS or f.column == raw[0].column:
                continue
            out.append((f"{kind}.{short}", Child(kind, f.column), f))
    elif kind == "phone":
        for phone_type in PHONE_TYPES:
            base = phone_type.lower()
            for short, suffix in (
                ("number", ""),
                ("areacode", "_areacode"),
                ("countrycode", "_countrycode"),
            ):
                if short in by_short:
                    f = by_short[short]
                    out.append((f"phone.{base}{suffix}", Child(kind, f.column, phone_type), f))
    elif kind == "email":
        address = by_short.get("emailaddress")
        if address is not None:
            for email_type in EMAIL_TYPES:
                name = f"email.{email_type.lower()}"
                out.append((name, Child(kind, address.column, email_type), address))
    return out
