"""What a profile file may say: one transfer from a source object to a target object.

The pydantic models here are the single definition of the profile format: the loader validates
against them, ``crmbridge profile schema`` exports their JSON Schema for editors, and
docs/profiles.md describes them field by field.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.plan import OnMultiple
from crmbridge.core.schema import FieldType
from crmbridge.profiles.ops_model import Notify, Schedule
from crmbridge.profiles.params import ParamType

Scalar = str | int | float | bool | None


def _type_declaration(value: Any) -> Any:
    """A field type name, ``{field: type, ...}`` (a record) or ``[type]`` (a list of them)."""
    if isinstance(value, FieldType):
        return value
    if isinstance(value, str):
        try:
            return FieldType(value)
        except ValueError:
            known = ", ".join(t.value for t in FieldType)
            raise ValueError(f"unknown type {value!r}; use one of {known}") from None
    if isinstance(value, dict) and value:
        return {str(k): _type_declaration(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) == 1:
        return [_type_declaration(value[0])]
    raise ValueError("a type is a type name, {field: type, ...} for a record, or [type] for a list")


_TYPE_NAMES: dict[str, Any] = {"enum": [t.value for t in FieldType]}
_NESTED: list[dict[str, Any]] = [
    _TYPE_NAMES,
    {"type": "object", "minProperties": 1},
    {"type": "array", "minItems": 1, "maxItems": 1},
]
_TYPE_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _TYPE_NAMES,
        {"type": "object", "minProperties": 1, "additionalProperties": {"anyOf": _NESTED}},
        {"type": "array", "minItems": 1, "maxItems": 1, "items": {"anyOf": _NESTED}},
    ],
    "description": "a type name, {field: type, ...} for a record (JSON object), or [type] "
    "for a list (JSON array)",
}

#: what ``source.types`` says of one field (see core/nested.py)
TypeDeclaration = Annotated[
    Any,
    PlainValidator(_type_declaration),
    WithJsonSchema(_TYPE_JSON_SCHEMA),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class InlineConnection(BaseModel):
    """A connection written inside the profile: ``{type: csv, path: data/}``. No secrets."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str = Field(description="connector type, e.g. csv, xlsx, jsonl, sql, sugarcrm")

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


ConnectionRef = Annotated[
    str | InlineConnection,
    Field(
        description="the name of a stored connection (`crmbridge connection add`), "
        "or an inline connection without secrets"
    ),
]


class Incremental(_Strict):
    """Read only what changed since the previous run (see docs/profiles.md)."""

    field: str = Field(description="the cursor: a field that grows when a record changes")
    key: str = Field(description="a field identifying a record (e.g. id)")
    overlap_seconds: float = Field(
        default=1.0,
        ge=0,
        description="also look again at records whose cursor is this close to the last one",
    )


class Source(_Strict):
    connection: ConnectionRef
    object: str = Field(description="table, file, sheet or CRM module to read")
    fields: list[str] | None = Field(
        default=None, description="source fields to read; default: every field"
    )
    filter: str | None = Field(
        default=None, description="SQL condition; records for which it is not TRUE are skipped"
    )
    types: dict[str, TypeDeclaration] = Field(
        default_factory=dict,
        description="types of untyped source fields (CSV), records and lists (JSON text); "
        "a value that does not convert rejects its record",
    )
    key: list[str] | None = Field(
        default=None,
        description="source fields that identify a record (default: the source's id or "
        "primary key; for files without one, the record's content and position)",
    )
    include_deleted: bool = Field(default=False, description="also read deleted records")
    incremental: Incremental | None = Field(
        default=None, description="read only the records changed since the previous run"
    )


