"""What a sync profile may say: two objects kept in step, in both directions.

    a: {connection: warehouse, object: suppliers, modified: updated_at}
    b: {connection: crm, object: Accounts, filter: "account_type = 'Supplier'"}
    link: {a: [vat_id], b: [sic_code], store_in: {b: supplier_id_c}}
    fields:
      - {a: name, b: name}
      - {a: phone, b: phone_office}
      - {a: notes, b: description, direction: a_to_b}
    conflicts: {policy: newest, fields: {phone: manual}}
    deletes: {a_to_b: soft, b_to_a: ignore}
    inserts: {a_to_b: create, b_to_a: never}

docs/sync.md describes every setting; ``crmbridge profile schema --sync`` exports the JSON Schema.
"""

from __future__ import annotations

import enum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from crmbridge.core.identity import KeyRule
from crmbridge.profiles.model import ConnectionRef, Scalar, _Strict
from crmbridge.profiles.ops_model import Notify, Schedule


class Direction(enum.StrEnum):
    BOTH = "both"
    A_TO_B = "a_to_b"
    B_TO_A = "b_to_a"
    NONE = "none"


class Policy(enum.StrEnum):
    """Who wins when both sides changed a field to different values."""

    A = "a"
    B = "b"
    NEWEST = "newest"  # the side whose record was modified last
    MANUAL = "manual"  # neither: the field is held and listed (crmbridge conflicts)


class DeletePolicy(enum.StrEnum):
    SOFT = "soft"  # set the other side's deleted_flag; without one, its delete (a CRM's is soft)
    HARD = "hard"  # delete the other side's record (its connector's delete)
    IGNORE = "ignore"  # leave the other side's record; the link stays
    #: leave the other side's record; forget the link. That record is then like one never
    #: synced: under ``inserts: create`` a later sync that reads it writes it back
    UNLINK = "unlink"


class InsertPolicy(enum.StrEnum):
    CREATE = "create"  # create it on the other side (after the duplicate check of the link rule)
    NEVER = "never"  # records new on this side stay there


class TooLong(enum.StrEnum):
    """A value longer than the other side's field allows."""

    REJECT = "reject"  # the record's write to that side is rejected, with the reason
    TRUNCATE = "truncate"  # cut to the limit (at a character boundary) and written
    HOLD = "hold"  # the field is held as a conflict (the rest of the record syncs)


