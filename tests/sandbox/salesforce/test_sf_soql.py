"""SOQL: results, paging with nextRecordsUrl, queryAll, and the errors of a strict server."""

from __future__ import annotations

import pytest
from sf_helpers import Rest


def test_query_answers_records_with_attributes_and_parents(rest: Rest) -> None:
    body = rest.query(
        "SELECT Id, LastName, Account.Name, Account.Ext_Id__c FROM Contact "
        "WHERE Account.Ext_Id__c = 'ACC-00001' ORDER BY Id"
    ).json()
    assert body["totalSize"] == 2
    assert body["done"]
    first = body["records"][0]
    assert first["attributes"]["type"] == "Contact"
    assert first["attributes"]["url"].endswith(first["Id"])
    assert first["Account"]["Name"] == 'Acme & Sons "Q"'
    assert first["Account"]["attributes"]["type"] == "Account"


def test_values_are_typed_and_datetimes_in_utc(rest: Rest) -> None:
    record = rest.records(
        "SELECT AnnualRevenue, NumberOfEmployees, SystemModstamp, IsDeleted FROM Account "
        "WHERE Ext_Id__c = 'ACC-00002'"
    )[0]
    assert isinstance(record["AnnualRevenue"], float)
    assert record["SystemModstamp"] == "2024-01-02T09:00:00.000+0000"
    assert record["IsDeleted"] is False


def test_paging_follows_next_records_url(rest: Rest) -> None:
    for n in range(250):
        rest.sandbox.execute(
            "INSERT INTO sobject_lead (Id, IsDeleted, LastName, Company, SystemModstamp) "
            "VALUES (?, 0, ?, 'C', '2024-02-01T00:00:00.000Z')",
            (f"00Q5g00000X{n:04d}AAA", f"L{n}"),
        )
    first = rest.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"})
    body = first.json()
    assert (body["totalSize"], body["done"], len(body["records"])) == (270, False, 200)
    assert body["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert len(rest.records("SELECT Id FROM Lead")) == 270  # default batch size 2000: one page
    rest.sandbox.expire_query_locators()
    again = rest.client.get(
        body["nextRecordsUrl"], headers={"Authorization": f"Bearer {rest.token}"}
    )
    assert rest.error(again)[:2] == (400, "INVALID_QUERY_LOCATOR")


def test_query_all_returns_deleted_rows(rest: Rest) -> None:
    live = rest.records("SELECT Id FROM Account")
    every = rest.records("SELECT Id, IsDeleted FROM Account", all=True)
    assert (len(live), len(every)) == (10, 10)  # 10 accounts seed no deleted ones
    rest.call("DELETE", f"sobjects/Account/{live[0]['Id']}")
    every = rest.records("SELECT Id, IsDeleted FROM Account", all=True)
    assert [r["IsDeleted"] for r in every].count(True) == 1
    assert len(rest.records("SELECT Id FROM Account")) == 9
    assert rest.records("SELECT Id FROM Account WHERE IsDeleted = true") == []


def test_count(rest: Rest) -> None:
    body = rest.query("SELECT COUNT() FROM Contact WHERE LastName != null").json()
    assert body == {"totalSize": 20, "done": True, "records": []}


def test_text_compares_case_insensitively_and_not_equal_keeps_nulls(rest: Rest) -> None:
    assert len(rest.records("SELECT Id FROM Account WHERE Name = 'acme & sons \\\"q\\\"'")) == 1
    assert len(rest.records("SELECT Id FROM Account WHERE Name LIKE 'o\\'brien%'")) == 1
    nulls = rest.records("SELECT Id FROM Account WHERE Industry = null")
    others = rest.records("SELECT Id FROM Account WHERE Industry != 'Banking'")
    assert {r["Id"] for r in nulls} <= {r["Id"] for r in others}
    assert len(rest.records("SELECT Id FROM Account WHERE Industry NOT IN ('Banking')")) >= len(
        nulls
    )


def test_like_escapes_and_datetime_literals(rest: Rest) -> None:
    rest.call("POST", "sobjects/Account", json={"Name": "100%_sure"})
    rest.call("POST", "sobjects/Account", json={"Name": "100 sure"})
    assert [
        r["Name"] for r in rest.records("SELECT Name FROM Account WHERE Name LIKE '100\\%\\_%'")
    ] == ["100%_sure"]
    at = rest.records("SELECT Id FROM Account WHERE SystemModstamp = 2024-01-02T10:00:00+01:00")
    assert len(at) == 7  # the first seven records share 09:00:00 UTC
    assert (
        len(
            rest.records(
                "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-02T09:00:00Z "
                "AND SystemModstamp < 2030-01-01T00:00:00Z"
            )
        )
        == 5
    )


def test_order_by_with_nulls_and_limit_offset(rest: Rest) -> None:
    names = [
        r["Industry"]
        for r in rest.records("SELECT Industry FROM Account ORDER BY Industry NULLS LAST")
    ]
    assert names[-1] is None
    assert names[0] is not None
    desc = [
        r["Industry"] for r in rest.records("SELECT Industry FROM Account ORDER BY Industry DESC")
    ]
    assert desc[0] is None
    page = rest.records("SELECT Ext_Id__c FROM Account ORDER BY Ext_Id__c LIMIT 2 OFFSET 3")
    assert [r["Ext_Id__c"] for r in page] == ["ACC-00004", "ACC-00005"]


@pytest.mark.parametrize(
    ("soql", "code", "text"),
    [
        ("SELECT Id FORM Account", "MALFORMED_QUERY", "unexpected token: FORM"),
        ('SELECT Id FROM Account WHERE Name = "x"', "MALFORMED_QUERY", "no viable alternative"),
        (
            "SELECT Id FROM Account WHERE Name = 'a' AND Type = 'b' OR Phone = 'c'",
            "MALFORMED_QUERY",
            "unexpected token: OR",
        ),
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY", "GROUP"),
        ("SELECT Id FROM Account WHERE Name = 'a\\q'", "MALFORMED_QUERY", "Invalid string literal"),
        (
            "SELECT Id, Nmae FROM Account",
            "INVALID_FIELD",
            "No such column 'Nmae' on entity 'Account'",
        ),
        ("SELECT Id FROM Acount", "INVALID_TYPE", "sObject type 'Acount' is not supported"),
        ("SELECT Acount.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship"),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > '2024-01-01T00:00:00Z'",
            "INVALID_FIELD",
            "must be of type dateTime and should not be enclosed in quotes",
        ),
        (
            "SELECT Id FROM Account WHERE SystemModstamp > 2024-01-01",
            "INVALID_FIELD",
            "must be of type dateTime",
        ),
        (
            "SELECT Id FROM Account WHERE AnnualRevenue > '5'",
            "INVALID_FIELD",
            "must be of type double",
        ),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_FIELD", "should be enclosed in quotes"),
        ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
        ("SELECT Id FROM Account ORDER BY Description", "INVALID_FIELD", "can not be sorted"),
        (
            "SELECT Id FROM Account WHERE Id = 'nope'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: nope",
        ),
        ("SELECT Id FROM Account OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset"),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY", "duplicate field selected"),
    ],
)
def test_refused_queries(rest: Rest, soql: str, code: str, text: str) -> None:
    status, got, message = rest.error(rest.query(soql))
    assert (status, got) == (400, code)
    assert text in message


def test_malformed_query_points_at_the_column(rest: Rest) -> None:
    message = rest.error(rest.query("SELECT Id FORM Account"))[2]
    assert "ERROR at Row:1:Column:11" in message
