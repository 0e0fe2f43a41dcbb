"""Creating, updating (sparse and full), deactivating and deleting, with the real rules."""

from __future__ import annotations

from typing import Any

import pytest
from qb_sandbox_helpers import Qbo, fault

from crmbridge.sandbox.quickbooks import QuickBooksSandbox


def test_create_answers_the_object_with_id_synctoken_and_metadata(qbo: Qbo) -> None:
    made = qbo.ok("Customer", {"GivenName": "Ann", "FamilyName": "Lee"})
    assert made["DisplayName"] == "Ann Lee"  # derived from the name parts
    assert made["SyncToken"] == "0"
    assert made["Active"] is True
    assert made["MetaData"]["CreateTime"] == made["MetaData"]["LastUpdatedTime"]
    assert qbo.request("GET", f"customer/{made['Id']}").json()["Customer"] == made


def test_update_increments_the_synctoken_and_a_stale_one_is_5010(
    qbo: Qbo, customer: dict[str, Any]
) -> None:
    first = qbo.ok(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "one"}
    )
    assert first["SyncToken"] == "1"
    stale = qbo.post(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "two"}
    )
    assert stale.status_code == 400
    assert (fault(stale)["code"], fault(stale)["Message"]) == ("5010", "Stale Object Error")
    missing = qbo.post("Customer", {"Id": customer["Id"], "sparse": True, "Notes": "x"})
    assert fault(missing)["code"] == "2020"


def test_sparse_update_keeps_what_is_not_given_a_full_one_clears_it(
    qbo: Qbo, customer: dict[str, Any]
) -> None:
    sparse = qbo.ok(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Notes": "kept?"}
    )
    assert sparse["GivenName"] == "Tess"
    assert sparse["Notes"] == "kept?"
    full = qbo.ok(
        "Customer", {"Id": customer["Id"], "SyncToken": "1", "DisplayName": "Test Customer"}
    )
    assert "GivenName" not in full
    assert "Notes" not in full
    assert full["DisplayName"] == "Test Customer"
    assert full["SyncToken"] == "2"


def test_list_entities_are_made_inactive_never_deleted(qbo: Qbo, customer: dict[str, Any]) -> None:
    refused = qbo.post("Customer", {"Id": customer["Id"], "SyncToken": "0"}, operation="delete")
    assert (refused.status_code, fault(refused)["code"]) == (400, "500")
    gone = qbo.ok(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False}
    )
    assert gone["Active"] is False
    assert gone["DisplayName"] == "Test Customer (deleted)"
    assert qbo.request("GET", f"customer/{customer['Id']}").status_code == 200
    assert not qbo.rows(f"select * from Customer where Id = '{customer['Id']}'", "Customer")


def test_a_customer_with_an_open_balance_cannot_be_made_inactive(qbo: Qbo) -> None:
    owing = qbo.rows("select * from Customer where Balance > 0 maxresults 1", "Customer")[0]
    answer = qbo.post(
        "Customer",
        {"Id": owing["Id"], "SyncToken": owing["SyncToken"], "sparse": True, "Active": False},
    )
    assert fault(answer)["code"] == "6000"


def _invoice(
    customer_id: str, item: str = "1", qty: int = 2, price: float = 75.0
) -> dict[str, Any]:
    return {
        "CustomerRef": {"value": customer_id},
        "Line": [
            {
                "Amount": qty * price,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": qty, "UnitPrice": price},
            }
        ],
    }


def test_transactions_are_deleted_and_then_not_found(
    qbo: Qbo, customer: dict[str, Any], sandbox: QuickBooksSandbox
) -> None:
    invoice = qbo.ok("Invoice", _invoice(str(customer["Id"])))
    assert invoice["TotalAmt"] == 150.0
    assert invoice["Balance"] == 150.0
    assert invoice["DocNumber"]
    assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    stale = qbo.post("Invoice", {"Id": invoice["Id"], "SyncToken": "7"}, operation="delete")
    assert fault(stale)["code"] == "5010"
    deleted = qbo.ok("Invoice", {"Id": invoice["Id"], "SyncToken": "0"}, operation="delete")
    assert deleted == {"domain": "QBO", "status": "Deleted", "Id": invoice["Id"]}
    again = qbo.request("GET", f"invoice/{invoice['Id']}")
    assert (again.status_code, fault(again)["code"]) == (400, "610")
    assert sandbox.object("Invoice", invoice["Id"])["status"] == "Deleted"  # type: ignore[index]


