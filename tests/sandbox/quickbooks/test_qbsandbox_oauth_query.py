"""OAuth with rotating refresh tokens, minorversion, and the query language with its errors."""

from __future__ import annotations

import httpx
import pytest
from qb_sandbox_helpers import Qbo, basic, fault, refresh

from crmbridge.sandbox.quickbooks import QuickBooksSandbox, seed_counts


def test_refresh_rotates_and_the_old_refresh_token_stops_working(
    client: httpx.Client, sandbox: QuickBooksSandbox
) -> None:
    first = sandbox.issue_refresh_token()
    answer = refresh(client, sandbox, first)
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] != first
    again = refresh(client, sandbox, first)
    assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})
    assert refresh(client, sandbox, body["refresh_token"]).status_code == 200


def test_wrong_client_credentials_are_invalid_client(
    client: httpx.Client, sandbox: QuickBooksSandbox
) -> None:
    answer = client.post(
        "/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": sandbox.issue_refresh_token()},
        headers={"Authorization": "Basic eDp5"},
    )
    assert (answer.status_code, answer.json()) == (401, {"error": "invalid_client"})


def test_authorization_code_flow(client: httpx.Client, sandbox: QuickBooksSandbox) -> None:
    consent = client.get(
        "/connect/oauth2",
        params={
            "client_id": sandbox.client_id,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": "http://localhost/cb",
            "state": "xyz",
        },
    )
    assert consent.status_code == 302
    location = httpx.URL(consent.headers["Location"])
    assert location.params["state"] == "xyz"
    assert location.params["realmId"] == sandbox.realm_id
    code = location.params["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost/cb"}
    auth = {"Authorization": basic(sandbox)}
    answer = client.post("/oauth2/v1/tokens/bearer", data=form, headers=auth)
    assert answer.status_code == 200
    assert answer.json()["refresh_token"]
    reused = client.post("/oauth2/v1/tokens/bearer", data=form, headers=auth)
    assert reused.json() == {"error": "invalid_grant"}


def test_api_needs_a_live_access_token_and_the_right_realm(
    client: httpx.Client, qbo: Qbo, sandbox: QuickBooksSandbox
) -> None:
    none = client.get(f"{qbo.base}/query", params={"query": "select * from Customer"})
    assert none.status_code == 401
    assert fault(none)["code"] == "3200"
    other = client.get(
        "/v3/company/123/query",
        params={"query": "select * from Customer"},
        headers={"Authorization": f"Bearer {qbo.token}"},
    )
    assert (other.status_code, fault(other)["code"]) == (403, "120")
    sandbox.clock.advance(seconds=3601)
    expired = qbo.query("select * from Customer")
    assert expired.status_code == 401


def test_minorversion_is_counted_and_must_be_a_number(qbo: Qbo, sandbox: QuickBooksSandbox) -> None:
    qbo.query("select * from Item")
    qbo.request("GET", "query", params={"query": "select * from Item", "minorversion": "80"})
    assert sandbox.minor_versions == {"75": 1, "80": 1}
    bad = qbo.request("GET", "query", params={"query": "select * from Item", "minorversion": "x"})
    assert bad.status_code == 400


def test_seed_has_realistic_books(qbo: Qbo) -> None:
    counts = seed_counts(20)
    for entity in ("Invoice", "Estimate", "SalesReceipt", "Payment", "Item"):
        n = qbo.query(f"select count(*) from {entity}").json()["QueryResponse"]["totalCount"]
        assert n == counts[entity] - (1 if entity == "Item" else 0), entity  # one item inactive
    invoice = qbo.rows("select * from Invoice MAXRESULTS 1", "Invoice")[0]
    kinds = [line["DetailType"] for line in invoice["Line"]]
    assert kinds[-1] == "SubTotalLineDetail"
    assert "SalesItemLineDetail" in kinds
    assert invoice["SyncToken"].isdigit()
    assert invoice["MetaData"]["LastUpdatedTime"][-6] in "+-"


def test_paging_with_startposition_and_maxresults(qbo: Qbo) -> None:
    everything = qbo.rows("select * from Invoice maxresults 1000", "Invoice")
    ids = []
    start = 1
    while True:
        answer = qbo.query(f"SELECT * FROM Invoice STARTPOSITION {start} MAXRESULTS 7").json()
        page = answer["QueryResponse"].get("Invoice", [])
        ids += [r["Id"] for r in page]
        if len(page) < 7:
            break
        assert answer["QueryResponse"]["startPosition"] == start
        start += 7
    assert ids == [r["Id"] for r in everything]
    assert qbo.query("select * from Invoice startposition 900").json()["QueryResponse"] == {}