class Target(_Strict):
    connection: ConnectionRef
    object: str = Field(description="table, file, sheet or CRM module to write")
    mode: WriteMode = Field(default=WriteMode.INSERT, description="insert, update, upsert, delete")
    match_keys: list[str] = Field(
        default_factory=list,
        description="target fields that identify a record (update, upsert, delete)",
    )
    create: bool = Field(
        default=False,
        description="create the target table when it does not exist, with fields from the "
        "mapping (file targets are always created)",
    )
    update_fields: list[str] | None = Field(
        default=None,
        description="update/upsert: the only fields written to records that already exist "
        "(created records get every mapped field); [] leaves existing records untouched",
    )
    key_rules: dict[str, KeyRule] = Field(
        default_factory=dict,
        description="match key -> how its values compare: exact, casefold, email or phone "
        "(default: as the target compares the field)",
    )
    on_multiple_matches: OnMultiple = Field(
        default=OnMultiple.REJECT,
        description="a record that matches several target records: reject it "
        "(ambiguous_match), act on the first, or on all",
    )
    keep_when_null: list[str] = Field(
        default_factory=list,
        description="fields whose null value leaves the stored value alone instead of "
        "setting it to null (update/upsert)",
    )

    @model_validator(mode="after")
    def _keys_for_mode(self) -> Target:
        if self.mode is not WriteMode.INSERT and not self.match_keys:
            raise ValueError(f"mode {self.mode.value} needs match_keys")
        return self


class Missing(enum.StrEnum):
    """What to do when a reference or link finds no record."""

    REJECT = "reject"  # reject the source record
    SKIP = "skip"  # leave the source record out (counted as filtered)
    CREATE = "create"  # create the referenced record (references only)


class Reference(_Strict):
    """A target field filled with the id of a record found in the target system,
    e.g. a Note's ``parent_id`` from the Lead whose ``email1`` is the source's ``email``."""

    @model_validator(mode="after")
    def _one_record(self) -> Reference:
        if self.on_multiple_matches is OnMultiple.ALL:
            raise ValueError("a reference holds one id: use reject or first")
        return self

    object: str = Field(description="object of the target connection to look the record up in")
    match: dict[str, str] = Field(
        min_length=1,
        description="field of that object -> expression over source fields; values compare "
        "as the target system compares them",
    )
    missing: Missing = Field(default=Missing.REJECT, description="reject, skip or create")
    on_multiple_matches: OnMultiple = Field(
        default=OnMultiple.REJECT,
        description="several records match: reject the source record (ambiguous_match) or "
        "take the first",
    )
    key_rules: dict[str, KeyRule] = Field(
        default_factory=dict,
        description="match field -> how its values compare (default: as the target compares)",
    )
    values: dict[str, str] = Field(
        default_factory=dict,
        description="with missing: create, more fields of the created record "
        "(field -> expression); the match fields are always set",
    )


class Link(_Strict):
    """Relate each written record to records found in the target system (CRM relationships)."""

    link: str = Field(description="the link (relationship) name on the target object")
    object: str = Field(description="the related object, e.g. Contacts")
    match: dict[str, str] = Field(
        min_length=1, description="field of the related object -> expression over source fields"
    )
    missing: Missing = Field(
        default=Missing.SKIP, description="when no related record is found: skip or reject"
    )

    @model_validator(mode="after")
    def _no_create(self) -> Link:
        if self.missing is Missing.CREATE:
            raise ValueError("links cannot create records; use skip or reject")
        return self


class Deduplicate(_Strict):
    """Never send the same record twice across runs."""

    key: str = Field(
        description="expression over source fields identifying a record (e.g. an event id); "
        "records whose key an earlier run wrote successfully are left out"
    )


class Children(_Strict):
    """A list of records in each source record written as child records of the record
    written from it: an order's lines as rows of a line table carrying the order's key, an
    account's people as Salesforce Contacts with its AccountId (docs/profiles.md)."""

    field: str = Field(
        description="the source field holding the list, declared in source.types as "
        "[{field: type, ...}]"
    )
    object: str = Field(description="the child object (table, module) in the target connection")
    parent_key: str = Field(
        description="the child field that gets the id of its parent record in the target"
    )
    match_keys: list[str] = Field(
        min_length=1,
        description="child fields that tell the children of one parent apart (with "
        "parent_key they find a child again, so a rerun never duplicates one)",
    )
    mapping: dict[str, str] = Field(
        min_length=1,
        description="child field -> expression over the item's fields and crmbridge_position "
        "(its place in the list, from 1)",
    )
    constants: dict[str, Scalar] = Field(
        default_factory=dict, description="child field -> fixed value"
    )
    create: bool = Field(
        default=False, description="create the child table when it does not exist (SQL)"
    )

    @model_validator(mode="after")
    def _keys_are_mapped(self) -> Children:
        written = set(self.mapping) | set(self.constants)
        missing = [k for k in self.match_keys if k not in written]
        if missing:
            raise ValueError(f"match keys are not mapped: {', '.join(missing)}")
        if self.parent_key in written:
            raise ValueError(f"{self.parent_key!r} is the parent key: crmbridge fills it in")
        return self


