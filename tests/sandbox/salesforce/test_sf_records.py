"""Single-record calls, upsert by external id, sObject Collections; SystemModstamp."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sf_helpers import Rest


def _collection(
    rest: Rest, method: str, records: list[dict[str, Any]], path: str = "", **kw: Any
) -> Any:
    body = {"allOrNone": kw.pop("all_or_none", False), "records": records}
    answer = rest.call(method, "composite/sobjects" + path, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_create_read_update_delete(rest: Rest) -> None:
    created = rest.call("POST", "sobjects/Account", json={"Name": "Single", "Phone": "1"})
    assert created.status_code == 201
    record_id = created.json()["id"]
    assert created.json() == {"id": record_id, "success": True, "errors": []}
    assert (
        rest.get(f"sobjects/Account/{record_id}", params={"fields": "Name,Phone"}).json()["Name"]
        == "Single"
    )
    assert (
        rest.call("PATCH", f"sobjects/Account/{record_id}", json={"Phone": "2"}).status_code == 204
    )
    assert rest.call("DELETE", f"sobjects/Account/{record_id}").status_code == 204
    again = rest.call("DELETE", f"sobjects/Account/{record_id}")
    assert rest.error(again)[:2] == (404, "ENTITY_IS_DELETED")
    assert rest.error(rest.get(f"sobjects/Account/{record_id}"))[:2] == (404, "NOT_FOUND")


def test_system_modstamp_is_kept_by_the_server(rest: Rest) -> None:
    now = dt.datetime(2025, 6, 1, 12, 0, 0, tzinfo=dt.UTC)
    rest.sandbox.clock = lambda: now
    record_id = rest.call("POST", "sobjects/Account", json={"Name": "Stamp"}).json()["id"]
    refused = rest.call(
        "PATCH", f"sobjects/Account/{record_id}", json={"SystemModstamp": "2020-01-01T00:00:00Z"}
    )
    assert rest.error(refused)[:2] == (400, "INVALID_FIELD_FOR_INSERT_UPDATE")
    now = now + dt.timedelta(minutes=5)
    rest.call("PATCH", f"sobjects/Account/{record_id}", json={"Phone": "9"})
    record = rest.get(f"sobjects/Account/{record_id}").json()
    assert record["SystemModstamp"] == "2025-06-01T12:05:00.000+0000"
    assert record["CreatedDate"] == "2025-06-01T12:00:00.000+0000"
    assert record["LastModifiedById"] == rest.sandbox.user_id()


def test_record_level_errors(rest: Rest) -> None:
    cases = [
        ({"Phone": "1"}, "REQUIRED_FIELD_MISSING"),
        ({"Name": "x" * 256}, "STRING_TOO_LONG"),
        ({"Name": "A", "Ext_Id__c": "ACC-00001"}, "DUPLICATE_VALUE"),
        ({"Name": "A", "ParentId": "0035g0000000001AAA"}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"Name": "A", "NumberOfEmployees": 1e12}, "NUMBER_OUTSIDE_VALID_RANGE"),
    ]
    for body, code in cases:
        assert rest.error(rest.call("POST", "sobjects/Account", json=body))[:2] == (400, code), body
    bad_stage = {"Name": "D", "StageName": "Nope", "CloseDate": "2024-01-01"}
    assert rest.error(rest.call("POST", "sobjects/Opportunity", json=bad_stage))[1] == (
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    )
    assert rest.error(rest.call("POST", "sobjects/Contact", json={"LastName": "x", "Email": "no"}))[
        1
    ] == ("INVALID_EMAIL_ADDRESS")
    assert rest.error(rest.call("POST", "sobjects/Account", json={"Name": "A", "Bogus": 1}))[1] == (
        "INVALID_FIELD"
    )
    assert rest.error(
        rest.call("POST", "sobjects/Account", json={"Name": "A", "AnnualRevenue": "lots"})
    )[1] == ("JSON_PARSER_ERROR")


def test_upsert_by_external_id_answers_201_200_and_300(rest: Rest) -> None:
    first = rest.call("PATCH", "sobjects/Account/Ext_Id__c/NEW-1", json={"Name": "New"})
    assert first.status_code == 201
    assert first.json()["created"] is True
    second = rest.call("PATCH", "sobjects/Account/Ext_Id__c/NEW-1", json={"Name": "Newer"})
    assert second.status_code == 200
    assert second.json()["created"] is False
    assert second.json()["id"] == first.json()["id"]
    for _ in range(2):  # Contact.Ext_Id__c is an external id but not unique
        rest.call("POST", "sobjects/Contact", json={"LastName": "Twin", "Ext_Id__c": "TWIN"})
    many = rest.call("PATCH", "sobjects/Contact/Ext_Id__c/TWIN", json={"LastName": "X"})
    assert many.status_code == 300
    assert len(many.json()) == 2
    assert many.json()[0].startswith("/services/data/v59.0/sobjects/Contact/")
    assert rest.error(rest.call("PATCH", "sobjects/Account/Name/x", json={}))[1] == "NOT_FOUND"


def test_reference_through_the_parents_external_id(rest: Rest) -> None:
    body = {"LastName": "Child", "Account": {"Ext_Id__c": "ACC-00003"}}
    record_id = rest.call("POST", "sobjects/Contact", json=body).json()["id"]
    found = rest.records(f"SELECT Account.Ext_Id__c FROM Contact WHERE Id = '{record_id}'")
    assert found[0]["Account"]["Ext_Id__c"] == "ACC-00003"
    missing = rest.call(
        "POST", "sobjects/Contact", json={"LastName": "C", "Account": {"Ext_Id__c": "NO"}}
    )
    assert "Foreign key external ID: NO not found" in rest.error(missing)[2]


def test_collections_answer_per_record(rest: Rest) -> None:
    results = _collection(
        rest,
        "POST",
        [
            {"attributes": {"type": "Account"}, "Name": "C1"},
            {"attributes": {"type": "Account"}},
            {"attributes": {"type": "Contact"}, "LastName": "Mixed"},
        ],
    )
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    updated = _collection(
        rest,
        "PATCH",
        [
            {"attributes": {"type": "Account"}, "id": results[0]["id"], "Phone": "5"},
            {"attributes": {"type": "Account"}, "id": "0015g0000000zzzAAA", "Phone": "5"},
        ],
    )
    assert [r["success"] for r in updated] == [True, False]
    assert updated[1]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    deleted = rest.call(
        "DELETE", "composite/sobjects", params={"ids": f"{results[0]['id']},{results[0]['id']}"}
    ).json()
    assert [r["success"] for r in deleted] == [True, False]
    assert deleted[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


def test_collections_upsert_and_duplicates_in_one_call(rest: Rest) -> None:
    results = _collection(
        rest,
        "PATCH",
        [
            {"attributes": {"type": "Account"}, "Ext_Id__c": "ACC-00001", "Phone": "7"},
            {"attributes": {"type": "Account"}, "Ext_Id__c": "U-2", "Name": "New"},
            {"attributes": {"type": "Account"}, "Ext_Id__c": "U-3", "Name": "A"},
            {"attributes": {"type": "Account"}, "Ext_Id__c": "u-3", "Name": "B"},
        ],
        "/Account/Ext_Id__c",
    )
    assert [(r["success"], r.get("created")) for r in results] == [
        (True, False),
        (True, True),
        (False, None),
        (False, None),
    ]
    assert results[2]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"


def test_collections_all_or_none_rolls_everything_back(rest: Rest) -> None:
    before = len(rest.records("SELECT Id FROM Account"))
    results = _collection(
        rest,
        "POST",
        [
            {"attributes": {"type": "Account"}, "Name": "Kept?"},
            {"attributes": {"type": "Account"}, "Phone": "no name"},
        ],
        all_or_none=True,
    )
    assert [r["success"] for r in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[0]["id"] is None
    assert len(rest.records("SELECT Id FROM Account")) == before


def test_collections_take_at_most_200_records(rest: Rest) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": f"N{i}"} for i in range(201)]
    answer = rest.call("POST", "composite/sobjects", json={"records": records})
    assert rest.error(answer)[:2] == (400, "EXCEEDED_ID_LIMIT")
    ids = ",".join(["0015g0000000001AAA"] * 201)
    assert rest.error(rest.call("DELETE", "composite/sobjects", params={"ids": ids}))[1] == (
        "EXCEEDED_ID_LIMIT"
    )


def test_read_by_external_id(rest: Rest) -> None:
    found = rest.get("sobjects/Account/Ext_Id__c/ACC-00002")
    assert found.status_code == 200
    assert found.json()["Name"] == "O'Brien Brothers Ltd"
    assert rest.error(rest.get("sobjects/Account/Ext_Id__c/NOPE"))[:2] == (404, "NOT_FOUND")
    for _ in range(2):
        rest.call("POST", "sobjects/Contact", json={"LastName": "Twin", "Ext_Id__c": "T2"})
    assert rest.get("sobjects/Contact/Ext_Id__c/T2").status_code == 300


def test_fields_the_server_computes(rest: Rest) -> None:
    body = {"Name": "Won", "StageName": "Closed Won", "CloseDate": "2024-05-01"}
    record_id = rest.call("POST", "sobjects/Opportunity", json=body).json()["id"]
    found = rest.get(f"sobjects/Opportunity/{record_id}").json()
    assert (found["IsWon"], found["IsClosed"], found["Probability"]) == (True, True, 100.0)
    lead_id = rest.call("POST", "sobjects/Lead", json={"LastName": "L", "Company": "C"}).json()[
        "id"
    ]
    lead = rest.get(f"sobjects/Lead/{lead_id}").json()
    assert (lead["Status"], lead["Name"], lead["IsConverted"]) == (
        "Open - Not Contacted",
        "L",
        False,
    )
    contact_id = rest.call(
        "POST", "sobjects/Contact", json={"FirstName": "A", "LastName": "B", "Title": ""}
    ).json()["id"]
    contact = rest.get(f"sobjects/Contact/{contact_id}").json()
    assert (contact["Name"], contact["Title"], contact["OwnerId"]) == (
        "A B",
        None,
        rest.sandbox.user_id(),
    )


def test_revoked_tokens_are_refused(rest: Rest) -> None:
    assert (
        rest.client.post("/services/oauth2/revoke", data={"token": rest.token}).status_code == 200
    )
    assert rest.error(rest.get("limits"))[1] == "INVALID_SESSION_ID"