def test_maxresults_is_capped_at_1000_and_defaults_to_100(
    qbo: Qbo, sandbox: QuickBooksSandbox
) -> None:
    for n in range(120):
        qbo.ok("Customer", {"DisplayName": f"Bulk {n}"})
    assert len(qbo.rows("select * from Customer", "Customer")) == 100
    sandbox.execute(
        "INSERT INTO objects (entity, id, updated, doc) SELECT 'Customer', id + 10000, updated, "
        "json_set(doc, '$.Id', CAST(id + 10000 AS TEXT), '$.DisplayName', 'Copy ' || id) "
        "FROM objects WHERE entity = 'Customer'"
    )
    for _ in range(4):
        sandbox.execute(
            "INSERT INTO objects (entity, id, updated, doc) SELECT entity, id + (SELECT MAX(id) "
            "FROM objects WHERE entity = 'Customer'), updated, doc FROM objects "
            "WHERE entity = 'Customer'"
        )
    assert len(qbo.rows("select * from Customer maxresults 5000", "Customer")) == 1000


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("select * from Customer where Active = true or Id = '1'", "4000"),
        ("select * from Customer where not Active = true", "4000"),
        ("select * from Customer where DisplayName <> 'x'", "4000"),
        ("select * from Customer where DisplayName != 'x'", "4000"),
        ("select * from Customer where Notes = 'x'", "4001"),
        ("select * from Customer where Foo = 'x'", "4001"),
        ("select * from Nothing", "4001"),
        ("select * from Customer where Active = 'maybe'", "4001"),
        ("select * from Customer where MetaData.LastUpdatedTime > 'yesterday'", "4001"),
        ("select * from Customer startposition 0", "4001"),
        ("select from Customer", "4000"),
    ],
)
def test_query_errors(qbo: Qbo, text: str, code: str) -> None:
    response = qbo.query(text)
    assert response.status_code == 400
    assert fault(response)["code"] == code
    if code == "4000":
        assert fault(response)["Detail"].startswith("QueryParserError: Encountered")


def test_where_in_like_ranges_and_case(qbo: Qbo) -> None:
    names = [
        r["DisplayName"]
        for r in qbo.rows("select * from Customer where DisplayName like '%BROTHERS%'", "Customer")
    ]
    assert names == ["O'Brien Brothers Ltd"]
    quoted = qbo.rows(
        "select * from Customer where DisplayName = 'o\\'brien brothers ltd'", "Customer"
    )
    assert [r["Id"] for r in quoted] == ["3"]
    some = qbo.rows("select * from Customer where Id in ('1', '2', '999')", "Customer")
    assert [r["Id"] for r in some] == ["1", "2"]
    big = qbo.rows("select * from Invoice where TotalAmt >= 500 maxresults 1000", "Invoice")
    assert big
    assert all(r["TotalAmt"] >= 500 for r in big)
    recent = qbo.rows(
        "select * from Invoice where TxnDate > '2000-01-01' and CustomerRef = '1'", "Invoice"
    )
    assert recent
    assert all(r["CustomerRef"]["value"] == "1" for r in recent)


def test_like_knows_only_the_percent_wildcard(qbo: Qbo) -> None:
    qbo.ok("Customer", {"DisplayName": "A_B"})
    qbo.ok("Customer", {"DisplayName": "AxB"})
    rows = qbo.rows("select * from Customer where DisplayName like 'A_B'", "Customer")
    assert [r["DisplayName"] for r in rows] == ["A_B"]


def test_list_entities_answer_active_objects_unless_asked(qbo: Qbo) -> None:
    active = qbo.rows("select * from Customer maxresults 1000", "Customer")
    everyone = qbo.rows(
        "select * from Customer where Active in (true, false) maxresults 1000", "Customer"
    )
    inactive = [r for r in everyone if not r["Active"]]
    assert len(everyone) == len(active) + len(inactive) == 20
    assert inactive
    assert all(r["DisplayName"].endswith(" (deleted)") for r in inactive)


def test_count_and_projection_and_order(qbo: Qbo) -> None:
    total = qbo.query("select count(*) from Customer where Active in (true, false)").json()
    assert total["QueryResponse"] == {"totalCount": 20}
    rows = qbo.rows(
        "select DisplayName from Customer orderby DisplayName desc maxresults 3", "Customer"
    )
    assert set(rows[0]) == {"Id", "DisplayName"}
    assert [r["DisplayName"] for r in rows] == sorted(
        (r["DisplayName"] for r in rows), key=str.lower, reverse=True
    )


def test_query_by_post_body_and_company_info(qbo: Qbo, sandbox: QuickBooksSandbox) -> None:
    posted = qbo.request(
        "POST",
        "query",
        content="select count(*) from Item",
        headers={"Content-Type": "application/text"},
    )
    assert posted.json()["QueryResponse"]["totalCount"] == 8
    info = qbo.request("GET", f"companyinfo/{sandbox.realm_id}").json()["CompanyInfo"]
    assert info["CompanyName"]
