"""Change data capture, the batch endpoint and requestid idempotency."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from qb_sandbox_helpers import Qbo, fault

from crmbridge.sandbox.quickbooks import QuickBooksSandbox


def _cdc(qbo: Qbo, entities: str, since: dt.datetime) -> Any:
    return qbo.request(
        "GET", "cdc", params={"entities": entities, "changedSince": since.isoformat()}
    )


def _objects(answer: Any, entity: str) -> list[dict[str, Any]]:
    return [
        o for part in answer.json()["CDCResponse"][0]["QueryResponse"] for o in part.get(entity, [])
    ]


def test_cdc_answers_changes_and_deletions_since_then(
    qbo: Qbo, sandbox: QuickBooksSandbox, customer: dict[str, Any]
) -> None:
    since = sandbox.clock.now()
    sandbox.clock.advance(seconds=5)
    changed = qbo.ok(
        "Customer", {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False}
    )
    invoice = qbo.rows("select * from Invoice maxresults 1", "Invoice")[0]
    qbo.ok("Invoice", {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}, operation="delete")
    answer = _cdc(qbo, "Customer,Invoice", since)
    assert answer.status_code == 200
    assert _objects(answer, "Customer") == [changed]  # inactive list objects come too
    assert _objects(answer, "Invoice") == [
        {
            "domain": "QBO",
            "status": "Deleted",
            "Id": invoice["Id"],
            "MetaData": {
                "LastUpdatedTime": _objects(answer, "Invoice")[0]["MetaData"]["LastUpdatedTime"]
            },
        }
    ]
    assert answer.json()["time"]


def test_cdc_looks_back_30_days_at_most(qbo: Qbo, sandbox: QuickBooksSandbox) -> None:
    too_old = _cdc(qbo, "Customer", sandbox.clock.now() - dt.timedelta(days=31))
    assert too_old.status_code == 400
    assert "30 days" in fault(too_old)["Detail"]
    assert _cdc(qbo, "Customer", sandbox.clock.now() - dt.timedelta(days=29)).status_code == 200
    assert _cdc(qbo, "Nothing", sandbox.clock.now()).status_code == 400


def test_cdc_answers_1000_objects_at_most_oldest_first(
    qbo: Qbo, sandbox: QuickBooksSandbox
) -> None:
    since = sandbox.clock.now()
    for n in range(35):
        sandbox.clock.advance(seconds=1)
        items = [
            {"bId": str(i), "operation": "create", "Customer": {"DisplayName": f"C{n}-{i}"}}
            for i in range(30)
        ]
        assert qbo.request("POST", "batch", json={"BatchItemRequest": items}).status_code == 200
        sandbox.throttle.reset()
    got = _objects(_cdc(qbo, "Customer", since), "Customer")
    assert len(got) == 1000
    stamps = [o["MetaData"]["LastUpdatedTime"] for o in got]
    assert stamps == sorted(stamps)
    assert got[0]["DisplayName"] == "C0-0"


def test_batch_applies_items_independently_with_per_item_faults(qbo: Qbo) -> None:
    items = [
        {"bId": "a", "operation": "create", "Customer": {"DisplayName": "Batch One"}},
        {"bId": "b", "operation": "create", "Customer": {"DisplayName": "batch one"}},
        {"bId": "c", "Query": "select count(*) from Item"},
        {
            "bId": "d",
            "operation": "update",
            "Customer": {"Id": "1", "SyncToken": "99", "sparse": True},
        },
        {"bId": "e", "operation": "delete", "Invoice": {"Id": "99999", "SyncToken": "0"}},
    ]
    answer = qbo.request("POST", "batch", json={"BatchItemRequest": items})
    assert answer.status_code == 200
    by_bid = {i["bId"]: i for i in answer.json()["BatchItemResponse"]}
    assert by_bid["a"]["Customer"]["DisplayName"] == "Batch One"
    assert by_bid["b"]["Fault"]["Error"][0]["code"] == "6240"
    assert by_bid["c"]["QueryResponse"] == {"totalCount": 8}
    assert by_bid["d"]["Fault"]["Error"][0]["code"] == "5010"
    assert by_bid["e"]["Fault"]["Error"][0]["code"] == "610"


def test_batch_holds_30_items_at_most(qbo: Qbo) -> None:
    items = [{"bId": str(i), "Query": "select count(*) from Item"} for i in range(31)]
    answer = qbo.request("POST", "batch", json={"BatchItemRequest": items})
    assert answer.status_code == 400
    assert "at most 30" in fault(answer)["Detail"]
    assert qbo.request("POST", "batch", json={"BatchItemRequest": items[:30]}).status_code == 200


def test_the_same_requestid_answers_the_same_result_without_applying_twice(
    qbo: Qbo, sandbox: QuickBooksSandbox
) -> None:
    first = qbo.post("Customer", {"DisplayName": "Once Only"}, requestid="r-1")
    second = qbo.post("Customer", {"DisplayName": "Once Only"}, requestid="r-1")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    rows = sandbox.execute(
        "SELECT COUNT(*) AS n FROM objects WHERE json_extract(doc, '$.DisplayName') = 'Once Only'"
    )
    assert rows[0]["n"] == 1
    third = qbo.post("Customer", {"DisplayName": "Once Only"}, requestid="r-2")
    assert fault(third)["code"] == "6240"  # a new requestid is a new request
    items = [{"bId": "1", "operation": "create", "Customer": {"DisplayName": "Batched Once"}}]
    one = qbo.request(
        "POST", "batch", params={"requestid": "b-1"}, json={"BatchItemRequest": items}
    )
    two = qbo.request(
        "POST", "batch", params={"requestid": "b-1"}, json={"BatchItemRequest": items}
    )
    assert one.json() == two.json()
    assert "Customer" in two.json()["BatchItemResponse"][0]


def test_the_batch_limit_is_a_setting() -> None:
    box = QuickBooksSandbox(customers=1, batch_limit=50)
    with httpx.Client(
        transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://qbo.test"
    ) as http:
        qbo = Qbo(http, box)
        items = [{"bId": str(i), "Query": "select count(*) from Item"} for i in range(51)]
        too_many = qbo.request("POST", "batch", json={"BatchItemRequest": items})
        assert "at most 50" in fault(too_many)["Detail"]
        fifty = qbo.request("POST", "batch", json={"BatchItemRequest": items[:50]})
        assert fifty.status_code == 200
    box.close()
