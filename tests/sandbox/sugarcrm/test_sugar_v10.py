"""REST v10/v11: OAuth2, list/filter/count, CRUD, links, bulk, sync keys, metadata."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest
from sugar_helpers import Rest

from crmbridge.sandbox.sugarcrm import SugarSandbox


def _token(client: httpx.Client, **body: str) -> httpx.Response:
    base = {"grant_type": "password", "client_id": "sugar", "client_secret": ""}
    return client.post("/rest/v11/oauth2/token", json={**base, **body})


def test_password_grant_answers_tokens(client: httpx.Client) -> None:
    answer = _token(client, username="admin", password="admin", platform="p").json()
    assert answer["expires_in"] == 3600
    assert {"access_token", "refresh_token", "refresh_expires_in"} <= set(answer)


def test_wrong_password_is_401_invalid_grant(client: httpx.Client) -> None:
    response = _token(client, username="admin", password="nope")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_grant"
    assert set(response.json()) == {"error", "error_message"}


def test_refresh_token_grant(client: httpx.Client) -> None:
    first = _token(client, username="admin", password="admin").json()
    refreshed = client.post(
        "/rest/v10/oauth2/token",
        json={
            "grant_type": "refresh_token",
            "client_id": "sugar",
            "client_secret": "",
            "refresh_token": first["refresh_token"],
        },
    )
    assert refreshed.status_code == 200
    new_token = refreshed.json()["access_token"]
    assert client.get("/rest/v11/ping", headers={"OAuth-Token": new_token}).json() == "pong"
    again = client.post(
        "/rest/v11/oauth2/token",
        json={
            "grant_type": "refresh_token",
            "client_id": "sugar",
            "refresh_token": first["refresh_token"],
        },
    )
    assert again.status_code == 401


def test_missing_or_unknown_token_is_401_need_login(client: httpx.Client) -> None:
    for headers in ({}, {"OAuth-Token": "nope"}):
        response = client.get("/rest/v11/Accounts", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "need_login"


def test_one_live_token_per_user_and_platform(client: httpx.Client) -> None:
    first = _token(client, username="admin", password="admin", platform="a").json()
    other = _token(client, username="admin", password="admin", platform="b").json()
    _token(client, username="admin", password="admin", platform="a")
    ping = "/rest/v11/ping"
    assert client.get(ping, headers={"OAuth-Token": first["access_token"]}).status_code == 401
    assert client.get(ping, headers={"OAuth-Token": other["access_token"]}).status_code == 200


@pytest.mark.parametrize("version", ["v10", "v11", "v11_1", "v11_20"])
def test_every_version_prefix_works(rest: Rest, version: str) -> None:
    assert rest.get(f"/rest/{version}/ping").json() == "pong"


def test_list_defaults_next_offset_and_record_shape(rest: Rest) -> None:
    page = rest.get("Accounts").json()
    assert len(page["records"]) == 20
    assert page["next_offset"] == 20
    record = page["records"][0]
    assert record["_module"] == "Accounts"
    assert "_acl" in record
    last = rest.get("Accounts", params={"offset": 20, "max_num": 50}).json()
    assert len(last["records"]) == 20
    assert last["next_offset"] == -1


def test_default_order_is_date_modified_desc(rest: Rest) -> None:
    stamps = [
        r["date_modified"] for r in rest.get("Accounts", params={"max_num": 40}).json()["records"]
    ]
    moments = [datetime.fromisoformat(s) for s in stamps]
    assert moments == sorted(moments, reverse=True)


def test_datetimes_carry_the_users_offset_and_booleans_are_json(rest: Rest) -> None:
    record = rest.get("Contacts", params={"max_num": 1}).json()["records"][0]
    assert record["date_modified"].endswith(("-05:00", "-04:00"))
    assert isinstance(record["do_not_call"], bool)
    assert isinstance(record["deleted"], bool)
    email = record["email"][0]
    assert set(email) >= {"email_address", "primary_address", "opt_out", "invalid_email"}
    assert email["primary_address"] is True


def test_fields_parameter_limits_the_answer(rest: Rest) -> None:
    record = rest.get("Accounts", params={"fields": "name", "max_num": 1}).json()["records"][0]
    assert set(record) == {"id", "name", "date_modified", "_acl", "_module"}


def test_filter_operators(rest: Rest) -> None:
    def count(filter_: Any) -> int:
        body = {"filter": filter_, "max_num": 500, "fields": "name"}
        response = rest.post("Contacts/filter", json=body)
        assert response.status_code == 200, response.text
        return len(response.json()["records"])

    total = count([])
    assert total == 80
    smiths = count([{"last_name": "Smith"}])
    assert smiths == count([{"last_name": {"$equals": "Smith"}}]) > 0
    assert count([{"last_name": {"$not_equals": "Smith"}}]) == total - smiths
    assert count([{"last_name": {"$starts": "Smi"}}]) == smiths
    assert count([{"last_name": {"$ends": "mith"}}]) == smiths
    assert count([{"last_name": {"$contains": "mit"}}]) == smiths
    assert count([{"last_name": {"$not_contains": "mit"}}]) == total - smiths
    assert count([{"last_name": {"$in": ["Smith", "Jones"]}}]) == smiths + count(
        [{"last_name": "Jones"}]
    )
    assert count([{"last_name": {"$not_in": ["Smith"]}}]) == total - smiths
    assert (
        count([{"phone_mobile": {"$is_null": ""}}]) + count([{"phone_mobile": {"$not_null": ""}}])
        == total
    )
    assert count([{"phone_mobile": {"$empty": ""}}]) == count([{"phone_mobile": {"$is_null": 1}}])
    assert count([{"phone_mobile": {"$not_empty": ""}}]) == 40
    either = [{"$or": [{"last_name": "Smith"}, {"last_name": "Jones"}]}]
    assert count(either) == count([{"last_name": {"$in": ["Smith", "Jones"]}}])
    both = [{"$and": [{"last_name": "Smith"}, {"first_name": "James"}]}]
    assert count(both) == count([{"last_name": "Smith", "first_name": "James"}])
    assert count([{"email": {"$starts": "james.smith0@"}}]) == 1


def test_filter_on_datetimes_with_offsets(rest: Rest, sandbox: SugarSandbox) -> None:
    stamps = sorted(
        r["date_modified"]
        for r in sandbox.execute("SELECT date_modified FROM contacts WHERE deleted = 0")
    )
    middle = stamps[len(stamps) // 2]  # UTC
    expected = sum(s >= middle for s in stamps)
    utc = middle.replace(" ", "T") + "+00:00"
    body = {"filter": [{"date_modified": {"$gte": utc}}], "max_num": 500}
    assert len(rest.post("Contacts/filter", json=body).json()["records"]) == expected
    local = datetime.fromisoformat(utc).astimezone(
        datetime.fromisoformat("2024-01-01T00:00:00-05:00").tzinfo
    )
    body = {"filter": [{"date_modified": {"$gte": local.isoformat()}}], "max_num": 500}
    assert len(rest.post("Contacts/filter", json=body).json()["records"]) == expected
    between = [{"date_modified": {"$between": [utc, "2030-01-01T00:00:00+00:00"]}}]
    assert (
        len(
            rest.post("Contacts/filter", json={"filter": between, "max_num": 500}).json()["records"]
        )
        == expected
    )
    date_range = {"filter": [{"date_modified": {"$dateRange": "this_year"}}]}
    assert rest.post("Contacts/filter", json=date_range).status_code == 200


def test_unknown_operator_or_field_is_422(rest: Rest) -> None:
    filters: list[Any] = [[{"name": {"$like": "A"}}], [{"nosuch": "A"}], [{"$nand": []}]]
    for filter_ in filters:
        response = rest.post("Accounts/filter", json={"filter": filter_})
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_parameter"


def test_filter_in_query_string_brackets_and_json(rest: Rest) -> None:
    brackets = rest.get("Contacts/filter", params={"filter[0][last_name][$starts]": "Smi"})
    as_json = rest.get(
        "Contacts", params={"filter": json.dumps([{"last_name": {"$starts": "Smi"}}])}
    )
    assert brackets.status_code == as_json.status_code == 200
    assert brackets.json()["records"] == as_json.json()["records"]
    assert all(r["last_name"] == "Smith" for r in brackets.json()["records"])


def test_order_by_and_paging_are_stable(rest: Rest) -> None:
    seen: list[str] = []
    offset = 0
    while offset != -1:
        page = rest.get(
            "Contacts",
            params={"order_by": "date_modified:ASC,id:ASC", "max_num": 7, "offset": offset},
        ).json()
        seen += [r["id"] for r in page["records"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 80
    assert rest.get("Contacts", params={"order_by": "nosuch:ASC"}).status_code == 422


def test_max_num_clamped_to_max_list_limit() -> None:
    box = SugarSandbox(max_list_limit=15)
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        api = Rest(http)
        api.login()
        page = api.get("Accounts", params={"max_num": 100}).json()
        assert (len(page["records"]), page["next_offset"]) == (15, 15)
    box.close()


def test_deleted_parameter_includes_deleted_rows(rest: Rest) -> None:
    assert rest.get("Accounts/filter/count").json() == {"record_count": 40}
    assert rest.get("Accounts/count", params={"deleted": "true"}).json() == {"record_count": 42}
    body = {"filter": [{"industry": {"$not_empty": ""}}]}
    assert rest.post("Accounts/filter/count", json=body).json()["record_count"] == 40


def test_crud_answers_full_records(rest: Rest, sandbox: SugarSandbox) -> None:
    created = rest.post(
        "Contacts",
        json={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "do_not_call": True,
            "email": [
                {"email_address": "ada@example.com", "primary_address": True, "opt_out": True}
            ],
        },
    )
    assert created.status_code == 200
    record = created.json()
    assert (record["last_name"], record["do_not_call"]) == ("Lovelace", True)
    assert record["email"][0]["opt_out"] is True
    assert record["email1"] == "ada@example.com"
    record_id = record["id"]
    updated = rest.request("PUT", f"Contacts/{record_id}", json={"title": "Countess"}).json()
    assert (updated["title"], updated["first_name"]) == ("Countess", "Ada")
    assert rest.get(f"Contacts/{record_id}").json()["title"] == "Countess"
    assert rest.request("DELETE", f"Contacts/{record_id}").json() == {"id": record_id}
    assert sandbox.execute("SELECT deleted FROM contacts WHERE id = ?", [record_id]) == [
        {"deleted": 1}
    ]
    missing = rest.get(f"Contacts/{record_id}")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_dates_and_currency_on_write(rest: Rest) -> None:
    body = {"name": "D", "amount": 10, "sales_stage": "Prospecting", "date_closed": "2025-03-01"}
    record = rest.post("Opportunities", json=body).json()
    assert record["date_closed"] == "2025-03-01"
    assert record["amount"] == "10.000000"
    assert rest.post("Opportunities", json={"date_closed": "not a date"}).status_code == 422


def test_links(rest: Rest) -> None:
    account = rest.post("Accounts", json={"name": "Link Co"}).json()["id"]
    contact = rest.post("Contacts", json={"last_name": "Linked"}).json()["id"]
    added = rest.post(f"Accounts/{account}/link/contacts/{contact}")
    assert added.status_code == 200
    assert added.json()["related_record"]["id"] == contact
    listed = rest.get(f"Accounts/{account}/link/contacts").json()
    assert [r["id"] for r in listed["records"]] == [contact]
    assert listed["next_offset"] == -1
    assert rest.get(f"Contacts/{contact}").json()["account_id"] == account
    removed = rest.request("DELETE", f"Accounts/{account}/link/contacts/{contact}")
    assert removed.status_code == 200
    assert rest.get(f"Accounts/{account}/link/contacts").json()["records"] == []
    assert rest.post(f"Accounts/{account}/link/contacts/nope").status_code == 404
    assert rest.get(f"Accounts/{account}/link/nosuch").status_code == 404


def test_bulk_runs_each_request_and_one_failure_does_not_fail_the_rest(rest: Rest) -> None:
    answer = rest.post(
        "bulk",
        json={
            "requests": [
                {"url": "/v11/Accounts", "method": "POST", "data": json.dumps({"name": "Bulk A"})},
                {"url": "/v11/Accounts/nope", "method": "PUT", "data": {"name": "x"}},
                {"url": "/v11/Accounts?max_num=1", "method": "GET"},
            ]
        },
    )
    assert answer.status_code == 200
    results = answer.json()
    assert [r["status"] for r in results] == [200, 404, 200]
    assert results[0]["contents"]["name"] == "Bulk A"
    assert len(results[2]["contents"]["records"]) == 1


def test_sync_key_upsert_on_v11_10(rest: Rest) -> None:
    created = rest.request("PATCH", "/rest/v11_10/Leads/sync_key/SK-1", json={"last_name": "S"})
    assert created.status_code == 201
    updated = rest.request("PATCH", "/rest/v11_10/Leads/sync_key/SK-1", json={"title": "T"})
    assert updated.status_code == 200
    assert (updated.json()["id"], updated.json()["title"]) == (created.json()["id"], "T")
    assert rest.get("/rest/v11_10/Leads/sync_key/SK-1").json()["last_name"] == "S"
    assert rest.request("PATCH", "/rest/v11/Leads/sync_key/SK-1", json={}).status_code == 404


def test_metadata_me_ping_serverinfo(rest: Rest) -> None:
    meta = rest.get("metadata", params={"type_filter": "modules"}).json()
    fields = meta["modules"]["Leads"]["fields"]
    assert fields["last_name"] == fields["last_name"] | {
        "type": "varchar",
        "len": 100,
        "required": True,
    }
    assert fields["lead_source"]["options"] == "lead_source_dom"
    assert fields["lead_score_c"]["type"] == "int"
    assert fields["sync_key"]["type"] == "varchar"
    lists = rest.get("metadata", params={"type_filter": "app_list_strings"}).json()
    assert "Web Site" in lists["app_list_strings"]["lead_source_dom"]
    modules = rest.get("metadata", params={"type_filter": "module_list"}).json()
    assert "Opportunities" in modules["module_list"]
    assert rest.get("Leads/enum/status").json()["Dead"] == "Dead"
    me = rest.get("me").json()["current_user"]
    assert (me["user_name"], me["preferences"]["timezone"]) == ("admin", "America/New_York")
    assert rest.get("ping").json() == "pong"
    info = rest.get("serverinfo").json()
    assert (info["flavor"], info["version"], info["suitecrm_version"]) == ("CE", "6.5.25", "7.14.6")
    assert rest.get("nosuch/route/here/at/all/x").status_code == 404


def test_v10_can_be_switched_off() -> None:
    box = SugarSandbox(v10=False, seed=False)
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        assert http.post("/rest/v11/oauth2/token", json={}).status_code == 404
    box.close()


def test_logout_ends_the_token(rest: Rest) -> None:
    assert rest.post("oauth2/logout").json() == {"success": True}
    assert rest.get("ping").status_code == 401


def test_comparison_and_date_operators(rest: Rest) -> None:
    def count(filter_: Any) -> int:
        response = rest.post("Opportunities/filter/count", json={"filter": filter_})
        assert response.status_code == 200, response.text
        return int(response.json()["record_count"])

    total = count([])
    assert total == 60
    low = count([{"amount": {"$lt": 100000}}])
    assert low + count([{"amount": {"$gte": 100000}}]) == total
    assert count([{"amount": {"$lte": 100000}}]) - low == count([{"amount": 100000}])
    assert count([{"probability": {"$gt": 50}}]) < total
    closing = count([{"date_closed": {"$dateBetween": ["2024-02-01", "2024-02-29"]}}])
    assert 0 < closing == count([{"date_closed": {"$between": ["2024-02-01", "2024-02-29"]}}])
    assert count([{"date_closed": {"$dateRange": "next_year"}}]) == 0
    day = count([{"date_modified": {"$equals": "2024-01-02"}}])
    assert day == count([{"date_modified": {"$dateBetween": ["2024-01-02", "2024-01-02"]}}])
    assert (
        rest.post(
            "Opportunities/filter", json={"filter": [{"date_closed": {"$gt": "soon"}}]}
        ).status_code
        == 422
    )
