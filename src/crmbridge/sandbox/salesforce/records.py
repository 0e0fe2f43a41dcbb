"""Record writes shared by every API (single REST calls, sObject Collections, Bulk API 2.0):
the checks Salesforce makes, the fields it maintains, and the errors it answers.

A body is a mapping of field names (any case) to wire values. A JSON body may set a
reference through the related object's external id (``"Account": {"Ext_Id__c": "A-1"}``), a
CSV row through a column ``Account.Ext_Id__c``. Values of the wrong type refuse the whole
JSON call (``JSON_PARSER_ERROR``) but only the record in CSV; every other problem refuses the
record (:class:`RecordRefusedError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crmbridge.sandbox.salesforce import ids
from crmbridge.sandbox.salesforce.errors import ApiError, RecordRefusedError
from crmbridge.sandbox.salesforce.objects import (
    STAGES,
    FieldDef,
    ObjectDef,
    find_object,
    object_of_id,
)
from crmbridge.sandbox.salesforce.store import Store
from crmbridge.sandbox.salesforce.values import BadValueError, from_csv, json_type_name, to_storage


class MultipleMatchesError(Exception):
    """An upsert's external id value matches several records."""

    def __init__(self, field: str, record_ids: list[str]) -> None:
        super().__init__(field)
        self.field = field
        self.ids = record_ids

    def failure(self) -> RecordRefusedError:
        return RecordRefusedError(
            "DUPLICATE_EXTERNAL_ID",
            f"{self.field}: more than one record found for external id field: "
            f"[{', '.join(self.ids)}]",
            [self.field],
        )


@dataclass(frozen=True)
class Saved:
    id: str
    created: bool