def test_duplicate_names_are_6240_case_insensitively(qbo: Qbo, customer: dict[str, Any]) -> None:
    answer = qbo.post("Customer", {"DisplayName": "TEST customer"})
    assert (answer.status_code, fault(answer)["code"]) == (400, "6240")
    item = qbo.post("Item", {"Name": "hours", "IncomeAccountRef": {"value": "1"}})
    assert fault(item)["code"] == "6240"


@pytest.mark.parametrize(
    ("entity", "body", "code"),
    [
        ("Customer", {"DisplayName": "x" * 501}, "2050"),
        ("Customer", {"DisplayName": "ok", "Foo": 1}, "2010"),
        ("Customer", {"DisplayName": "ok", "Active": "yes"}, "2010"),
        ("Item", {"Name": "Widget"}, "2020"),
        ("Item", {"Name": "Widget", "Type": "Magic", "IncomeAccountRef": {"value": "1"}}, "2170"),
        ("Invoice", {"Line": []}, "2020"),
        ("Invoice", _invoice("999"), "2500"),
        ("Invoice", _invoice("1", item="9"), "610"),  # the inactive item
        (
            "Invoice",
            {**_invoice("1"), "Line": [{**_invoice("1")["Line"][0], "Amount": 1.0}]},
            "6070",
        ),
    ],
)
def test_validation_faults(qbo: Qbo, entity: str, body: dict[str, Any], code: str) -> None:
    answer = qbo.post(entity, body)
    assert answer.status_code == 400, answer.text
    assert fault(answer)["code"] == code


def test_a_reference_to_an_inactive_customer_is_610(qbo: Qbo, customer: dict[str, Any]) -> None:
    qbo.ok("Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False})
    assert fault(qbo.post("Invoice", _invoice(str(customer["Id"]))))["code"] == "610"


def test_payments_reduce_the_invoice_balance_and_change_its_synctoken(
    qbo: Qbo, customer: dict[str, Any]
) -> None:
    invoice = qbo.ok("Invoice", _invoice(str(customer["Id"])))
    link = {"Amount": 50.0, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
    payment = qbo.ok(
        "Payment", {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 60.0, "Line": [link]}
    )
    assert payment["UnappliedAmt"] == 10.0
    after = qbo.request("GET", f"invoice/{invoice['Id']}").json()["Invoice"]
    assert (after["Balance"], after["SyncToken"]) == (100.0, "1")
    stale = qbo.post(
        "Invoice", {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, "PrivateNote": "x"}
    )
    assert fault(stale)["code"] == "5010"
    too_much = {"Amount": 500.0, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
    refused = qbo.post(
        "Payment", {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 500.0, "Line": [too_much]}
    )
    assert fault(refused)["code"] == "6000"
    qbo.ok("Payment", {"Id": payment["Id"], "SyncToken": "0"}, operation="delete")
    restored = qbo.request("GET", f"invoice/{invoice['Id']}").json()["Invoice"]
    assert restored["Balance"] == 150.0


def test_a_sparse_update_replaces_a_nested_object_whole(qbo: Qbo, customer: dict[str, Any]) -> None:
    """The sandbox's choice where Intuit's documentation is silent: a nested object given in a
    sparse update replaces the stored one (the connector sends nested objects whole)."""
    placed = qbo.ok(
        "Customer",
        {"Id": customer["Id"], "SyncToken": "0", "sparse": True,
         "BillAddr": {"Line1": "1 Main St", "City": "Oslo"}},
    )  # fmt: skip
    moved = qbo.ok(
        "Customer",
        {"Id": customer["Id"], "SyncToken": placed["SyncToken"], "sparse": True,
         "BillAddr": {"City": "Bergen"}},
    )  # fmt: skip
    assert moved["BillAddr"] == {"City": "Bergen"}
    assert moved["GivenName"] == "Tess"
