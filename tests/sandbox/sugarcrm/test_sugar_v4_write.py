"""v4_1 writes and reads by id: set_entry(ies), relationships, get_entry(ies), search."""

from __future__ import annotations

from typing import Any

import httpx
from sugar_helpers import V4

from crmbridge.sandbox.sugarcrm import SugarSandbox


def _get(v4: V4, module: str, record_id: str, fields: list[str]) -> dict[str, str]:
    answer = v4.call("get_entry", [v4.session, module, record_id, fields, []])
    return {k: v["value"] for k, v in answer["entry_list"][0]["name_value_list"].items()}


def _stored(sandbox: SugarSandbox, table: str, record_id: str) -> dict[str, Any]:
    return sandbox.execute(f"SELECT * FROM {table} WHERE id = ?", [record_id])[0]


def test_set_entry_creates_and_answers_id_and_echo(v4: V4, sandbox: SugarSandbox) -> None:
    answer = v4.set_entry("Accounts", {"name": "New Co", "industry": "Banking"})
    assert set(answer) == {"id", "entry_list"}
    assert answer["entry_list"]["name"] == {"name": "name", "value": "New Co"}
    row = _stored(sandbox, "accounts", answer["id"])
    assert (row["name"], row["industry"], row["deleted"]) == ("New Co", "Banking", 0)
    assert row["created_by"] == row["assigned_user_id"] == "1"
    assert row["date_entered"] == row["date_modified"]


def test_name_value_list_may_be_a_plain_object(v4: V4) -> None:
    answer = v4.call("set_entry", [v4.session, "Accounts", {"name": "Plain Object Co"}])
    assert _get(v4, "Accounts", answer["id"], ["name"]) == {"name": "Plain Object Co"}


def test_set_entry_updates_by_id(v4: V4, sandbox: SugarSandbox) -> None:
    created = v4.set_entry("Accounts", {"name": "Before"})
    sandbox.execute(
        "UPDATE accounts SET date_modified = '2020-01-01 00:00:00' WHERE id = ?", [created["id"]]
    )
    updated = v4.set_entry("Accounts", {"id": created["id"], "name": "After"})
    assert updated["id"] == created["id"]
    row = _stored(sandbox, "accounts", created["id"])
    assert row["name"] == "After"
    assert row["date_modified"] > "2020-01-01 00:00:00"


def test_unknown_id_answers_success_and_creates_nothing(v4: V4, sandbox: SugarSandbox) -> None:
    ghost = "0a0a0a0a-0000-4000-8000-000000000001"
    answer = v4.set_entry("Accounts", {"id": ghost, "name": "Ghost"})
    assert answer["id"] == ghost
    assert sandbox.execute("SELECT * FROM accounts WHERE id = ?", [ghost]) == []
    assert sandbox.execute("SELECT * FROM accounts WHERE name = 'Ghost'") == []


def test_new_with_id_creates_the_record_with_that_id(v4: V4, sandbox: SugarSandbox) -> None:
    chosen = "0a0a0a0a-0000-4000-8000-000000000002"
    v4.set_entry("Accounts", {"id": chosen, "new_with_id": True, "name": "Chosen"})
    assert _stored(sandbox, "accounts", chosen)["name"] == "Chosen"


def test_invalid_id_format_answers_null(v4: V4) -> None:
    response = v4.post(
        "set_entry",
        [
            v4.session,
            "Accounts",
            [{"name": "id", "value": "bad id!"}, {"name": "name", "value": "x"}],
        ],
    )
    assert (response.status_code, response.text) == (200, "null")


def test_soft_delete_updates_date_modified(v4: V4, sandbox: SugarSandbox) -> None:
    created = v4.set_entry("Contacts", {"last_name": "Gone"})
    sandbox.execute(
        "UPDATE contacts SET date_modified = '2020-01-01 00:00:00' WHERE id = ?", [created["id"]]
    )
    v4.set_entry("Contacts", {"id": created["id"], "deleted": 1})
    row = _stored(sandbox, "contacts", created["id"])
    assert row["deleted"] == 1
    assert row["date_modified"] > "2020-01-01 00:00:00"
    assert v4.entry_list("Contacts", f"contacts.id = '{created['id']}'")["total_count"] == 0


def test_entities_decoded_unknown_tags_stripped_b_kept_read_encoded(
    v4: V4, sandbox: SugarSandbox
) -> None:
    answer = v4.set_entry(
        "Accounts",
        {"name": "AT&amp;T <Test>Labs</Test>", "description": 'Say <b>"hi"</b> & it\'s <x>ok</x>'},
    )
    row = _stored(sandbox, "accounts", answer["id"])
    assert row["name"] == "AT&T Labs"
    assert row["description"] == 'Say <b>"hi"</b> & it\'s ok'
    read = _get(v4, "Accounts", answer["id"], ["name", "description"])
    assert read["name"] == "AT&T Labs"
    assert read["description"] == "Say &lt;b&gt;&quot;hi&quot;&lt;/b&gt; & it&#039;s ok"


