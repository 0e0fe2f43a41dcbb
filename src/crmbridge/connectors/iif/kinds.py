"""The three things an IIF export holds, as objects with fixed fields.

* ``customers.iif``: one record per customer (``!CUST`` rows);
* ``invoices.iif`` and ``sales_receipts.iif``: one record per *line* of a document; the
  consecutive records sharing a ``DOCNUM`` form one transaction (``TRNS``, a ``SPL`` per
  line, ``ENDTRNS``). ``DATE``, ``NAME``, ``ACCNT``, ``MEMO``, ``DUEDATE``, ``TERMS`` and
  ``PAYMETH`` come from the document's first line; ``ITEM``, ``LINE_ACCNT``, ``LINE_MEMO``,
  ``QNTY``, ``PRICE``, ``AMOUNT`` and ``TAXABLE`` belong to each line.

Lengths are QuickBooks Desktop's (names 41 characters, items and accounts 31, document
numbers 11).
"""

from __future__ import annotations

from dataclasses import dataclass

from crmbridge.core.schema import Field, FieldType, ObjectSchema

CUSTOMERS = "customers.iif"
INVOICES = "invoices.iif"
SALES_RECEIPTS = "sales_receipts.iif"


@dataclass(frozen=True)
class Kind:
    object: str
    #: the TRNSTYPE of a transaction kind; None for the customer list
    trnstype: str | None
    #: the TRNS account when a record names none
    default_account: str | None
    schema: ObjectSchema


def _s(name: str, length: int | None = None, *, required: bool = False) -> Field:
    return Field(name, FieldType.STRING, length=length, required=required)


def _money(name: str, scale: int = 2) -> Field:
    return Field(name, FieldType.DECIMAL, precision=18, scale=scale)


_CUSTOMER_FIELDS = (
    _s("NAME", 41, required=True),
    _s("COMPANYNAME", 41),
    _s("FIRSTNAME", 25),
    _s("LASTNAME", 25),
    *(_s(f"BADDR{n}", 41) for n in range(1, 6)),
    _s("PHONE1", 21),
    _s("PHONE2", 21),
    _s("FAXNUM", 21),
    _s("EMAIL", 99),
    _s("CTYPE", 31),
    _s("TERMS", 31),
    Field("TAXABLE", FieldType.BOOLEAN),
    _money("LIMIT"),
    Field("NOTE", FieldType.TEXT, length=4095),
)


def _document_fields(*, invoice: bool) -> tuple[Field, ...]:
    return (
        _s("DOCNUM", 11, required=True),
        Field("DATE", FieldType.DATE, required=True),
        _s("NAME", 41, required=True),
        _s("ACCNT", 31),
        _s("MEMO", 4095),
        *((Field("DUEDATE", FieldType.DATE), _s("TERMS", 31)) if invoice else (_s("PAYMETH", 31),)),
        _s("ITEM", 31),
        _s("LINE_ACCNT", 31, required=True),
        _s("LINE_MEMO", 4095),
        _money("QNTY", 5),
        _money("PRICE", 5),
        _money("AMOUNT"),
        Field("TAXABLE", FieldType.BOOLEAN),
    )


KINDS: dict[str, Kind] = {
    CUSTOMERS: Kind(CUSTOMERS, None, None, ObjectSchema(CUSTOMERS, _CUSTOMER_FIELDS)),
    INVOICES: Kind(
        INVOICES,
        "INVOICE",
        "Accounts Receivable",
        ObjectSchema(INVOICES, _document_fields(invoice=True)),
    ),
    SALES_RECEIPTS: Kind(
        SALES_RECEIPTS,
        "CASH SALE",
        "Undeposited Funds",
        ObjectSchema(SALES_RECEIPTS, _document_fields(invoice=False)),
    ),
}

#: header rows of a transaction file: TRNS and SPL columns
TRNS_COLUMNS = ("TRNSID", "TRNSTYPE", "DATE", "ACCNT", "NAME", "AMOUNT", "DOCNUM", "MEMO",
                "DUEDATE", "TERMS", "PAYMETH")  # fmt: skip
SPL_COLUMNS = ("SPLID", "TRNSTYPE", "DATE", "ACCNT", "NAME", "AMOUNT", "DOCNUM", "MEMO", "QNTY",
               "PRICE", "INVITEM", "TAXABLE")  # fmt: skip
#: per-document fields (from the TRNS row) and per-line fields (from the SPL rows)
HEADER_FIELDS = ("DOCNUM", "DATE", "NAME", "ACCNT", "MEMO", "DUEDATE", "TERMS", "PAYMETH")
