"""v4_1 get_entry_list: the query fragment, paging, order_by, deleted rows and links."""

from __future__ import annotations

from typing import Any

import pytest
from sugar_helpers import V4

from crmbridge.sandbox.sugarcrm import SugarSandbox

DB_FAILURE = "Database failure. Please refer to suitecrm.log for details."


def _names(answer: dict[str, Any], field: str = "name") -> list[str]:
    return [e["name_value_list"][field]["value"] for e in answer["entry_list"]]


def test_answer_shape_and_counter_types(v4: V4) -> None:
    answer = v4.entry_list(
        "Accounts", "accounts.name LIKE 'Acme%'", max_results=1, select_fields=["name"]
    )
    assert answer["result_count"] == 1
    assert answer["next_offset"] == 1
    assert answer["total_count"] == "1"
    entry = answer["entry_list"][0]
    assert set(entry) == {"id", "module_name", "name_value_list"}
    assert entry["module_name"] == "Accounts"
    assert entry["name_value_list"] == {
        "name": {"name": "name", "value": "Acme & Sons &quot;Q&quot;"}
    }
    assert answer["relationship_list"] == []


def test_total_count_is_integer_zero_when_nothing_matches(v4: V4) -> None:
    answer = v4.entry_list("Accounts", "accounts.name = 'nothing like this'")
    assert answer["total_count"] == 0
    assert (answer["result_count"], answer["next_offset"], answer["entry_list"]) == (0, 0, [])