class Records:
    """Writes of one user (``user_id`` becomes owner, creator and last modifier)."""

    def __init__(self, store: Store, user_id: str) -> None:
        self.store = store
        self.user_id = user_id

    # -- operations -----------------------------------------------------------------------
    def create(self, odef: ObjectDef, body: Mapping[str, Any], *, csv: bool = False) -> str:
        values = self._values(odef, body, csv=csv, creating=True)
        if "Id" in values:
            raise RecordRefusedError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        with self.store.transaction():
            now = self.store.now()
            record_id = self.store.new_id(odef)
            row: dict[str, Any] = {f.name: None for f in odef.fields}
            row.update(_defaults(odef, self.user_id))
            row.update(values)
            row.update(
                Id=record_id, IsDeleted=0, CreatedDate=now, CreatedById=self.user_id,
                LastModifiedDate=now, LastModifiedById=self.user_id, SystemModstamp=now,
            )  # fmt: skip
            _derive(odef, row, set(values), creating=True)
            self._check_required(odef, row, list(row))
            self._check_unique(odef, row, None)
            self.store.insert(odef, row)
        return record_id

    def update(
        self, odef: ObjectDef, record_id: Any, body: Mapping[str, Any], *, csv: bool = False
    ) -> str:
        found = self.live_id(odef, record_id)
        values = self._values(odef, body, csv=csv, creating=False)
        values.pop("Id", None)
        with self.store.transaction():
            row = self.store.row(odef, found)
            assert row is not None
            row.update(values)
            now = self.store.now()
            row.update(LastModifiedDate=now, LastModifiedById=self.user_id, SystemModstamp=now)
            changed = _derive(odef, row, set(values), creating=False)
            self._check_required(odef, row, list(values))
            self._check_unique(odef, row, found)
            keep = {"LastModifiedDate", "LastModifiedById", "SystemModstamp"}
            self.store.update(odef, found, {k: row[k] for k in {*values, *keep, *changed}})
        return found

    def upsert(
        self,
        odef: ObjectDef,
        ext: FieldDef,
        value: Any,
        body: Mapping[str, Any],
        *,
        csv: bool = False,
    ) -> Saved:
        """Update the record whose ``ext`` equals ``value``, or create one with that value."""
        given = {k: v for k, v in body.items() if k.lower() != ext.name.lower()}
        if ext.name == "Id":
            if value in (None, ""):
                return Saved(self.create(odef, given, csv=csv), True)
            return Saved(self.update(odef, value, given, csv=csv), False)
        if value in (None, ""):
            raise RecordRefusedError("MISSING_ARGUMENT", f"{ext.name} not specified", [ext.name])
        key = to_storage(ext, value)
        matches = self.store.ids_where(odef, ext, key)
        if len(matches) > 1:
            raise MultipleMatchesError(ext.name, matches)
        if matches:
            return Saved(self.update(odef, matches[0], given, csv=csv), False)
        return Saved(self.create(odef, {**given, ext.name: value}, csv=csv), True)

    def delete(self, odef: ObjectDef | None, record_id: Any, *, hard: bool = False) -> str:
        """Soft delete (to the recycle bin) or, with ``hard``, remove the record for good."""
        text = str(record_id or "")
        full = ids.normalize(text)
        if full is None:
            raise RecordRefusedError("MALFORMED_ID", f"malformed id {text}", [])
        odef = odef or object_of_id(full)
        row = self.store.row(odef, full) if odef else None
        if odef is None or row is None:
            raise RecordRefusedError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []
            )
        if row["IsDeleted"] and not hard:
            raise RecordRefusedError("ENTITY_IS_DELETED", "entity is deleted", [])
        if hard:
            self.store.remove(odef, full)
        else:
            now = self.store.now()
            self.store.update(
                odef, full,
                {"IsDeleted": 1, "SystemModstamp": now, "LastModifiedDate": now,
                 "LastModifiedById": self.user_id},
            )  # fmt: skip
        return full

    def live_id(self, odef: ObjectDef, record_id: Any) -> str:
        """The 18-character id of a live record of ``odef``, else the RecordRefusedError."""
        text = str(record_id or "")
        if not text:
            raise RecordRefusedError("MISSING_ARGUMENT", "Id not specified in an update call", [])
        full = ids.normalize(text)
        if full is None or full[:3] != odef.prefix:
            raise RecordRefusedError(
                "MALFORMED_ID", f"{odef.label} ID: id value of incorrect type: {text}", ["Id"]
            )
        row = self.store.row(odef, full)
        if row is None:
            raise RecordRefusedError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []
            )
        if row["IsDeleted"]:
            raise RecordRefusedError("ENTITY_IS_DELETED", "entity is deleted", [])
        return full

    # -- checks ---------------------------------------------------------------------------
    def _values(
        self, odef: ObjectDef, body: Mapping[str, Any], *, csv: bool, creating: bool
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        refused: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue
            if csv and raw == "":
                continue  # an empty cell leaves the field alone
            if "." in key or isinstance(raw, dict):
                name, target = self._reference(odef, key, raw, csv=csv)
                values[name] = target
                continue
            fdef = odef.field(key)
            if fdef is None:
                raise ApiError(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {odef.name}"
                )
            if fdef.name == "Id":
                values["Id"] = raw
                continue
            if not fdef.createable:
                refused.append(fdef.name)
                continue
            values[fdef.name] = self._convert(odef, fdef, raw, csv=csv)
        if refused:
            raise RecordRefusedError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(refused)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                refused,
            )
        return values

    def _convert(self, odef: ObjectDef, fdef: FieldDef, raw: Any, *, csv: bool) -> Any:
        try:
            value = from_csv(fdef, raw) if csv else to_storage(fdef, raw)
        except BadValueError:
            if csv:
                raise RecordRefusedError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{fdef.label}: value not of required type: {raw}",
                    [fdef.name],
                ) from None
            raise ApiError(
                400,
                "JSON_PARSER_ERROR",
                f"Cannot deserialize instance of {json_type_name(fdef)} from VALUE_STRING "
                f"value {raw} or request may be missing a required field",
            ) from None
        if fdef.type == "reference" and value is not None:
            value = self._reference_id(fdef, value)
        return value

    def _reference_id(self, fdef: FieldDef, value: str) -> str:
        full = ids.normalize(value)
        target = find_object(fdef.reference_to[0])
        assert target is not None
        if full is None or full[:3] != target.prefix:
            raise RecordRefusedError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{fdef.label}: id value of incorrect type: {value}",
                [fdef.name],
            )
        row = self.store.row(target, full)
        if row is None:
            raise RecordRefusedError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name]
            )
        if row["IsDeleted"]:
            raise RecordRefusedError("ENTITY_IS_DELETED", "entity is deleted", [fdef.name])
        return full

    def _reference(self, odef: ObjectDef, key: str, raw: Any, *, csv: bool) -> tuple[str, Any]:
        """``Account.Ext_Id__c`` / ``"Account": {"Ext_Id__c": v}`` -> (AccountId, the id)."""
        if isinstance(raw, dict):
            items = [(k, v) for k, v in raw.items() if k != "attributes"]
            if len(items) != 1:
                raise ApiError(
                    400, "INVALID_FIELD", f"A relationship on {key} needs exactly one field"
                )
            relationship, (ext_name, value) = key, items[0]
        else:
            relationship, _, ext_name = key.partition(".")
            value = raw
        ref = odef.relationship(relationship)
        if ref is None:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {odef.name}"
            )
        target = find_object(ref.reference_to[0])
        assert target is not None
        ext = target.field(ext_name)
        if ext is None or not (ext.external_id or ext.name == "Id"):
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Field {ext_name} is not an external id field of {target.name}",
            )
        if value in (None, "") or (csv and value == "#N/A"):
            return ref.name, None
        if ext.name == "Id":
            return ref.name, self._reference_id(ref, str(value))
        matches = self.store.ids_where(target, ext, to_storage(ext, value))
        if not matches:
            raise RecordRefusedError(
                "INVALID_FIELD",
                f"Foreign key external ID: {value} not found for field {ext.name} in entity "
                f"{target.name}",
                [ref.name],
            )
        if len(matches) > 1:
            raise RecordRefusedError(
                "INVALID_FIELD",
                f"More than 1 record found for external id field: {ext.name} value {value} "
                f"in entity {target.name}",
                [ref.name],
            )
        return ref.name, matches[0]

    def _check_required(self, odef: ObjectDef, row: dict[str, Any], names: list[str]) -> None:
        missing = [
            f.name
            for f in odef.fields
            if f.required and f.createable and f.name in names and row.get(f.name) is None
        ]
        if missing:
            raise RecordRefusedError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )

    def _check_unique(self, odef: ObjectDef, row: dict[str, Any], own: str | None) -> None:
        for fdef in odef.fields:
            if not fdef.unique or row.get(fdef.name) is None or fdef.name == "Id":
                continue
            others = [i for i in self.store.ids_where(odef, fdef, row[fdef.name]) if i != own]
            if others:
                raise RecordRefusedError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {fdef.name} duplicates value on record with id: "
                    f"{others[0]}",
                    [fdef.name],
                )


def _defaults(odef: ObjectDef, user_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fdef in odef.fields:
        if fdef.type == "boolean":
            out[fdef.name] = 1 if fdef.name == "IsActive" else 0
        elif fdef.name == "OwnerId":
            out[fdef.name] = user_id
        elif fdef.name == "Status" and fdef.picklist:
            out[fdef.name] = fdef.picklist[0]
    return out


def _derive(odef: ObjectDef, row: dict[str, Any], given: set[str], *, creating: bool) -> set[str]:
    """Fill the fields Salesforce computes; the names of those that changed."""
    changed: set[str] = set()
    if odef.field("Name") and odef.field("Name").calculated:  # type: ignore[union-attr]
        name = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        row["Name"] = name or None
        changed.add("Name")
    if odef.name == "Opportunity":
        stage = row.get("StageName")
        row["IsClosed"] = int(stage in ("Closed Won", "Closed Lost"))
        row["IsWon"] = int(stage == "Closed Won")
        changed |= {"IsClosed", "IsWon"}
        if "Probability" not in given and (creating or "StageName" in given):
            row["Probability"] = float(STAGES.get(str(stage), 0))
            changed.add("Probability")
    return changed
