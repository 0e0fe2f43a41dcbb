"""The entities the connector offers and their fields: QuickBooks Online has no metadata API,
so this catalog is the connector's knowledge of the Accounting API (minor version 75).

A field's name is its JSON path joined with ``_`` (QuickBooks property names have none):
``DisplayName``, ``PrimaryEmailAddr_Address``, ``BillAddr_City``, ``CustomerRef_value``,
``MetaData_LastUpdatedTime``. ``Line`` is the JSON text of the lines of a sales document or
payment. ``Deleted`` is the connector's own: true for a deleted transaction read through
change data capture (a record with nothing but its ``Id`` and ``MetaData_LastUpdatedTime``).

``query`` names the property a query may filter on (``CustomerRef`` for
``CustomerRef_value``); fields without one are filtered locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from crmbridge.core.identity import KeyRule
from crmbridge.core.schema import Field, FieldType, ObjectSchema

#: the connector's field that marks deleted transactions
DELETED = "Deleted"
LAST_UPDATED = "MetaData_LastUpdatedTime"


@dataclass(frozen=True)
class Spec:
    """One field: its name, where it is in the JSON, its type and what the API allows."""

    name: str
    type: FieldType = FieldType.STRING
    length: int | None = None
    required: bool = False
    read_only: bool = False
    #: property name in a query's WHERE (``MetaData.LastUpdatedTime``); None: not queryable
    query: str | None = None
    scale: int | None = None
    allowed: tuple[str, ...] | None = None
    #: how a match key on it compares: names are unique case-insensitively in QuickBooks
    key_rule: KeyRule = KeyRule.EXACT

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split("_")) if self.name != DELETED else ()

    def field(self) -> Field:
        precision = 18 if self.type is FieldType.DECIMAL else None
        return Field(
            self.name,
            self.type,
            length=self.length,
            precision=precision,
            scale=self.scale,
            required=self.required,
            key=self.name == "Id",
            read_only=self.read_only,
            allowed_values=self.allowed,
            key_rule=self.key_rule,
        )


@dataclass(frozen=True)
class EntityDef:
    name: str
    #: "list": deactivated (``Active`` false), never deleted; "transaction": deleted
    kind: str
    specs: tuple[Spec, ...]
    #: the field whose value must be unique (duplicate name error 6240), if any
    unique: str | None = None

    @property
    def is_list(self) -> bool:
        return self.kind == "list"

    def spec(self, name: str) -> Spec | None:
        for spec in self.specs:
            if spec.name == name:
                return spec
        return None

    @property
    def schema(self) -> ObjectSchema:
        return _schema(self)


@cache
def _schema(entity: EntityDef) -> ObjectSchema:
    return ObjectSchema(
        entity.name, tuple(s.field() for s in entity.specs), id_field="Id", deleted_field=DELETED
    )


S, T, D, B = FieldType.STRING, FieldType.TEXT, FieldType.DECIMAL, FieldType.BOOLEAN


def _money(name: str, **kw: object) -> Spec:
    return Spec(name, D, scale=2, **kw)  # type: ignore[arg-type]


def _address(prefix: str) -> tuple[Spec, ...]:
    return (
        Spec(f"{prefix}_Line1", length=500),
        Spec(f"{prefix}_Line2", length=500),
        Spec(f"{prefix}_City", length=255),
        Spec(f"{prefix}_CountrySubDivisionCode", length=255),
        Spec(f"{prefix}_PostalCode", length=30),
        Spec(f"{prefix}_Country", length=255),
    )


_HEAD = (
    Spec("Id", FieldType.ID, read_only=True, query="Id"),
    Spec("SyncToken", read_only=True),
)
_TAIL = (
    Spec("MetaData_CreateTime", FieldType.DATETIME, read_only=True, query="MetaData.CreateTime"),
    Spec(LAST_UPDATED, FieldType.DATETIME, read_only=True, query="MetaData.LastUpdatedTime"),
    Spec(DELETED, B, read_only=True),
)


def _sales(extra: tuple[Spec, ...]) -> tuple[Spec, ...]:
    return (
        *_HEAD,
        Spec("DocNumber", length=21, query="DocNumber"),
        Spec("TxnDate", FieldType.DATE, query="TxnDate"),
        Spec("CustomerRef_value", FieldType.ID, required=True, query="CustomerRef"),
        Spec("CustomerRef_name", read_only=True),
        _money("TotalAmt", read_only=True, query="TotalAmt"),
        Spec("Line", T, required=True),
        *extra,
        Spec("PrivateNote", T, length=4000),
        Spec("CustomerMemo_value", length=1000),
        Spec("BillEmail_Address", length=100),
        *_address("BillAddr"),
        Spec("CurrencyRef_value", length=3),
        *_TAIL,
    )


ENTITIES: dict[str, EntityDef] = {
    e.name: e
    for e in (
        EntityDef(
            "Customer",
            "list",
            (
                *_HEAD,
                Spec("DisplayName", length=500, query="DisplayName", key_rule=KeyRule.CASEFOLD),
                Spec("Title", length=16),
                Spec("GivenName", length=100, query="GivenName"),
                Spec("MiddleName", length=100),
                Spec("FamilyName", length=100, query="FamilyName"),
                Spec("Suffix", length=16),
                Spec("CompanyName", length=100, query="CompanyName"),
                Spec("FullyQualifiedName", read_only=True, query="FullyQualifiedName"),
                Spec("PrintOnCheckName", length=110),
                Spec("PrimaryEmailAddr_Address", length=100, query="PrimaryEmailAddr"),
                Spec("PrimaryPhone_FreeFormNumber", length=30),
                Spec("Mobile_FreeFormNumber", length=30),
                Spec("WebAddr_URI", length=1000),
                *_address("BillAddr"),
                *_address("ShipAddr"),
                Spec("Notes", T, length=2000),
                Spec("Active", B, query="Active"),
                Spec("Taxable", B),
                _money("Balance", read_only=True, query="Balance"),
                Spec("CurrencyRef_value", length=3),
                Spec("Job", B, read_only=True),
                *_TAIL,
            ),
            unique="DisplayName",
        ),
        EntityDef(
            "Item",
            "list",
            (
                *_HEAD,
                Spec(
                    "Name",
                    length=100,
                    required=True,
                    query="Name",
                    key_rule=KeyRule.CASEFOLD,
                ),
                Spec("FullyQualifiedName", read_only=True),
                Spec("Description", T, length=4000),
                Spec(
                    "Type",
                    FieldType.ENUM,
                    query="Type",
                    allowed=("Service", "NonInventory", "Inventory"),
                ),
                Spec("UnitPrice", D, scale=5),
                Spec("Sku", length=100, query="Sku"),
                Spec("Taxable", B),
                Spec("Active", B, query="Active"),
                Spec("IncomeAccountRef_value", FieldType.ID),
                Spec("IncomeAccountRef_name", read_only=True),
                *_TAIL,
            ),
            unique="Name",
        ),
        EntityDef(
            "Estimate",
            "transaction",
            _sales(
                (
                    Spec(
                        "TxnStatus",
                        FieldType.ENUM,
                        query="TxnStatus",
                        allowed=("Pending", "Accepted", "Closed", "Rejected"),
                    ),
                    Spec("ExpirationDate", FieldType.DATE, query="ExpirationDate"),
                )
            ),
        ),
        EntityDef(
            "Invoice",
            "transaction",
            _sales(
                (
                    Spec("DueDate", FieldType.DATE, query="DueDate"),
                    _money("Balance", read_only=True, query="Balance"),
                    Spec(
                        "EmailStatus",
                        FieldType.ENUM,
                        allowed=("NotSet", "NeedToSend", "EmailSent"),
                    ),
                )
            ),
        ),
        EntityDef(
            "SalesReceipt",
            "transaction",
            _sales(
                (
                    Spec("PaymentRefNum", length=21),
                    Spec("DepositToAccountRef_value", FieldType.ID),
                    _money("Balance", read_only=True),
                )
            ),
        ),
        EntityDef(
            "Payment",
            "transaction",
            (
                *_HEAD,
                Spec("TxnDate", FieldType.DATE, query="TxnDate"),
                Spec("CustomerRef_value", FieldType.ID, required=True, query="CustomerRef"),
                Spec("CustomerRef_name", read_only=True),
                _money("TotalAmt", required=True, query="TotalAmt"),
                _money("UnappliedAmt", read_only=True),
                Spec("PaymentRefNum", length=21),
                Spec("DepositToAccountRef_value", FieldType.ID),
                Spec("PrivateNote", T, length=4000),
                Spec("CurrencyRef_value", length=3),
                Spec("Line", T),
                *_TAIL,
            ),
        ),
    )
}
