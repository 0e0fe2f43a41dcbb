"""The entities the sandbox serves: their properties, which ones a query may filter on, and
which are list entities (deactivated, never deleted) or transactions (deleted).

A property's ``kind`` says how its JSON value is checked and compared:

* ``str`` text (``max_len`` characters), ``enum`` text from ``options``;
* ``decimal`` a JSON number, ``int``, ``bool``, ``date`` (``YYYY-MM-DD``), ``datetime``
  (ISO 8601 with an offset);
* ``ref`` an object ``{"value": id, "name": ...}`` pointing at ``target``;
* ``object`` a nested object (addresses, e-mail, phone, memo) kept as given;
* ``lines`` the ``Line`` array of a sales document or payment.

``query`` is the JSON path a query filters on (``CustomerRef`` filters on
``$.CustomerRef.value``); a property without one is not queryable, as on the real server.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Prop:
    name: str
    kind: str = "str"
    max_len: int | None = None
    required: bool = False
    read_only: bool = False
    #: JSON path filtered on by a query (``$.DisplayName``); None: not queryable
    query: str | None = None
    options: tuple[str, ...] = ()
    target: str | None = None  # the entity a ref points at


@dataclass(frozen=True)
class Entity:
    name: str
    #: "list" (Customer, Item, Account: made inactive, never deleted) or "transaction"
    kind: str
    props: tuple[Prop, ...]
    #: the property whose value must be unique (6240 Duplicate Name Exists)
    unique: str | None = None
    _by_name: dict[str, Prop] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.props})

    def prop(self, name: str) -> Prop | None:
        return self._by_name.get(name)

    @property
    def is_list(self) -> bool:
        return self.kind == "list"

    def queryable(self, name: str) -> Prop | None:
        """The property a query names (``MetaData.LastUpdatedTime`` included), if queryable."""
        if name in _META:
            return _META[name]
        found = self._by_name.get(name)
        return found if found is not None and found.query else None


_META = {
    "Id": Prop("Id", "id", query="$.Id"),
    "MetaData.CreateTime": Prop("MetaData.CreateTime", "datetime", query="$.MetaData.CreateTime"),
    "MetaData.LastUpdatedTime": Prop(
        "MetaData.LastUpdatedTime", "datetime", query="$.MetaData.LastUpdatedTime"
    ),
}

_COMMON = (
    Prop("Id", "id", read_only=True),
    Prop("SyncToken", "str", read_only=True),
    Prop("MetaData", "object", read_only=True),
    Prop("domain", "str", read_only=True),
    Prop("sparse", "bool", read_only=True),
)

_SALES_DOC = (
    Prop("DocNumber", max_len=21, query="$.DocNumber"),
    Prop("TxnDate", "date", query="$.TxnDate"),
    Prop("CustomerRef", "ref", required=True, query="$.CustomerRef.value", target="Customer"),
    Prop("Line", "lines", required=True),
    Prop("TotalAmt", "decimal", read_only=True, query="$.TotalAmt"),
    Prop("CurrencyRef", "object"),
    Prop("BillEmail", "object"),
    Prop("BillAddr", "object"),
    Prop("ShipAddr", "object"),
    Prop("CustomerMemo", "object"),
    Prop("PrivateNote", max_len=4000),
    Prop("LinkedTxn", "object", read_only=True),
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "Customer",
            "list",
            (
                *_COMMON,
                Prop("DisplayName", max_len=500, query="$.DisplayName"),
                Prop("Title", max_len=16),
                Prop("GivenName", max_len=100, query="$.GivenName"),
                Prop("MiddleName", max_len=100),
                Prop("FamilyName", max_len=100, query="$.FamilyName"),
                Prop("Suffix", max_len=16),
                Prop("CompanyName", max_len=100, query="$.CompanyName"),
                Prop("FullyQualifiedName", read_only=True, query="$.FullyQualifiedName"),
                Prop("PrintOnCheckName", max_len=110),
                Prop("PrimaryEmailAddr", "object", query="$.PrimaryEmailAddr.Address"),
                Prop("PrimaryPhone", "object"),
                Prop("Mobile", "object"),
                Prop("WebAddr", "object"),
                Prop("BillAddr", "object"),
                Prop("ShipAddr", "object"),
                Prop("Notes", max_len=2000),
                Prop("Active", "bool", query="$.Active"),
                Prop("Taxable", "bool"),
                Prop("Balance", "decimal", read_only=True, query="$.Balance"),
                Prop("CurrencyRef", "object"),
                Prop("Job", "bool", read_only=True),
            ),
            unique="DisplayName",
        ),
        Entity(
            "Item",
            "list",
            (
                *_COMMON,
                Prop("Name", max_len=100, required=True, query="$.Name"),
                Prop("FullyQualifiedName", read_only=True),
                Prop("Description", max_len=4000),
                Prop("Type", "enum", options=("Service", "NonInventory"), query="$.Type"),
                Prop("UnitPrice", "decimal"),
                Prop("Sku", max_len=100, query="$.Sku"),
                Prop("Taxable", "bool"),
                Prop("Active", "bool", query="$.Active"),
                Prop("IncomeAccountRef", "ref", target="Account"),
            ),
            unique="Name",
        ),
        Entity(
            "Account",
            "list",
            (
                *_COMMON,
                Prop("Name", max_len=100, required=True, query="$.Name"),
                Prop("FullyQualifiedName", read_only=True),
                Prop(
                    "AccountType",
                    "enum",
                    options=("Income", "Other Current Asset", "Accounts Receivable", "Bank"),
                    required=True,
                    query="$.AccountType",
                ),
                Prop("Active", "bool", query="$.Active"),
                Prop("CurrentBalance", "decimal", read_only=True),
            ),
            unique="Name",
        ),
        Entity(
            "Estimate",
            "transaction",
            (
                *_COMMON,
                *_SALES_DOC,
                Prop(
                    "TxnStatus",
                    "enum",
                    options=("Pending", "Accepted", "Closed", "Rejected"),
                    query="$.TxnStatus",
                ),
                Prop("ExpirationDate", "date", query="$.ExpirationDate"),
            ),
        ),
        Entity(
            "Invoice",
            "transaction",
            (
                *_COMMON,
                *_SALES_DOC,
                Prop("DueDate", "date", query="$.DueDate"),
                Prop("Balance", "decimal", read_only=True, query="$.Balance"),
                Prop("EmailStatus", "enum", options=("NotSet", "NeedToSend", "EmailSent")),
            ),
        ),
        Entity(
            "SalesReceipt",
            "transaction",
            (
                *_COMMON,
                *_SALES_DOC,
                Prop("PaymentRefNum", max_len=21),
                Prop("DepositToAccountRef", "ref", target="Account"),
                Prop("Balance", "decimal", read_only=True),
            ),
        ),
        Entity(
            "Payment",
            "transaction",
            (
                *_COMMON,
                Prop("TxnDate", "date", query="$.TxnDate"),
                Prop(
                    "CustomerRef",
                    "ref",
                    required=True,
                    query="$.CustomerRef.value",
                    target="Customer",
                ),
                Prop("TotalAmt", "decimal", required=True, query="$.TotalAmt"),
                Prop("UnappliedAmt", "decimal", read_only=True),
                Prop("PaymentRefNum", max_len=21),
                Prop("DepositToAccountRef", "ref", target="Account"),
                Prop("PrivateNote", max_len=4000),
                Prop("CurrencyRef", "object"),
                Prop("Line", "lines"),
            ),
        ),
    )
}

#: entity names as they appear in URLs (``/customer``, ``/salesreceipt``)
BY_PATH = {name.lower(): name for name in ENTITIES}
TRANSACTIONS = tuple(n for n, e in ENTITIES.items() if not e.is_list)


def entity_named(name: str) -> Entity | None:
    """The entity called ``name`` in a query or CDC list (case-insensitive, as the server)."""
    return ENTITIES.get(BY_PATH.get(name.lower(), ""))