def test_echoed_values_are_encoded_again(v4: V4, sandbox: SugarSandbox) -> None:
    answer = v4.set_entry("Accounts", {"name": "AT&amp;T Zürich", "billing_address_city": "Zürich"})
    assert answer["entry_list"]["name"]["value"] == "AT&amp;amp;T Z&uuml;rich"
    assert answer["entry_list"]["billing_address_city"]["value"] == "Z&uuml;rich"
    assert _stored(sandbox, "accounts", answer["id"])["billing_address_city"] == "Zürich"
    assert _get(v4, "Accounts", answer["id"], ["billing_address_city"]) == {
        "billing_address_city": "Zürich"
    }


def test_over_long_values_are_stored_truncated(v4: V4, sandbox: SugarSandbox) -> None:
    answer = v4.set_entry(
        "Leads", {"last_name": "L" * 150, "first_name": "F" * 120, "lead_source": "S" * 130}
    )
    row = _stored(sandbox, "leads", answer["id"])
    assert (len(row["last_name"]), len(row["first_name"]), len(row["lead_source"])) == (100,) * 3
    account = v4.set_entry("Accounts", {"name": "N" * 200})
    assert len(_stored(sandbox, "accounts", account["id"])["name"]) == 150


def test_email1_is_stored_in_the_email_tables(v4: V4, sandbox: SugarSandbox) -> None:
    answer = v4.set_entry("Leads", {"last_name": "M", "email1": "Mixed.Case@Example.com"})
    rows = sandbox.execute(
        "SELECT ea.email_address, ea.email_address_caps, r.primary_address, r.bean_module "
        "FROM email_addr_bean_rel r JOIN email_addresses ea ON ea.id = r.email_address_id "
        "WHERE r.bean_id = ? AND r.deleted = 0",
        [answer["id"]],
    )
    assert rows == [
        {
            "email_address": "Mixed.Case@Example.com",
            "email_address_caps": "MIXED.CASE@EXAMPLE.COM",
            "primary_address": 1,
            "bean_module": "Leads",
        }
    ]
    v4.set_entry("Leads", {"id": answer["id"], "email1": "new@example.com"})
    assert _get(v4, "Leads", answer["id"], ["email1"]) == {"email1": "new@example.com"}


def test_custom_fields_are_written_to_the_cstm_table(v4: V4, sandbox: SugarSandbox) -> None:
    answer = v4.set_entry("Leads", {"last_name": "C", "external_id_c": "EXT-1", "lead_score_c": 7})
    row = sandbox.execute("SELECT * FROM leads_cstm WHERE id_c = ?", [answer["id"]])[0]
    assert (row["external_id_c"], row["lead_score_c"]) == ("EXT-1", 7)
    assert _get(v4, "Leads", answer["id"], ["lead_score_c"]) == {"lead_score_c": "7"}


def test_contact_account_name_links_or_creates_an_account(v4: V4, sandbox: SugarSandbox) -> None:
    existing = v4.set_entry("Contacts", {"last_name": "A", "account_name": "Zürich Trading AG"})
    assert _get(v4, "Contacts", existing["id"], ["account_name"]) == {
        "account_name": "Zürich Trading AG"
    }
    assert len(sandbox.execute("SELECT id FROM accounts WHERE name = 'Zürich Trading AG'")) == 1
    fresh = v4.set_entry("Contacts", {"last_name": "B", "account_name": "Brand New Account"})
    assert len(sandbox.execute("SELECT id FROM accounts WHERE name = 'Brand New Account'")) == 1
    assert _get(v4, "Contacts", fresh["id"], ["account_name"])["account_name"] == (
        "Brand New Account"
    )


def test_set_entries_returns_ids(v4: V4) -> None:
    answer = v4.call(
        "set_entries",
        [
            v4.session,
            "Contacts",
            [
                [{"name": "last_name", "value": "One"}],
                [{"name": "last_name", "value": "Two"}],
            ],
        ],
    )
    assert len(answer["ids"]) == 2
    assert answer["ids"][0] != answer["ids"][1]


def test_set_entries_duplicate_check_returns_the_existing_id() -> None:
    box = SugarSandbox(duplicate_check=True, accounts=2)
    with httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://t") as http:
        v4 = V4(http)
        v4.login()
        first = v4.set_entry("Contacts", {"first_name": "Dup", "last_name": "Licate"})
        again = v4.call(
            "set_entries",
            [
                v4.session,
                "Contacts",
                [
                    [
                        {"name": "first_name", "value": "dup"},
                        {"name": "last_name", "value": "LICATE"},
                    ],
                ],
            ],
        )
        assert again["ids"] == [first["id"]]
        assert box.execute("SELECT COUNT(*) AS n FROM contacts WHERE last_name = 'Licate'") == [
            {"n": 1}
        ]
    box.close()


def _link(v4: V4, module: str, record: str, link: str, ids: Any, delete: int = 0) -> Any:
    return v4.call(
        "set_relationship",
        {
            "session": v4.session,
            "module_name": module,
            "module_id": record,
            "link_field_name": link,
            "related_ids": ids,
            "name_value_list": [],
            "delete": delete,
        },
    )