def test_paging_next_offset_and_offset_past_the_end(v4: V4) -> None:
    seen: list[str] = []
    offset = 0
    while True:
        page = v4.entry_list("Contacts", offset=offset, max_results=30)
        if page["result_count"] == 0:
            break
        assert page["next_offset"] == offset + page["result_count"]
        seen += [e["id"] for e in page["entry_list"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == 80
    past = v4.entry_list("Contacts", offset=500)
    assert (past["result_count"], past["next_offset"], past["entry_list"]) == (0, 500, [])
    assert past["total_count"] == "80"


@pytest.mark.parametrize(("max_results", "expected"), [(0, 20), (-5, 20), ("", 20), (None, 20)])
def test_missing_zero_or_negative_max_results_gives_20(
    v4: V4, max_results: Any, expected: int
) -> None:
    assert v4.entry_list("Contacts", max_results=max_results)["result_count"] == expected


def test_missing_max_results_gives_20(v4: V4) -> None:
    answer = v4.call("get_entry_list", [v4.session, "Contacts", "", "", 0])
    assert answer["result_count"] == 20


def test_positive_max_results_has_no_cap_on_ce(v4: V4) -> None:
    assert v4.entry_list("Contacts", max_results=1000)["result_count"] == 80
    assert v4.entry_list("Contacts", max_results="25")["result_count"] == 25


def test_max_list_limit_caps_like_pro() -> None:
    box = SugarSandbox(max_list_limit=30)
    import httpx

    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        v4 = V4(http)
        v4.login()
        assert v4.entry_list("Contacts", max_results=1000)["result_count"] == 30
    box.close()


def test_non_numeric_max_results_is_http_500_with_empty_body(v4: V4) -> None:
    response = v4.post(
        "get_entry_list",
        [v4.session, "Accounts", "", "", 0, [], [], "lots", 0],
    )
    assert (response.status_code, response.content) == (500, b"")


def test_query_is_evaluated_with_quoting_in_like_and_or_not_null(v4: V4) -> None:
    v4.set_entry("Accounts", {"name": "O'Hara Widgets"})
    v4.set_entry("Accounts", {"name": "Zed Co", "industry": ""})
    quoted = v4.entry_list("Accounts", "accounts.name = 'O''Hara Widgets'")
    assert _names(quoted) == ["O&#039;Hara Widgets"]
    backslash = v4.entry_list("Accounts", "accounts.name = 'O\\'Hara Widgets'")
    assert backslash["total_count"] == "1"
    combined = v4.entry_list(
        "Accounts",
        "(accounts.name LIKE 'Zed%' OR accounts.name IN ('O''Hara Widgets', 'x')) "
        "AND NOT accounts.name LIKE 'Acme%' AND accounts.deleted = 0",
    )
    assert sorted(_names(combined)) == ["O&#039;Hara Widgets", "Zed Co"]
    nulls = v4.entry_list("Accounts", "accounts.parent_id IS NULL")
    assert nulls["total_count"] == "42"


def test_comparison_on_utc_datetimes_and_numbers(v4: V4) -> None:
    every = v4.entry_list("Accounts", max_results=100, select_fields=["date_modified"])
    stamps = [e["name_value_list"]["date_modified"]["value"] for e in every["entry_list"]]
    cut = "2024-01-05 00:00:00"
    after = v4.entry_list("Accounts", f"accounts.date_modified > '{cut}'")
    assert 0 < int(after["total_count"]) == sum(s > cut for s in stamps) < 40
    rich = v4.entry_list("Opportunities", "opportunities.amount >= 100000", max_results=100)
    assert all(float(e["name_value_list"]["amount"]["value"]) >= 100000 for e in rich["entry_list"])
    assert rich["result_count"] > 0


def test_string_comparison_is_case_insensitive_like_mysql(v4: V4) -> None:
    answer = v4.entry_list("Accounts", "accounts.name = 'ACME & SONS \"Q\"'")
    assert answer["total_count"] == "1"


def test_custom_fields_in_cstm_table(v4: V4) -> None:
    answer = v4.entry_list(
        "Leads", "leads_cstm.external_id_c = 'WEB-00003'", select_fields=["external_id_c"]
    )
    assert _names(answer, "external_id_c") == ["WEB-00003"]
    scored = v4.entry_list("Leads", "leads_cstm.lead_score_c >= 0", max_results=200)
    assert scored["total_count"] == "80"


def test_email_subquery_is_allowed(v4: V4) -> None:
    created = v4.set_entry(
        "Contacts", {"first_name": "Eve", "last_name": "Mail", "email1": "Eve@Example.org"}
    )
    query = (
        "contacts.id IN (SELECT eabr.bean_id FROM email_addr_bean_rel eabr JOIN email_addresses "
        "ea ON ea.id = eabr.email_address_id WHERE eabr.bean_module = 'Contacts' "
        "AND eabr.deleted = 0 AND ea.email_address_caps = 'EVE@EXAMPLE.ORG')"
    )
    answer = v4.entry_list("Contacts", query, select_fields=["email1", "last_name"])
    assert [e["id"] for e in answer["entry_list"]] == [created["id"]]
    assert answer["entry_list"][0]["name_value_list"]["email1"]["value"] == "Eve@Example.org"


@pytest.mark.parametrize(
    "query",
    [
        "accounts.name = 'x'; DROP TABLE accounts",
        "accounts.name = 'x' UNION SELECT id FROM users",
        "accounts.id IN (SELECT id FROM users)",
        "accounts.id IN (SELECT contact_id FROM accounts_contacts WHERE deleted = 0)",
        "SLEEP(1) = 0",
        "benchmark(10, md5('x')) = 0",
        "accounts.name = 'x' -- comment",
        "accounts.name = 'x' /* c */",
        "1 = 1 ORDER BY accounts.name",
        "1 = 1 GROUP BY accounts.name",
        "1 = 1 LIMIT 1",
        "jt0.user_hash = 'x'",
        "a.b.c = 1",
        "accounts.id IN (SELECT ea.id FROM email_addresses ea WHERE ea.id IN "
        "(SELECT id FROM email_addresses WHERE 1 = 1))",
    ],
)
def test_rejected_queries_are_error_40(v4: V4, query: str) -> None:
    answer = v4.entry_list("Accounts", query)
    assert answer == {
        "name": "Access Denied",
        "number": 40,
        "description": "You do not have access",
    }


@pytest.mark.parametrize(
    "query",
    [
        "deleted = 0",
        "id = 'x'",
        "name = 'x' AND date_modified > '2020-01-01'",
        "nosuch.col = 1",
        "accounts.nosuch = 1",
        "accounts.name = 'O'Hara'",
    ],
)
def test_ambiguous_unknown_or_broken_sql_is_http_500_database_failure(v4: V4, query: str) -> None:
    response = v4.post("get_entry_list", [v4.session, "Accounts", query, "", 0, [], [], 5, 0])
    assert response.status_code == 500
    assert response.text == DB_FAILURE


def test_unambiguous_bare_column_works(v4: V4) -> None:
    answer = v4.entry_list("Accounts", "industry IS NOT NULL AND name LIKE 'Acme%'")
    assert answer["total_count"] == "1"


def test_mysql_functions_and_operators_run(v4: V4) -> None:
    assert (
        v4.entry_list("Accounts", "LOWER(accounts.name) = 'zürich trading ag'")["total_count"]
        == "1"
    )
    assert (
        v4.entry_list("Accounts", "accounts.date_entered < NOW() && 1 = 1")["total_count"] == "40"
    )
    assert (
        v4.entry_list("Accounts", "CONCAT(accounts.name, '!') = 'Zürich Trading AG!'")[
            "total_count"
        ]
        == "1"
    )


def test_like_escape_with_backslash(v4: V4) -> None:
    v4.set_entry("Accounts", {"name": "100% Pure"})
    v4.set_entry("Accounts", {"name": "1000 Pure"})
    answer = v4.entry_list("Accounts", "accounts.name LIKE '100\\% P%'")
    assert _names(answer) == ["100% Pure"]


def test_order_by_bare_fields(v4: V4) -> None:
    answer = v4.entry_list(
        "Accounts", order_by="date_modified DESC, id ASC", select_fields=["date_modified"]
    )
    stamps = [e["name_value_list"]["date_modified"]["value"] for e in answer["entry_list"]]
    assert stamps == sorted(stamps, reverse=True)
    by_name = _names(v4.entry_list("Accounts", order_by="name", max_results=100))
    assert by_name == sorted(by_name, key=str.lower)


def test_qualified_or_unknown_order_by_is_silently_dropped(v4: V4) -> None:
    default = [e["id"] for e in v4.entry_list("Accounts", max_results=100)["entry_list"]]
    for order in ("accounts.name DESC", "nosuch ASC", "accounts.date_modified"):
        answer = v4.entry_list("Accounts", order_by=order, max_results=100)
        assert [e["id"] for e in answer["entry_list"]] == default
    names = _names(v4.entry_list("Accounts", max_results=100))
    assert names != sorted(names)  # the default order is not by name ...
    stamps = [
        e["name_value_list"]["date_entered"]["value"]
        for e in v4.entry_list("Contacts", max_results=100)["entry_list"]
    ]
    assert stamps != sorted(stamps)  # ... nor by date


def test_order_by_with_a_semicolon_is_error_40(v4: V4) -> None:
    assert v4.entry_list("Accounts", order_by="name; DROP TABLE x")["number"] == 40


def test_deleted_flag_truthy_means_live_and_deleted_together(v4: V4) -> None:
    assert v4.entry_list("Accounts", max_results=100)["total_count"] == "40"
    both = v4.entry_list("Accounts", max_results=100, deleted=1, select_fields=["deleted"])
    assert both["total_count"] == "42"
    flags = sorted(e["name_value_list"]["deleted"]["value"] for e in both["entry_list"])
    assert flags == ["0"] * 40 + ["1"] * 2
    assert v4.entry_list("Accounts", deleted="false")["total_count"] == "42"  # PHP truthiness
    assert v4.entry_list("Accounts", deleted="0")["total_count"] == "40"
    only = v4.entry_list("Accounts", "accounts.deleted = 1", deleted=True)
    assert only["total_count"] == "2"
    assert v4.entry_list("Accounts", "accounts.deleted = 1")["total_count"] == 0


def test_values_are_strings_bools_01_nulls_empty_utc_datetimes(v4: V4) -> None:
    answer = v4.entry_list(
        "Contacts",
        "contacts.phone_mobile IS NULL",
        max_results=1,
        select_fields=["do_not_call", "phone_mobile", "date_modified", "birthdate", "deleted"],
    )
    values = {k: v["value"] for k, v in answer["entry_list"][0]["name_value_list"].items()}
    assert values["do_not_call"] in ("0", "1")
    assert values["phone_mobile"] == ""
    assert values["birthdate"] == ""
    assert values["deleted"] == "0"
    assert len(values["date_modified"]) == 19
    assert values["date_modified"][10] == " "


def test_enum_holds_the_key(v4: V4) -> None:
    created = v4.set_entry("Leads", {"last_name": "K", "status": "In Process"})
    answer = v4.entry_list("Leads", f"leads.id = '{created['id']}'", select_fields=["status"])
    assert _names(answer, "status") == ["In Process"]


def test_email_addresses_link_in_relationship_list(v4: V4) -> None:
    answer = v4.entry_list(
        "Contacts",
        "contacts.last_name IN ('Smith', 'Johnson')",
        order_by="date_entered, last_name DESC",
        max_results=2,
        select_fields=["email1"],
        link_name_to_fields_array=[
            {"name": "email_addresses", "value": ["email_address", "primary_address", "opt_out"]}
        ],
    )
    rels = answer["relationship_list"]
    assert len(rels) == 2
    first = rels[0]["link_list"][0]
    assert first["name"] == "email_addresses"
    records = [r["link_value"] for r in first["records"]]
    assert records[0] == {
        "email_address": {"name": "email_address", "value": "james.smith0@example.net"},
        "primary_address": {"name": "primary_address", "value": "1"},
        "opt_out": {"name": "opt_out", "value": "0"},
    }
    assert records[1]["primary_address"]["value"] == "0"  # every fifth contact has two
    email1 = answer["entry_list"][0]["name_value_list"]["email1"]["value"]
    assert email1 == "james.smith0@example.net"


def test_other_links_in_relationship_list(v4: V4) -> None:
    answer = v4.entry_list(
        "Accounts",
        max_results=1,
        link_name_to_fields_array=[{"name": "contacts", "value": ["first_name", "last_name"]}],
    )
    records = answer["relationship_list"][0]["link_list"][0]["records"]
    assert len(records) == 2
    assert set(records[0]["link_value"]) == {"first_name", "last_name"}


def test_get_entries_count_is_a_string(v4: V4) -> None:
    count = v4.call("get_entries_count", [v4.session, "Contacts", "", 0])
    assert count == {"result_count": "80"}
    none = v4.call("get_entries_count", [v4.session, "Contacts", "contacts.id = 'x'", 0])
    assert none == {"result_count": "0"}
    both = v4.call("get_entries_count", [v4.session, "Contacts", "", 1])
    assert both == {"result_count": "82"}
    bad = v4.call("get_entries_count", [v4.session, "Contacts", "1=1; x", 0])
    assert bad["number"] == 40