class TruncationAction(enum.StrEnum):
    REJECT = "reject"
    TRUNCATE = "truncate"


class Truncation(_Strict):
    """What to do with a text value longer than the target field allows."""

    default: TruncationAction = TruncationAction.REJECT
    fields: dict[str, TruncationAction] = Field(default_factory=dict)

    def action(self, field: str) -> TruncationAction:
        return self.fields.get(field, self.default)


class OnReject(enum.StrEnum):
    CONTINUE = "continue"
    STOP = "stop"


class Errors(_Strict):
    """What a rejected record does to the run."""

    on_reject: OnReject = Field(
        default=OnReject.CONTINUE,
        description="continue: record it and go on; stop: stop at the first rejected record",
    )
    max_rejects: int | None = Field(
        default=None, ge=0, description="with continue: fail the run after this many rejects"
    )


class Param(_Strict):
    """A parameter declared with its type: ``since: {type: date, default: 2024-01-01}``."""

    type: ParamType = Field(default=ParamType.STRING, description="the type of its values")
    default: Any = Field(
        default=None, description="its value unless --param gives one; none: --param is required"
    )
    description: str | None = None


class Profile(_Strict):
    id: str | None = Field(
        default=None,
        description="a stable identity for the profile's state (cursor, ledger, records "
        "already sent); default: its name with its source and target",
    )
    name: str | None = Field(default=None, description="default: the file name without .yaml")
    description: str | None = None
    params: dict[str, Scalar | Param] = Field(
        default_factory=dict,
        description="name -> default value (its type is the parameter's) or {type, default}; "
        "${name} is replaced by the value (crmbridge run --param name=value gives it); in an "
        "expression it is a SQL literal of that type, never SQL code",
    )
    source: Source
    target: Target
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="target field -> SQL expression over source fields; empty: fields with "
        "the same name",
    )
    constants: dict[str, Scalar] = Field(
        default_factory=dict, description="target field -> fixed value"
    )
    defaults: dict[str, Scalar] = Field(
        default_factory=dict, description="target field -> value used when the mapped value is null"
    )
    truncation: Truncation = Field(default_factory=Truncation)
    allow_unlisted_values: bool = Field(
        default=False,
        description="send values that are not among an enum field's options instead of "
        "rejecting the record",
    )
    references: dict[str, Reference] = Field(
        default_factory=dict, description="target field -> record to look up for its id"
    )
    links: list[Link] = Field(default_factory=list)
    deduplicate: Deduplicate | None = None
    children: list[Children] = Field(
        default_factory=list,
        description="lists of records in a source record, written as child records of the "
        "record written from it",
    )
    value_maps: dict[str, dict[str, Scalar]] = Field(
        default_factory=dict,
        description="name -> {value: replacement}; use as a function, e.g. status_map(status); "
        'a value not listed gives the "*" entry, or null',
    )
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    errors: Errors = Field(default_factory=Errors)
    dry_run: bool = False
    schedule: Schedule | None = Field(
        default=None, description="when it runs by itself (docs/schedules.md)"
    )
    notify: Notify | None = Field(
        default=None, description="whom to tell when a run fails or rejects records"
    )

    def ends(self) -> list[tuple[Any, str]]:
        """(connection, object) of the source and the target, for the profile's identity."""
        return [
            (self.source.connection, self.source.object),
            (self.target.connection, self.target.object),
        ]

    @field_validator("truncation", mode="before")
    @classmethod
    def _truncation_shorthand(cls, value: Any) -> Any:
        # `truncation: truncate` is short for `truncation: {default: truncate}`
        return {"default": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _no_field_set_twice(self) -> Profile:
        twice = sorted(
            (set(self.mapping) & set(self.constants))
            | (set(self.references) & (set(self.mapping) | set(self.constants)))
        )
        if twice:
            raise ValueError(f"fields set both by mapping and constants: {', '.join(twice)}")
        return self


def json_schema() -> dict[str, Any]:
    """JSON Schema of a profile file, for editors (yaml-language-server)."""
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "crmbridge profile"
    return schema