def test_set_relationship_links_without_touching_date_modified(
    v4: V4, sandbox: SugarSandbox
) -> None:
    account = v4.set_entry("Accounts", {"name": "Linked"})["id"]
    contact = v4.set_entry("Contacts", {"last_name": "Linkee"})["id"]
    for table, row_id in (("accounts", account), ("contacts", contact)):
        sandbox.execute(
            f"UPDATE {table} SET date_modified = '2020-01-01 00:00:00' WHERE id = ?", [row_id]
        )
    assert _link(v4, "Accounts", account, "contacts", [contact]) == {
        "created": 1,
        "failed": 0,
        "deleted": 0,
    }
    assert _stored(sandbox, "accounts", account)["date_modified"] == "2020-01-01 00:00:00"
    assert _stored(sandbox, "contacts", contact)["date_modified"] == "2020-01-01 00:00:00"
    assert _get(v4, "Contacts", contact, ["account_id"]) == {"account_id": account}


def test_set_relationship_answers_created_for_duplicates_and_ghosts(v4: V4) -> None:
    account = v4.set_entry("Accounts", {"name": "Dupes"})["id"]
    contact = v4.set_entry("Contacts", {"last_name": "Twice"})["id"]
    assert _link(v4, "Accounts", account, "contacts", [contact])["created"] == 1
    assert _link(v4, "Accounts", account, "contacts", [contact])["created"] == 1
    assert _link(v4, "Accounts", account, "contacts", ["no-such-id"])["created"] == 1
    assert _link(v4, "Accounts", account, "nosuchlink", [contact]) == {
        "created": 0,
        "failed": 1,
        "deleted": 0,
    }
    assert _link(v4, "Accounts", account, "contacts", [contact], delete=1) == {
        "created": 0,
        "failed": 0,
        "deleted": 1,
    }


def test_get_relationships_reads_links_back(v4: V4) -> None:
    account = v4.set_entry("Accounts", {"name": "Parent"})["id"]
    ids = [v4.set_entry("Contacts", {"last_name": n})["id"] for n in ("Ann", "Bob", "Cid")]
    _link(v4, "Accounts", account, "contacts", ids)
    answer = v4.call(
        "get_relationships",
        {
            "session": v4.session,
            "module_name": "Accounts",
            "module_id": account,
            "link_field_name": "contacts",
            "related_module_query": "contacts.last_name != 'Bob'",
            "related_fields": ["id", "last_name"],
            "related_module_link_name_to_fields_array": [],
            "deleted": 0,
            "order_by": "last_name DESC",
            "offset": 0,
            "limit": 10,
        },
    )
    names = [e["name_value_list"]["last_name"]["value"] for e in answer["entry_list"]]
    assert names == ["Cid", "Ann"]
    assert answer["entry_list"][0]["module_name"] == "Contacts"
    emails = v4.call(
        "get_relationships",
        [v4.session, "Accounts", account, "email_addresses", "", ["email_address"], [], 0],
    )
    assert emails["entry_list"] == []


def test_get_entries_keeps_order_and_warns_about_missing_ids(v4: V4) -> None:
    a = v4.set_entry("Accounts", {"name": "First"})["id"]
    b = v4.set_entry("Accounts", {"name": "Second"})["id"]
    answer = v4.call("get_entries", [v4.session, "Accounts", [b, "missing", a], ["name"], []])
    entries = answer["entry_list"]
    assert [e["id"] for e in entries] == [b, "missing", a]
    assert entries[1]["name_value_list"] == [
        {
            "name": "warning",
            "value": "Access to this object is denied since it has been deleted or does not exist",
        },
        {"name": "deleted", "value": "1"},
    ]
    assert entries[2]["name_value_list"] == {"name": {"name": "name", "value": "First"}}


def test_get_entry_with_email_link(v4: V4) -> None:
    record = v4.set_entry("Contacts", {"last_name": "E", "email1": "e@example.com"})["id"]
    answer = v4.call(
        "get_entry",
        [
            v4.session,
            "Contacts",
            record,
            ["email1"],
            [{"name": "email_addresses", "value": ["email_address", "opt_out"]}],
        ],
    )
    link = answer["relationship_list"][0]["link_list"][0]
    assert link["records"][0]["link_value"]["email_address"]["value"] == "e@example.com"


def test_search_by_module(v4: V4) -> None:
    v4.set_entry("Leads", {"first_name": "Quentin", "last_name": "Searchable"})
    answer = v4.call(
        "search_by_module",
        {
            "session": v4.session,
            "search_string": "Searcha",
            "modules": ["Leads", "Accounts"],
            "offset": 0,
            "max_results": 10,
            "assigned_user_id": "",
            "select_fields": [],
            "unified_search_only": False,
            "favorites": False,
        },
    )
    groups = {g["name"]: g["records"] for g in answer["entry_list"]}
    assert [r["last_name"]["value"] for r in groups["Leads"]] == ["Searchable"]
    assert groups["Accounts"] == []
