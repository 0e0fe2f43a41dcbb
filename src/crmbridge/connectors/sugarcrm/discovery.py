"""Modules and fields: Sugar's metadata mapped onto crmbridge's schema vocabulary."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import Field, FieldType, ObjectSchema
from crmbridge.errors import ConfigError, ErrorContext

#: fields whose values are e-mail addresses
EMAIL_FIELDS = frozenset({"email1", "email2", "email"})

#: Sugar field type -> FieldType (types not listed are strings)
SUGAR_TYPES: dict[str, FieldType] = {
    **dict.fromkeys(("text", "longtext", "html", "longhtml", "wysiwyg"), FieldType.TEXT),
    **dict.fromkeys(
        ("int", "integer", "long", "tinyint", "smallint", "autoincrement", "ulong"),
        FieldType.INTEGER,
    ),
    **dict.fromkeys(("decimal", "currency"), FieldType.DECIMAL),
    **dict.fromkeys(("float", "double"), FieldType.FLOAT),
    "bool": FieldType.BOOLEAN,
    "date": FieldType.DATE,
    **dict.fromkeys(("datetime", "datetimecombo"), FieldType.DATETIME),
    **dict.fromkeys(("enum", "radioenum", "dynamicenum", "parent_type"), FieldType.ENUM),
    "multienum": FieldType.LIST,
    **dict.fromkeys(("id", "assigned_user_name"), FieldType.ID),
}
#: system fields Sugar maintains itself
READ_ONLY_FIELDS = frozenset(
    {"date_entered", "date_modified", "created_by", "modified_user_id", "deleted"}
)
#: names the API adds as copies of other fields, or that are always computed
COMPUTED_FIELDS = frozenset(
    {"assigned_user_name", "modified_by_name", "created_by_name", "full_name"}
)
#: field types stored in a MySQL TEXT column, which holds 65,535 bytes (longtext: 4 GB)
TEXT_COLUMN_TYPES = frozenset({"text", "html", "wysiwyg", "multienum"})
TEXT_BYTES = 65_535
#: field types stored in a varchar column; without ``len`` Sugar makes it ``varchar(255)``
VARCHAR_TYPES = frozenset({"varchar", "name", "phone", "url"})
DEFAULT_VARCHAR_LENGTH = 255
#: Sugar's default currency precision (``len`` 26, 6 decimals)
CURRENCY_PRECISION, CURRENCY_SCALE = 26, 6
#: modules whose table is not simply the module name in lower case
KNOWN_TABLES = {
    "ProjectTask": "project_task",
    "ProspectLists": "prospect_lists",
    "EmailTemplates": "email_templates",
    "EmailAddresses": "email_addresses",
    "DocumentRevisions": "document_revisions",
    "Employees": "users",
    "KBDocuments": "kbdocuments",
    "SavedSearch": "saved_search",
}


@dataclass(frozen=True)
class RawField:
    """A field as the API described it (both APIs are normalised to this)."""

    name: str
    type: str
    length: str | None = None  # ``len``: "150", or "26,6" for decimals
    required: bool = False
    options: tuple[str, ...] | None = None  # option keys, for drop-down fields
    label: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class RawModule:
    name: str
    fields: Sequence[RawField]
    #: link field name -> related module ("" when the metadata does not say, as SuiteCRM's
    #: for many standard links: then it is found through the relationship)
    links: Mapping[str, str] = field(default_factory=dict)
    #: the database table, when the API says
    table: str | None = None
    #: link field name -> the name of its relationship (e.g. ``accounts_contacts``)
    relationships: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleSchema(ObjectSchema):
    """A module's schema; the error for a field it does not have ends with ``hint(name)``
    (custom fields and Studio, remembered descriptions)."""

    hint: Callable[[str], str] | None = field(default=None, compare=False, repr=False)

    def field(self, name: str, *, context: ErrorContext | None = None) -> Field:
        if self.hint is None or self.has(name):
            return super().field(name, context=context)
        try:
            return super().field(name, context=context)
        except ConfigError as err:
            raise ConfigError(err.message + self.hint(name), context=err.context) from None


def studio_hint(module: str, name: str) -> str:
    """What to say about a field ``module`` lacks, when its name is that of a custom field."""
    if not name.endswith("_c"):
        return ""
    return (
        f"; {name} would be a custom field, and {module} has no such field: custom fields "
        f"exist only once an administrator adds them with Studio (Admin > Studio > {module} "
        "> Fields > Add Field)"
    )


@dataclass(frozen=True)
class RelatedField:
    """A field of the records related through a link, read as ``<link>.<field>`` (e.g. an
    Opportunity's ``contacts.email1``). Read-only; never pushed down to the server."""

    link: str
    module: str  # the related module
    field: str  # the field's name in the related module

    @property
    def name(self) -> str:
        return f"{self.link}.{self.field}"


@dataclass(frozen=True)
class ModuleMeta:
    """Everything the connector knows about one module."""

    schema: ObjectSchema
    table: str
    links: Mapping[str, str]
    sugar_types: Mapping[str, str]
    #: ``<link>.<field>`` -> the related field it reads (these are also in ``schema``)
    related: Mapping[str, RelatedField] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def is_person(self) -> bool:
        return self.schema.has("first_name") and self.schema.has("last_name")

    def column(self, name: str) -> str | None:
        """The SQL column of a field in a v4_1 query, or None when it is not a plain column
        (computed fields, fields of related records; e-mail addresses need their subquery)."""
        if name in self.related or name in COMPUTED_FIELDS or name.startswith("email"):
            return None
        if self.sugar_types.get(name) in ("relate", "fullname", "parent", "link", "function"):
            return None
        if self.is_person and name == "name":
            return None  # a person's name is first_name + last_name, not a column
        if name.endswith("_c"):
            return f"{self.table}_cstm.{name}"
        return f"{self.table}.{name}"


def build_meta(
    raw: RawModule, tables: Mapping[str, str], hint: Callable[[str], str] | None = None
) -> ModuleMeta:
    """The ModuleMeta of a described module; ``tables`` overrides module -> table names,
    ``hint`` ends the message for a field it does not have (see ModuleSchema)."""
    fields = tuple(to_field(f) for f in raw.fields if f.type != "link")
    table = table_of(raw, tables)
    return ModuleMeta(
        schema=ModuleSchema(raw.name, fields, id_field="id", label=raw.name, hint=hint),
        table=table,
        links=dict(raw.links),
        sugar_types={f.name: f.type for f in raw.fields},
    )


def table_of(raw: RawModule, tables: Mapping[str, str]) -> str:
    """The database table of a module (``tables`` overrides what the server says)."""
    return tables.get(raw.name) or raw.table or KNOWN_TABLES.get(raw.name) or raw.name.lower()


def with_related(meta: ModuleMeta, linked: Mapping[str, ModuleMeta]) -> ModuleMeta:
    """``meta`` with the fields of related records added (read-only, typed as in the related
    module), one ``<link>.<field>`` per field of each link whose module is in ``linked``."""
    fields: list[Field] = []
    related: dict[str, RelatedField] = {}
    for link, module in sorted(meta.links.items()):
        other = linked.get(module)
        if other is None:
            continue
        for own in other.schema.fields:
            if own.name in other.related:
                continue  # one level only
            ref = RelatedField(link, module, own.name)
            related[ref.name] = ref
            label = f"{link}: {own.label or own.name}"
            fields.append(
                replace(
                    own,
                    name=ref.name,
                    read_only=True,
                    required=False,
                    key=False,
                    label=label,
                    on_request=True,
                )
            )
    schema = meta.schema
    own_fields = tuple(f for f in schema.fields if f.name not in meta.related)
    return replace(meta, schema=replace(schema, fields=(*own_fields, *fields)), related=related)


def to_field(raw: RawField) -> Field:
    """A Sugar field as a crmbridge Field."""
    ftype = field_type(raw)
    precision = scale = None
    if ftype is FieldType.DECIMAL:
        precision, scale = _decimal_size(raw.length)
    options = raw.options if ftype in (FieldType.ENUM, FieldType.LIST) else None
    if options and ftype is FieldType.LIST:
        options = tuple(o for o in options if o)  # the blank choice is no item
    length = None
    if ftype in (FieldType.STRING, FieldType.ENUM):
        length = _length(raw.length)
        if length is None and raw.type in VARCHAR_TYPES:
            length = DEFAULT_VARCHAR_LENGTH  # what the column is (see VARCHAR_TYPES)
    return Field(
        name=raw.name,
        type=ftype,
        length=length,
        max_bytes=TEXT_BYTES if raw.type in TEXT_COLUMN_TYPES and ftype.is_text else None,
        precision=precision,
        scale=scale,
        # Sugar marks some checkboxes required (Notes portal_flag) that a save without them
        # stores as unchecked: a required boolean is optional, false by default
        required=raw.required and raw.name != "id" and ftype is not FieldType.BOOLEAN,
        key=raw.name == "id",
        read_only=raw.read_only
        or raw.name in READ_ONLY_FIELDS
        or raw.name in COMPUTED_FIELDS
        or raw.type in ("autoincrement", "fullname"),
        allowed_values=options or None,
        label=(raw.label or "").strip().rstrip(":").strip() or None,
        key_rule=key_rule(raw.name, ftype),
    )


def key_rule(name: str, ftype: FieldType) -> KeyRule:
    """How Sugar compares a field's values when it finds records by them: e-mail addresses
    without case (``email_address_caps``), other text as MySQL does (without case), ids and
    numbers exactly."""
    if name in EMAIL_FIELDS:
        return KeyRule.EMAIL
    if ftype in (FieldType.STRING, FieldType.TEXT, FieldType.ENUM):
        return KeyRule.CASEFOLD
    return KeyRule.EXACT


def field_type(raw: RawField) -> FieldType:
    if raw.name == "id" or raw.name in ("created_by", "modified_user_id"):
        return FieldType.ID
    if raw.type == "relate" and raw.name.endswith("_id"):
        return FieldType.ID
    if raw.type == "parent_type" and not raw.options:
        return FieldType.STRING
    return SUGAR_TYPES.get(raw.type, FieldType.STRING)


def _length(text: str | None) -> int | None:
    if not text:
        return None
    head = str(text).split(",")[0].strip()
    return int(head) if head.isdigit() and int(head) > 0 else None


def _decimal_size(text: str | None) -> tuple[int, int]:
    parts = [p.strip() for p in str(text or "").split(",")]
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        precision, scale = int(parts[0]), int(parts[1])
        if 0 < precision <= 38 and 0 <= scale <= precision:
            return precision, scale
    return CURRENCY_PRECISION, CURRENCY_SCALE
