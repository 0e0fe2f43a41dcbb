"""describe: objects, field types, lengths, picklists, required, external ids, relationships."""

from __future__ import annotations

from typing import Any

from sf_helpers import Rest


def _fields(rest: Rest, name: str) -> dict[str, dict[str, Any]]:
    answer = rest.get(f"sobjects/{name}/describe")
    assert answer.status_code == 200
    return {f["name"]: f for f in answer.json()["fields"]}


def test_global_describe_lists_the_objects(rest: Rest) -> None:
    body = rest.get("sobjects").json()
    names = [o["name"] for o in body["sobjects"]]
    assert names == ["Account", "Contact", "Lead", "Opportunity", "User"]
    assert body["maxBatchSize"] == 200
    account = body["sobjects"][0]
    assert account["keyPrefix"] == "001"
    assert account["queryable"]


def test_field_types_lengths_and_required(rest: Rest) -> None:
    fields = _fields(rest, "Account")
    name = fields["Name"]
    assert (name["type"], name["length"], name["nillable"], name["createable"]) == (
        "string",
        255,
        False,
        True,
    )
    assert name["defaultedOnCreate"] is False  # so: required on create
    assert fields["AnnualRevenue"]["type"] == "currency"
    assert (fields["AnnualRevenue"]["precision"], fields["AnnualRevenue"]["scale"]) == (18, 0)
    stamp = fields["SystemModstamp"]
    assert (stamp["type"], stamp["createable"], stamp["updateable"]) == ("datetime", False, False)
    assert fields["Description"]["filterable"] is False  # a long text area
    assert fields["Id"]["idLookup"] is True


def test_picklists_restricted_or_not(rest: Rest) -> None:
    stage = _fields(rest, "Opportunity")["StageName"]
    assert stage["restrictedPicklist"] is True
    assert "Closed Won" in [p["value"] for p in stage["picklistValues"]]
    assert _fields(rest, "Account")["Industry"]["restrictedPicklist"] is False


def test_external_ids_and_relationships(rest: Rest) -> None:
    ext = _fields(rest, "Account")["Ext_Id__c"]
    assert (ext["externalId"], ext["unique"], ext["idLookup"], ext["custom"]) == (
        True,
        True,
        True,
        True,
    )
    assert _fields(rest, "Contact")["Ext_Id__c"]["unique"] is False
    account_id = _fields(rest, "Contact")["AccountId"]
    assert (account_id["type"], account_id["referenceTo"], account_id["relationshipName"]) == (
        "reference",
        ["Account"],
        "Account",
    )
    children = rest.get("sobjects/Account/describe").json()["childRelationships"]
    assert {
        "relationshipName": "Contacts",
        "childSObject": "Contact",
        "field": "AccountId",
        "cascadeDelete": False,
    } in children


def test_unknown_object_is_not_found(rest: Rest) -> None:
    assert rest.error(rest.get("sobjects/Acount/describe"))[:2] == (404, "NOT_FOUND")


def test_api_versions_are_listed_without_login(rest: Rest) -> None:
    versions = rest.client.get("/services/data").json()
    assert {"label": "v59.0", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert rest.client.get("/services/data/v12.0/sobjects").status_code == 404


def test_a_case_sensitive_external_id_compares_exactly(rest: Rest) -> None:
    key = _fields(rest, "Lead")["Crmbridge_Key__c"]
    assert (key["externalId"], key["unique"], key["caseSensitive"], key["length"]) == (
        True,
        True,
        True,
        36,
    )
    assert _fields(rest, "Lead")["Web_Id__c"]["caseSensitive"] is False
    for value in ("abc-1", "ABC-1"):  # two values, not a duplicate
        body = {"LastName": "Case", "Company": "Co", "Crmbridge_Key__c": value}
        assert rest.call("POST", "sobjects/Lead", json=body).status_code == 201
    found = rest.records("SELECT Crmbridge_Key__c FROM Lead WHERE Crmbridge_Key__c = 'ABC-1'")
    assert [r["Crmbridge_Key__c"] for r in found] == ["ABC-1"]
