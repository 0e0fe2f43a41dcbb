"""The company's books: reading, creating, updating and deleting objects, with the rules the
real server enforces.

* Update needs ``Id`` and the current ``SyncToken`` (else 5010 Stale Object Error); every
  change adds one to the SyncToken. ``"sparse": true`` changes only the properties given;
  without it the writable properties not given are cleared (a full update).
* List entities (Customer, Item, Account) are never deleted (500 Unsupported Operation):
  ``Active: false`` makes them inactive, and an inactive customer's name gets " (deleted)".
  Transactions are deleted with ``operation=delete`` and stay as tombstones for CDC.
* Names are unique per entity, case-insensitively (6240); references must point at an object
  that exists (2500) and is active (610); sales lines must add up (6070).
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crmbridge.sandbox.quickbooks.clock import Clock, company_date, show, storage
from crmbridge.sandbox.quickbooks.entities import ENTITIES, Entity, Prop
from crmbridge.sandbox.quickbooks.faults_api import (
    ApiFault,
    business,
    invalid,
    not_found,
    required,
    stale,
)
from crmbridge.sandbox.quickbooks.store import Store

_SYSTEM = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse"})
_DELETED_SUFFIX = " (deleted)"
_CENT = Decimal("0.01")


@dataclass
class Books:
    store: Store
    clock: Clock

    # -- reading -------------------------------------------------------------------------
    def read(self, entity: Entity, record_id: Any) -> dict[str, Any]:
        row = self._row(entity, record_id)
        return dict(row["doc"])

    def _row(self, entity: Entity, record_id: Any) -> dict[str, Any]:
        text = str(record_id or "")
        row = self.store.get(entity.name, int(text)) if text.isdigit() else None
        if row is None or row["deleted"]:
            raise not_found(entity.name, record_id)
        return row

    # -- writing -------------------------------------------------------------------------
    def create(self, entity: Entity, body: Any) -> dict[str, Any]:
        given = _body(body)
        _check_props(entity, given)
        now = self.clock.now()
        with self.store.transaction():
            doc = {k: v for k, v in given.items() if _writable(entity, k) and v is not None}
            doc = self._complete(entity, doc, None, now)
            doc.update(
                Id=str(self.store.next_id(entity.name)),
                SyncToken="0",
                domain="QBO",
                sparse=False,
                MetaData={"CreateTime": show(now), "LastUpdatedTime": show(now)},
            )
            self.store.put(entity.name, doc)
            self._after_change(entity, doc, None, now)
        return doc

    def update(self, entity: Entity, body: Any) -> dict[str, Any]:
        given = _body(body)
        if "Id" not in given:
            raise required("Id")
        if given.get("SyncToken") is None:
            raise required("SyncToken")
        _check_props(entity, given)
        now = self.clock.now()
        with self.store.transaction():
            row = self._row(entity, given["Id"])
            current = row["doc"]
            if str(given["SyncToken"]) != str(current["SyncToken"]):
                raise stale(entity.name, current["Id"])
            changes = {k: v for k, v in given.items() if _writable(entity, k)}
            if given.get("sparse") is True:
                doc = {**_writable_part(entity, current), **changes}
            else:
                doc = changes
            doc = self._complete(entity, doc, current, now)
            doc.update(
                Id=current["Id"],
                SyncToken=str(int(current["SyncToken"]) + 1),
                domain="QBO",
                sparse=False,
                MetaData={
                    "CreateTime": current["MetaData"]["CreateTime"],
                    "LastUpdatedTime": show(now),
                },
            )
            self.store.put(entity.name, doc)
            self._after_change(entity, doc, current, now)
        return doc

    def delete(self, entity: Entity, body: Any) -> dict[str, Any]:
        if entity.is_list:
            raise ApiFault("500", "Unsupported Operation", "Operation Delete is not supported.")
        given = _body(body)
        if "Id" not in given:
            raise required("Id")
        if given.get("SyncToken") is None:
            raise required("SyncToken")
        now = self.clock.now()
        with self.store.transaction():
            row = self._row(entity, given["Id"])
            current = row["doc"]
            if str(given["SyncToken"]) != str(current["SyncToken"]):
                raise stale(entity.name, current["Id"])
            tomb = {
                "domain": "QBO",
                "status": "Deleted",
                "Id": current["Id"],
                "MetaData": {"LastUpdatedTime": show(now)},
            }
            self.store.tombstone(entity.name, int(current["Id"]), storage(now), tomb)
            self._after_change(entity, None, current, now)
        return {"domain": "QBO", "status": "Deleted", "Id": current["Id"]}

    # -- the rules -----------------------------------------------------------------------
    def _complete(
        self, entity: Entity, doc: dict[str, Any], current: dict[str, Any] | None, now: dt.datetime
    ) -> dict[str, Any]:
        """``doc`` with derived properties set, after every rule has been checked."""
        keep = _read_only_part(entity, current) if current else {}
        doc = {**keep, **doc}
        for prop in entity.props:
            if prop.kind == "ref" and isinstance(doc.get(prop.name), dict):
                doc[prop.name] = self._ref(prop, doc[prop.name])
        name = entity.name
        if name == "Customer":
            self._customer(doc, current)
        elif entity.unique:
            if not doc.get(entity.unique):
                raise required(entity.unique)
            doc.setdefault("Active", True)
            doc["FullyQualifiedName"] = doc[entity.unique]
            self._unique(entity, doc, current)
        if name == "Item":
            doc.setdefault("Type", "Service")
            if not doc.get("IncomeAccountRef"):
                raise required("IncomeAccountRef")
        if name == "Account":
            doc.setdefault("CurrentBalance", 0)
        if name in ("Estimate", "Invoice", "SalesReceipt"):
            self._sales_document(entity, doc, current, now)
        if name == "Payment":
            self._payment(doc, current, now)
        for prop in entity.props:
            if prop.required and doc.get(prop.name) in (None, "", []):
                raise required(prop.name)
        return doc

    def _customer(self, doc: dict[str, Any], current: dict[str, Any] | None) -> None:
        entity = ENTITIES["Customer"]
        if not doc.get("DisplayName"):
            parts = [doc.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName")]
            derived = " ".join(str(p) for p in parts if p) or doc.get("CompanyName")
            if not derived:
                raise required("DisplayName")
            doc["DisplayName"] = derived
        doc.setdefault("Active", True)
        doc.setdefault("Taxable", False)
        doc.setdefault("Job", False)
        doc.setdefault("Balance", 0)
        was_active = current is None or current.get("Active", True)
        if doc["Active"] is False and was_active:
            if Decimal(str(doc.get("Balance") or 0)) != 0:
                raise business("You can't make a customer with an open balance inactive.")
            if not str(doc["DisplayName"]).endswith(_DELETED_SUFFIX):
                doc["DisplayName"] = f"{doc['DisplayName']}{_DELETED_SUFFIX}"
        doc["FullyQualifiedName"] = doc["DisplayName"]
        doc.setdefault("PrintOnCheckName", doc["DisplayName"])
        self._unique(entity, doc, current)

    def _unique(self, entity: Entity, doc: dict[str, Any], current: dict[str, Any] | None) -> None:
        key = entity.unique
        assert key is not None
        rows = self.store.query(
            f"SELECT id FROM objects WHERE entity = ? AND deleted = 0 AND "
            f"json_extract(doc, '$.{key}') = ? COLLATE NOCASE AND id <> ?",
            (entity.name, str(doc[key]), int(current["Id"]) if current else -1),
        )
        if rows:
            raise ApiFault(
                "6240",
                "Duplicate Name Exists Error",
                "The name supplied already exists. : Another customer, vendor or employee is "
                f"already using this name. Please use a different name. Id={rows[0]['id']}",
                element=key,
            )

    def _ref(self, prop: Prop, ref: dict[str, Any]) -> dict[str, Any]:
        target = ENTITIES[prop.target or ""]
        value = str(ref.get("value") or "")
        row = self.store.get(target.name, int(value)) if value.isdigit() else None
        if row is None or row["deleted"]:
            raise ApiFault(
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : {prop.name} {value!r} does not exist",
                element=prop.name,
            )
        if row["doc"].get("Active") is False:
            raise not_found(target.name, value)
        shown = row["doc"].get("DisplayName") or row["doc"].get("Name")
        return {"value": value, "name": shown}

    def _sales_document(
        self, entity: Entity, doc: dict[str, Any], current: dict[str, Any] | None, now: dt.datetime
    ) -> None:
        lines, total = self._lines(doc.get("Line"))
        doc["Line"] = lines
        doc["TotalAmt"] = float(total)
        doc.setdefault("TxnDate", company_date(now))
        if not doc.get("DocNumber"):
            doc["DocNumber"] = self._next_number(entity)
        if entity.name == "Invoice":
            paid = _paid(self.store, doc.get("Id") or (current or {}).get("Id"))
            doc["Balance"] = float(total - paid)
            doc.setdefault("EmailStatus", "NotSet")
        if entity.name == "SalesReceipt":
            doc["Balance"] = 0
        if entity.name == "Estimate":
            doc.setdefault("TxnStatus", "Pending")

    def _lines(self, raw: Any) -> tuple[list[dict[str, Any]], Decimal]:
        if not isinstance(raw, list) or not raw:
            raise required("Line")
        out: list[dict[str, Any]] = []
        total = Decimal(0)
        for item in raw:
            if not isinstance(item, dict):
                raise invalid("Line", "each Line is an object")
            kind = item.get("DetailType")
            if kind == "SubTotalLineDetail":
                continue  # the server adds its own
            if kind not in ("SalesItemLineDetail", "DescriptionOnly"):
                if kind is None:
                    raise required("Line.DetailType")
                raise ApiFault(
                    "2170", "Invalid Enumeration", f"Invalid Enumeration : {kind}", element="Line"
                )
            line = copy.deepcopy(item)
            if kind == "SalesItemLineDetail":
                line["Amount"] = float(self._sales_line(line))
                total += Decimal(str(line["Amount"]))
            out.append({"Id": str(len(out) + 1), "LineNum": len(out) + 1, **line})
        if not any(x["DetailType"] == "SalesItemLineDetail" for x in out):
            raise required("Line.SalesItemLineDetail")
        out.append(
            {"Amount": float(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        )
        return out, total

    def _sales_line(self, line: dict[str, Any]) -> Decimal:
        detail = line.get("SalesItemLineDetail")
        if not isinstance(detail, dict) or not isinstance(detail.get("ItemRef"), dict):
            raise required("Line.SalesItemLineDetail.ItemRef")
        detail["ItemRef"] = self._ref(_ITEM_REF, detail["ItemRef"])
        qty = _number(detail.get("Qty"))
        price = _number(detail.get("UnitPrice"))
        amount = _number(line.get("Amount"))
        if amount is None:
            if qty is None or price is None:
                raise required("Line.Amount")
            amount = (qty * price).quantize(_CENT)
        elif qty is not None and price is not None and (qty * price).quantize(_CENT) != amount:
            raise ApiFault(
                "6070",
                "Amount is not equal to UnitPrice * Qty",
                f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                element="Line.Amount",
            )
        return amount.quantize(_CENT)

    def _payment(
        self, doc: dict[str, Any], current: dict[str, Any] | None, now: dt.datetime
    ) -> None:
        doc.setdefault("TxnDate", company_date(now))
        total = _number(doc.get("TotalAmt"))
        if total is None:
            raise required("TotalAmt")
        applied = Decimal(0)
        own_id = (current or {}).get("Id")
        for line in doc.get("Line") or []:
            amount = _number(line.get("Amount")) if isinstance(line, dict) else None
            if amount is None:
                raise required("Line.Amount")
            for link in line.get("LinkedTxn") or []:
                invoice = self.store.get("Invoice", int(str(link.get("TxnId") or "0") or 0))
                if link.get("TxnType") != "Invoice" or invoice is None or invoice["deleted"]:
                    raise ApiFault(
                        "2500",
                        "Invalid Reference Id",
                        f"Invalid Reference Id : LinkedTxn {link.get('TxnId')!r}",
                        element="Line.LinkedTxn",
                    )
                inv = invoice["doc"]
                if inv["CustomerRef"]["value"] != doc["CustomerRef"]["value"]:
                    raise business("The invoice belongs to another customer.")
                open_amount = Decimal(str(inv["TotalAmt"])) - _paid(self.store, inv["Id"], own_id)
                if amount > open_amount:
                    raise business(
                        f"The payment of {amount} is more than the open balance {open_amount} "
                        f"of invoice {inv['Id']}."
                    )
            applied += amount
        if applied > total:
            raise business("The amounts applied are more than the payment's total.")
        doc["TotalAmt"] = float(total)
        doc["UnappliedAmt"] = float(total - applied)

    def _next_number(self, entity: Entity) -> str:
        rows = self.store.query(
            "SELECT MAX(CAST(json_extract(doc, '$.DocNumber') AS INTEGER)) AS top FROM objects "
            "WHERE entity = ?",
            (entity.name,),
        )
        return str(max(int(rows[0]["top"] or 0), 1000) + 1)

    def _after_change(
        self,
        entity: Entity,
        doc: dict[str, Any] | None,
        before: dict[str, Any] | None,
        now: dt.datetime,
    ) -> None:
        """Keep invoice balances, their LinkedTxn and customer balances in step."""
        if entity.name == "Payment":
            invoices = {*_linked(doc), *_linked(before)}
            for invoice_id in sorted(invoices):
                self._refresh_invoice(invoice_id, now)
        if entity.name in ("Invoice", "Payment"):
            customers = {
                d["CustomerRef"]["value"] for d in (doc, before) if d and d.get("CustomerRef")
            }
            for customer_id in sorted(customers):
                self._refresh_balance(customer_id)

    def _refresh_invoice(self, invoice_id: str, now: dt.datetime) -> None:
        row = self.store.get("Invoice", int(invoice_id))
        if row is None or row["deleted"]:
            return
        doc = row["doc"]
        paid = _paid(self.store, invoice_id)
        links = [{"TxnId": p, "TxnType": "Payment"} for p in _payments_of(self.store, invoice_id)]
        balance = float(Decimal(str(doc["TotalAmt"])) - paid)
        if doc.get("Balance") == balance and doc.get("LinkedTxn", []) == links:
            return
        doc["Balance"] = balance
        doc["LinkedTxn"] = links
        doc["SyncToken"] = str(int(doc["SyncToken"]) + 1)
        doc["MetaData"]["LastUpdatedTime"] = show(now)
        self.store.put("Invoice", doc)

    def _refresh_balance(self, customer_id: str) -> None:
        row = self.store.get("Customer", int(customer_id))
        if row is None:
            return
        rows = self.store.query(
            "SELECT SUM(CAST(json_extract(doc, '$.Balance') AS REAL)) AS open FROM objects "
            "WHERE entity = 'Invoice' AND deleted = 0 AND "
            "json_extract(doc, '$.CustomerRef.value') = ?",
            (customer_id,),
        )
        doc = row["doc"]
        doc["Balance"] = round(float(rows[0]["open"] or 0), 2)
        self.store.put("Customer", doc)


_ITEM_REF = Prop("ItemRef", "ref", target="Item")


def _body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("body", "the request body is not a JSON object")
    return body


def _writable(entity: Entity, name: str) -> bool:
    prop = entity.prop(name)
    return prop is not None and not prop.read_only


def _writable_part(entity: Entity, doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if _writable(entity, k)}


def _read_only_part(entity: Entity, doc: dict[str, Any] | None) -> dict[str, Any]:
    if doc is None:
        return {}
    return {k: v for k, v in doc.items() if k not in _SYSTEM and not _writable(entity, k)}


def _check_props(entity: Entity, body: dict[str, Any]) -> None:
    for name, value in body.items():
        if name in _SYSTEM:
            continue
        prop = entity.prop(name)
        if prop is None:
            raise invalid(name, f"Property Name:{name} specified is unsupported or invalid")
        if prop.read_only or value is None:
            continue
        _check_value(prop, value)


def _check_value(prop: Prop, value: Any) -> None:
    wrong = invalid(prop.name, f"Property Name:{prop.name} has an invalid value {value!r}")
    kind = prop.kind
    if kind in ("str", "enum"):
        if not isinstance(value, str):
            raise wrong
        if prop.max_len is not None and len(value) > prop.max_len:
            raise ApiFault(
                "2050",
                "String length is either shorter or longer than supported by specification",
                f"{prop.name}: {len(value)} characters, at most {prop.max_len} are supported",
                element=prop.name,
            )
        if kind == "enum" and value not in prop.options:
            raise ApiFault(
                "2170",
                "Invalid Enumeration",
                f"Invalid Enumeration : {value}",
                element=prop.name,
            )
    elif kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong
    elif kind == "bool":
        if not isinstance(value, bool):
            raise wrong
    elif kind == "date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            raise wrong from None
    elif kind in ("ref", "object"):
        if not isinstance(value, dict):
            raise wrong
    elif kind == "lines" and not isinstance(value, list):
        raise wrong


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Decimal(str(value))
    raise invalid("Amount", f"{value!r} is not a number")


def _linked(doc: dict[str, Any] | None) -> list[str]:
    if not doc:
        return []
    return [
        str(link.get("TxnId"))
        for line in doc.get("Line") or []
        for link in line.get("LinkedTxn") or []
        if link.get("TxnType") == "Invoice"
    ]


def _payment_docs(store: Store) -> list[dict[str, Any]]:
    return store.docs("SELECT doc FROM objects WHERE entity = 'Payment' AND deleted = 0")


def _paid(store: Store, invoice_id: Any, skip_payment: Any = None) -> Decimal:
    """What the live payments (but ``skip_payment``) apply to the invoice."""
    if invoice_id is None:
        return Decimal(0)
    paid = Decimal(0)
    for payment in _payment_docs(store):
        if skip_payment is not None and payment["Id"] == str(skip_payment):
            continue
        for line in payment.get("Line") or []:
            if str(invoice_id) in _linked({"Line": [line]}):
                paid += Decimal(str(line["Amount"]))
    return paid


def _payments_of(store: Store, invoice_id: str) -> list[str]:
    return [p["Id"] for p in _payment_docs(store) if invoice_id in _linked(p)]
