"""sObjects and fields: Salesforce's ``describe`` mapped onto crmbridge's schema vocabulary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import Field, FieldType, ObjectSchema

#: Salesforce field type -> FieldType (types not listed are strings)
SALESFORCE_TYPES: dict[str, FieldType] = {
    "id": FieldType.ID,
    "reference": FieldType.ID,
    "boolean": FieldType.BOOLEAN,
    "int": FieldType.INTEGER,
    "long": FieldType.INTEGER,
    "double": FieldType.DECIMAL,
    "currency": FieldType.DECIMAL,
    "percent": FieldType.DECIMAL,
    "date": FieldType.DATE,
    "datetime": FieldType.DATETIME,
}
#: compound and binary types: not read as a column (their parts are fields of their own)
SKIPPED_TYPES = frozenset({"address", "location", "base64", "complexvalue", "anyType"})
#: text areas longer than this are long text
SHORT_TEXT = 255
#: Salesforce types whose values are text that SOQL compares case-insensitively
TEXT_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "combobox", "phone", "url",
     "encryptedstring"}
)  # fmt: skip


@dataclass(frozen=True)
class FieldInfo:
    """What the connector needs about one field beyond its schema Field."""

    name: str
    sf_type: str
    filterable: bool = True
    sortable: bool = True
    external_id: bool = False
    id_lookup: bool = False
    createable: bool = False
    updateable: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None


@dataclass(frozen=True)
class RelatedField:
    """``Account.Ext_Id__c``: a reference set (and read) through an external id of the related
    record."""

    #: the relationship name, e.g. ``Account``
    relationship: str
    #: the reference field it sets, e.g. ``AccountId``
    reference: str
    #: the related object and its external-id field
    object: str
    field: str

    @property
    def name(self) -> str:
        return f"{self.relationship}.{self.field}"


@dataclass(frozen=True)
class ObjectMeta:
    """Everything the connector knows about one sObject."""

    schema: ObjectSchema
    info: Mapping[str, FieldInfo]
    queryable: bool = True
    child_relationships: Mapping[str, str] = field(default_factory=dict)
    #: ``Relationship.ExternalId`` fields (in the schema too, read on request)
    related: Mapping[str, RelatedField] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.schema.name

    @property
    def external_ids(self) -> list[str]:
        """Fields usable as upsert keys (and ``Id``)."""
        return [n for n, i in self.info.items() if i.external_id]

    @property
    def relationships(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """relationship name -> (reference field, related objects), e.g. ``Account`` ->
        (``AccountId``, (``Account``,))."""
        return {i.relationship: (n, i.reference_to) for n, i in self.info.items() if i.relationship}

    def filterable(self, name: str) -> bool:
        found = self.info.get(name)
        return found is not None and found.filterable

    @property
    def parents(self) -> dict[str, str]:
        """relationship name -> the one object it leads to (polymorphic ones left out)."""
        return {
            i.relationship: i.reference_to[0]
            for i in self.info.values()
            if i.relationship and len(i.reference_to) == 1
        }


def build_meta(described: Mapping[str, Any]) -> ObjectMeta:
    """The ObjectMeta of a ``describe`` answer."""
    fields: list[Field] = []
    info: dict[str, FieldInfo] = {}
    for raw in described.get("fields", []):
        if raw.get("type") in SKIPPED_TYPES:
            continue
        fields.append(to_field(raw))
        info[raw["name"]] = FieldInfo(
            name=raw["name"],
            sf_type=str(raw.get("type", "string")),
            filterable=bool(raw.get("filterable", True)),
            sortable=bool(raw.get("sortable", True)),
            external_id=bool(raw.get("externalId", False)),
            id_lookup=bool(raw.get("idLookup", False)),
            createable=bool(raw.get("createable", False)),
            updateable=bool(raw.get("updateable", False)),
            reference_to=tuple(raw.get("referenceTo") or ()),
            relationship=raw.get("relationshipName") or None,
        )
    name = str(described["name"])
    children = {
        str(c["relationshipName"]): str(c["childSObject"])
        for c in described.get("childRelationships", [])
        if c.get("relationshipName")
    }
    return ObjectMeta(
        schema=ObjectSchema(
            name,
            tuple(fields),
            id_field="Id",
            label=described.get("label"),
            deleted_field="IsDeleted" if "IsDeleted" in info else None,
        ),
        info=info,
        queryable=bool(described.get("queryable", True)),
        child_relationships=children,
    )


def with_related(meta: ObjectMeta, parents: Mapping[str, ObjectMeta]) -> ObjectMeta:
    """``meta`` with a field ``Relationship.ExternalId`` for each external-id field of each
    related object in ``parents`` (keyed by object name): a value a profile can map to set the
    reference, read only when a read names it."""
    added: list[Field] = []
    related: dict[str, RelatedField] = {}
    for relationship, object in sorted(meta.parents.items()):
        parent = parents.get(object)
        if parent is None:
            continue
        reference = meta.relationships[relationship][0]
        for ext in parent.external_ids:
            ref = RelatedField(relationship, reference, object, ext)
            own = parent.schema.field(ext)
            related[ref.name] = ref
            added.append(
                replace(
                    own,
                    name=ref.name,
                    required=False,
                    key=False,
                    read_only=False,
                    on_request=True,
                    label=f"{relationship}: {own.label or own.name}",
                )
            )
    schema = meta.schema
    return replace(
        meta,
        schema=replace(schema, fields=(*schema.fields, *added)),
        related=related,
    )


def key_rule(raw: Mapping[str, Any]) -> KeyRule:
    """How Salesforce compares values of the field when it looks records up by it: text
    case-insensitively (``casefold``) unless ``describe`` says ``caseSensitive`` (a unique
    external id may be), e-mail addresses as addresses (``email``); ids, numbers, dates
    exactly (an id in its 18-character form, see :func:`.values.canonical_id`)."""
    kind = str(raw.get("type", "string"))
    if kind == "email":
        return KeyRule.EMAIL
    if kind in TEXT_TYPES and not raw.get("caseSensitive"):
        return KeyRule.CASEFOLD
    return KeyRule.EXACT


def field_type(raw: Mapping[str, Any]) -> FieldType:
    kind = str(raw.get("type", "string"))
    if kind == "picklist" and raw.get("restrictedPicklist"):
        return FieldType.ENUM
    if kind == "textarea" and int(raw.get("length") or 0) > SHORT_TEXT:
        return FieldType.TEXT
    if kind in ("double", "currency", "percent") and int(raw.get("precision") or 0) > 38:
        return FieldType.FLOAT
    return SALESFORCE_TYPES.get(kind, FieldType.STRING)


def to_field(raw: Mapping[str, Any]) -> Field:
    """A described field as a crmbridge Field.

    Required: not nillable, createable and not defaulted on create (what Salesforce refuses
    to create without). Read-only: neither createable nor updateable. An unrestricted picklist
    is a string: Salesforce accepts values that are not in its list.
    """
    ftype = field_type(raw)
    createable = bool(raw.get("createable", False))
    updateable = bool(raw.get("updateable", False))
    precision = scale = None
    if ftype is FieldType.DECIMAL:
        precision = int(raw.get("precision") or 18) or 18
        scale = int(raw.get("scale") or 0)
    length = int(raw.get("length") or 0) or None
    values = tuple(str(p["value"]) for p in raw.get("picklistValues", []) if p.get("active", True))
    return Field(
        name=str(raw["name"]),
        type=ftype,
        length=length if ftype.is_text and ftype is not FieldType.ID else None,
        precision=precision,
        scale=scale,
        required=not raw.get("nillable", True)
        and createable
        and not raw.get("defaultedOnCreate", False),
        key=raw["name"] == "Id",
        read_only=not (createable or updateable),
        allowed_values=values if ftype is FieldType.ENUM else None,
        label=raw.get("label") or None,
        key_rule=key_rule(raw),
    )