class Side(_Strict):
    """One side of a sync: the records of an object that take part."""

    connection: ConnectionRef
    object: str = Field(description="table, file, sheet or CRM module")
    filter: str | None = Field(
        default=None,
        description="SQL condition: the records that take part (leaving it is not a delete)",
    )
    id: str | None = Field(
        default=None, description="the field holding a record's id (default: the object's id)"
    )
    modified: str | None = Field(
        default=None,
        description="a field that grows when a record changes (a modified time): changes are "
        "read from it on, and `newest` compares it; without it, changes are found by comparing "
        "the synced fields with what was synced last",
    )
    timezone: str = Field(
        default="UTC",
        description="where this side keeps date-times as wall-clock times (a MySQL DATETIME, a "
        "spreadsheet), their time zone, e.g. Europe/Berlin; leave UTC for instants",
    )
    deleted_flag: str | None = Field(
        default=None,
        description="a boolean field that marks a deleted record (is_deleted): such records "
        "are read as deleted, and a soft delete sets it instead of deleting the record",
    )
    overlap_seconds: float = Field(
        default=60.0,
        ge=0,
        description="changes are read from the last modified value seen minus this much, so a "
        "change committed late is not missed (records read again compare unchanged)",
    )
    defaults: dict[str, Scalar] = Field(
        default_factory=dict,
        description="fields set on records created on this side (territory, owner, type)",
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from None
        return value


class Link(_Strict):
    """How a record of a is paired with a record of b the first time."""

    a: list[str] = Field(min_length=1, description="fields of a compared with `b`, in order")
    b: list[str] = Field(min_length=1, description="fields of b compared with `a`, in order")
    rules: dict[str, KeyRule] = Field(
        default_factory=dict,
        description="a's field -> how the pair compares (exact, casefold, email, phone); "
        "default: as side b compares its field",
    )
    fuzzy: float | None = Field(
        default=None,
        ge=50,
        le=100,
        description="also propose links of records whose compared text is this similar "
        "(0-100, rapidfuzz ratio): listed, made only with --accept-links",
    )
    accept_above: float | None = Field(
        default=None,
        ge=50,
        le=100,
        description="fuzzy proposals this similar or more are linked without --accept-links",
    )
    store_in: dict[str, str] = Field(
        default_factory=dict,
        description="side -> field that holds the other side's id (e.g. {b: comp_supplierid}); "
        "kept filled by the sync",
    )

    @model_validator(mode="after")
    def _pairs(self) -> Link:
        if len(self.a) != len(self.b):
            raise ValueError("link.a and link.b name the same number of fields")
        unknown = set(self.store_in) - {"a", "b"}
        if unknown:
            raise ValueError(f"store_in names sides a and b, not {', '.join(sorted(unknown))}")
        return self


class FieldPair(_Strict):
    """A field kept equal on both sides."""

    a: str = Field(description="the field on side a")
    b: str = Field(description="the field on side b")
    direction: Direction = Field(default=Direction.BOTH, description="both, a_to_b, b_to_a, none")
    a_to_b: str | None = Field(
        default=None, description="expression over a's fields giving b's value (default: the value)"
    )
    b_to_a: str | None = Field(
        default=None, description="expression over b's fields giving a's value (default: the value)"
    )
    policy: Policy | None = Field(default=None, description="this field's conflict policy")
    too_long: TooLong | None = Field(
        default=None,
        description="a value longer than the other side allows: reject (the record's write), "
        "truncate (cut to fit, as changes.csv shows), hold (as a conflict); default: "
        "conflicts.too_long",
    )


class Conflicts(_Strict):
    policy: Policy = Field(default=Policy.MANUAL, description="a, b, newest or manual")
    fields: dict[str, Policy] = Field(
        default_factory=dict, description="a's field name -> the policy for that field"
    )
    #: a change on one side while the other deleted the record
    update_vs_delete: str = Field(
        default="hold",
        pattern="^(revive|delete|hold)$",
        description="revive (write the record back), delete (the delete wins), hold (list it); "
        "logged as a conflict of the field $record either way",
    )
    too_long: TooLong = Field(
        default=TooLong.REJECT, description="reject, truncate or hold (see the field pairs)"
    )


class Deletes(_Strict):
    a_to_b: DeletePolicy = Field(
        default=DeletePolicy.IGNORE, description="a record deleted in a: soft, hard, ignore, unlink"
    )
    b_to_a: DeletePolicy = Field(
        default=DeletePolicy.IGNORE, description="a record deleted in b: soft, hard, ignore, unlink"
    )


class Inserts(_Strict):
    a_to_b: InsertPolicy = Field(
        default=InsertPolicy.CREATE, description="a record new in a: create it in b, or never"
    )
    b_to_a: InsertPolicy = Field(
        default=InsertPolicy.CREATE, description="a record new in b: create it in a, or never"
    )


class SyncProfile(_Strict):
    id: str | None = Field(default=None, description="a stable identity for the sync's state")
    name: str | None = Field(default=None, description="default: the file name without .yaml")
    description: str | None = None
    a: Side
    b: Side
    link: Link
    fields: list[FieldPair] = Field(min_length=1)
    conflicts: Conflicts = Field(default_factory=Conflicts)
    deletes: Deletes = Field(default_factory=Deletes)
    inserts: Inserts = Field(default_factory=Inserts)
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    schedule: Schedule | None = Field(
        default=None, description="when it runs by itself (docs/schedules.md)"
    )
    notify: Notify | None = Field(
        default=None, description="whom to tell when a run fails or rejects records"
    )

    def ends(self) -> list[tuple[Any, str]]:
        """(connection, object) of each side, for the sync's identity."""
        return [(self.a.connection, self.a.object), (self.b.connection, self.b.object)]

    @model_validator(mode="after")
    def _fields_once(self) -> SyncProfile:
        for side in ("a", "b"):
            names = [getattr(f, side) for f in self.fields]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"fields of {side} synced twice: {', '.join(twice)}")
        return self


def json_schema() -> dict[str, Any]:
    schema = SyncProfile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "crmbridge sync profile"
    return schema
