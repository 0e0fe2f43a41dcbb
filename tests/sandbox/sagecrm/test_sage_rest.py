"""The sagecrm2 REST API: Basic auth, where grammar, paging, orderBy, writes, links."""

from __future__ import annotations

import httpx
import pytest
from sage_helpers import REST_PATH

from crmbridge.sandbox.sagecrm import RunningServer, SageSandbox


def ids(rest: httpx.Client, where: str, **params: object) -> list[int]:
    answer = rest.get("/company", params={"where": where, "count": 100, **params})
    assert answer.status_code == 200, answer.text
    return [r["comp_companyid"] for r in answer.json()["$resources"]]


def test_credentials_are_checked_on_every_request(server: RunningServer) -> None:
    assert httpx.get(server.url + REST_PATH + "/company").status_code == 401
    wrong = httpx.get(server.url + REST_PATH + "/company", auth=("admin", "nope"))
    assert wrong.status_code == 401
    assert "invalid user name or password" in wrong.json()["$diagnoses"][0]["message"]
    header = {"X-Sage-Authorization": "Basic YWRtaW46YWRtaW4="}  # admin:admin
    assert httpx.get(server.url + REST_PATH + "/company", headers=header).status_code == 200


def test_records_use_column_names_and_http_links(rest: httpx.Client) -> None:
    company = rest.get("/company('2')").json()
    assert company["comp_name"] == "O'Brien Brothers Ltd"
    assert company["$key"] == "2"
    assert company["$url"].startswith("http://")
    assert company["$url"].endswith("/company('2')")
    assert company["comp_updateddate"] == "2024-01-03T13:00:00"
    assert rest.get("/company('999')").status_code == 404


def test_where_operators(rest: httpx.Client) -> None:
    assert ids(rest, "comp_name eq 'o''brien brothers ltd'") == [2]
    assert ids(rest, "comp_companyid lt 3 or comp_companyid ge 20") == [1, 2, 20]
    assert ids(rest, "comp_companyid gt 17 and comp_companyid le 18") == [18]
    assert ids(rest, "comp_companyid ne 1 and comp_companyid lt 3") == [2]
    assert ids(rest, "comp_name like 'Z%'") == [3]
    assert ids(rest, "comp_companyid in (4, 6)") == [4, 6]
    assert ids(rest, "comp_companyid between 5 and 7") == [5, 6, 7]
    assert ids(
        rest, "(comp_companyid eq 1 or comp_companyid eq 2) and comp_type eq 'customer'"
    ) == [1]
    assert ids(rest, "comp_updateddate lt '2024-01-03 00:00:00'") == [1]


@pytest.mark.parametrize(
    ("where", "status"),
    [
        ("comp_name eq", 400),
        ("comp_name = 'x'", 400),
        ("comp_name eq 'x' and", 400),
        ("comp_name eq null", 400),
        ("not comp_name eq 'x'", 422),
        ("comp_nosuch eq 'x'", 422),
        ("comp_name contains 'x'", 422),
        ("comp_updateddate gt 'soon'", 422),
    ],
)
def test_where_it_does_not_accept_is_400_or_422(
    rest: httpx.Client, where: str, status: int
) -> None:
    answer = rest.get("/company", params={"where": where})
    assert answer.status_code == status, answer.text
    assert answer.json()["$diagnoses"][0]["severity"] == "error"


def test_paging_with_start_index_and_count(rest: httpx.Client, sandbox: SageSandbox) -> None:
    sandbox.configure(max_records=0)
    first = rest.get("/company", params={"count": 8}).json()
    assert first["$totalResults"] == 20
    assert (first["$startIndex"], first["$itemsPerPage"]) == (1, 8)
    assert [r["comp_companyid"] for r in first["$resources"]] == list(range(1, 9))
    assert first["$next"].startswith("http://")
    last = rest.get("/company", params={"count": 8, "startIndex": 17}).json()
    assert [r["comp_companyid"] for r in last["$resources"]] == [17, 18, 19, 20]
    assert "$next" not in last
    assert rest.get("/company", params={"count": 0}).status_code == 400


def test_the_record_limit_caps_count(rest: httpx.Client) -> None:
    answer = rest.get("/company", params={"count": 50}).json()
    assert len(answer["$resources"]) == 5


def test_order_by_from_2024_r2_and_ignored_before(rest: httpx.Client, sandbox: SageSandbox) -> None:
    ordered = ids(rest, "comp_companyid le 3", orderBy="comp_name desc")
    assert ordered == [3, 2, 1]
    assert rest.get("/company", params={"orderBy": "comp_nosuch"}).status_code == 400
    sandbox.configure(version="2023 R1")
    assert ids(rest, "comp_companyid le 3", orderBy="comp_name desc") == [1, 2, 3]


def test_post_put_delete(rest: httpx.Client, sandbox: SageSandbox) -> None:
    made = rest.post("/company", json={"comp_name": "Rest Ltd", "comp_type": "partner"})
    assert made.status_code == 201
    key = made.json()["$key"]
    assert made.json()["comp_type"] == "Partner"
    assert made.json()["comp_createddate"] == made.json()["comp_updateddate"]
    changed = rest.put(f"/company('{key}')", json={"comp_website": "rest.ie"})
    assert changed.status_code == 200
    assert changed.json()["comp_website"] == "rest.ie"
    assert rest.delete(f"/company('{key}')").status_code == 200
    stored = sandbox.execute("SELECT comp_deleted FROM Company WHERE comp_companyid = ?", (key,))
    assert stored[0]["comp_deleted"] == 1
    assert rest.get(f"/company('{key}')").status_code == 404
    assert rest.delete(f"/company('{key}')").status_code == 404
    assert rest.patch(f"/company('{key}')", json={}).status_code == 405


def test_writes_are_validated(rest: httpx.Client) -> None:
    bad = rest.post("/company", json={"comp_name": "X", "comp_type": "Bogus"})
    assert bad.status_code == 400
    assert "selection list" in bad.json()["$diagnoses"][0]["message"]
    assert rest.post("/company", json={"comp_type": "Customer"}).status_code == 400
    assert rest.put("/company('999')", json={"comp_name": "x"}).status_code == 404


def test_entities_without_web_service_access_are_403(
    rest: httpx.Client, sandbox: SageSandbox
) -> None:
    sandbox.configure(web_entities=frozenset({"person"}))
    answer = rest.get("/company")
    assert answer.status_code == 403
    assert "not Web Service enabled" in answer.json()["$diagnoses"][0]["message"]
    assert [r["name"] for r in rest.get("/").json()["$resources"]] == ["person"]


def test_the_schema_describes_fields(rest: httpx.Client) -> None:
    schema = rest.get("/company/$schema").json()
    name = next(f for f in schema["fields"] if f["name"] == "comp_name")
    assert (name["type"], name["length"], name["required"]) == ("text", 60, True)
    kind = next(f for f in schema["fields"] if f["name"] == "comp_type")
    assert "Customer" in kind["values"]
