"""What a real SuiteCRM 7.14.6 did (shared/reference/sugarcrm.md, "More behaviour of a real
SuiteCRM 7.14.6"), reproduced by the sandbox, on both APIs where it applies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sugar_helpers import V4, Rest

from crmbridge.sandbox.sugarcrm import SugarSandbox


@pytest.fixture
def stock() -> Iterator[SugarSandbox]:
    """A stock SuiteCRM: no field added with Studio."""
    box = SugarSandbox(accounts=2)
    yield box
    box.close()


def clients(box: SugarSandbox) -> tuple[V4, Rest]:
    http = httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://x")
    v4, rest = V4(http), Rest(http)
    v4.login()
    rest.login()
    return v4, rest


def v4_fields(v4: V4, module: str) -> dict[str, Any]:
    return v4.call("get_module_fields", [v4.session, module, []])  # type: ignore[no-any-return]


def v10_fields(rest: Rest, module: str) -> dict[str, Any]:
    meta = rest.get("metadata", params={"type_filter": "modules", "module_filter": module})
    return meta.json()["modules"][module]["fields"]  # type: ignore[no-any-return]


def primary_email(box: SugarSandbox, record_id: str) -> list[dict[str, Any]]:
    return box.execute(
        "SELECT ea.email_address, ea.email_address_caps FROM email_addr_bean_rel r JOIN "
        "email_addresses ea ON ea.id = r.email_address_id WHERE r.bean_id = ? AND r.deleted = 0",
        (record_id,),
    )


# -- a stock server, and Studio fields ------------------------------------------------------
def test_a_stock_server_has_no_external_id_c(stock: SugarSandbox) -> None:
    v4, rest = clients(stock)
    for module in ("Leads", "Contacts"):
        assert "external_id_c" not in v4_fields(v4, module)["module_fields"]
        assert "external_id_c" not in v10_fields(rest, module)
    refused = v4.post(
        "get_entry_list",
        [v4.session, "Leads", "leads_cstm.external_id_c = 'x'", "", 0, [], [], 5, 0, False],
    )
    assert (refused.status_code, refused.text) == (
        500,
        "Database failure. Please refer to suitecrm.log for details.",
    )


def test_studio_fields_are_there_once_added_also_in_an_existing_database(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crm.sqlite"
    SugarSandbox(path, accounts=1).close()
    box = SugarSandbox(path, studio_fields=["Leads.external_id_c"])
    try:
        v4, rest = clients(box)
        assert v4_fields(v4, "Leads")["module_fields"]["external_id_c"]["type"] == "varchar"
        assert "external_id_c" not in v4_fields(v4, "Contacts")["module_fields"]
        assert "external_id_c" in v10_fields(rest, "Leads")
        saved = v4.set_entry("Leads", {"last_name": "S", "external_id_c": "E-1"})
        stored = box.execute("SELECT external_id_c FROM leads_cstm WHERE id_c = ?", (saved["id"],))
        assert stored == [{"external_id_c": "E-1"}]
    finally:
        box.close()
    with pytest.raises(ValueError, match=r"no Studio field 'Leads\.nope_c'"):
        SugarSandbox(studio_fields=["Leads.nope_c"])


# -- e-mail addresses -----------------------------------------------------------------------
REFUSED = ["josé@example.com", "jose@exämple.com", " spaced@example.com "]
STORED = ["o'brien@example.com", "a+b@example.co.uk"]


@pytest.mark.parametrize("address", REFUSED + STORED)
def test_v4_1_stores_only_addresses_suitecrm_accepts_and_reports_success(
    stock: SugarSandbox, address: str
) -> None:
    v4, _ = clients(stock)
    saved = v4.set_entry("Leads", {"last_name": "Mail", "email1": address})
    assert saved["id"], "the record is created either way"
    assert stock.execute("SELECT last_name FROM leads WHERE id = ?", (saved["id"],))
    expected = [] if address in REFUSED else [address]
    assert [e["email_address"] for e in primary_email(stock, saved["id"])] == expected


@pytest.mark.parametrize("address", REFUSED + STORED)
def test_v10_stores_only_addresses_suitecrm_accepts(stock: SugarSandbox, address: str) -> None:
    _, rest = clients(stock)
    created = rest.post("Leads", json={"last_name": "Mail", "email1": address})
    assert created.status_code == 200
    listed = rest.post("Contacts", json={"last_name": "M", "email": [{"email_address": address}]})
    expected = [] if address in REFUSED else [address]
    for record in (created.json(), listed.json()):
        assert [e["email_address"] for e in record["email"]] == expected


def test_email_address_caps_upper_cases_ascii_letters_only(stock: SugarSandbox) -> None:
    """PHP 8's strtoupper; a non-ASCII address only gets there by other ways (an import)."""
    v4, _ = clients(stock)
    saved = v4.set_entry("Leads", {"last_name": "Caps", "email1": "o'brien@example.com"})
    assert primary_email(stock, saved["id"])[0]["email_address_caps"] == "O'BRIEN@EXAMPLE.COM"
    from crmbridge.sandbox.sugarcrm.values import email_caps

    assert email_caps("josé@exämple.com") == "JOSé@EXäMPLE.COM"


# -- what is stored -------------------------------------------------------------------------
def test_text_is_cut_silently_at_65535_bytes(stock: SugarSandbox) -> None:
    v4, rest = clients(stock)
    long = "é" * 35_000  # 70,000 bytes
    saved = v4.set_entry("Leads", {"last_name": "Long", "description": long})
    created = rest.post("Leads", json={"last_name": "Long", "description": "x" * 70_000})
    for record_id in (saved["id"], created.json()["id"]):
        stored = stock.execute("SELECT description FROM leads WHERE id = ?", (record_id,))
        text = stored[0]["description"]
        assert len(text.encode("utf-8")) in (65_534, 65_535)  # never half a character
        assert long.startswith(text) or set(text) == {"x"}


def test_notes_portal_flag_is_marked_required_yet_defaults_to_0(stock: SugarSandbox) -> None:
    v4, rest = clients(stock)
    assert v4_fields(v4, "Notes")["module_fields"]["portal_flag"]["required"] == 1
    assert v10_fields(rest, "Notes")["portal_flag"]["required"] is True
    saved = v4.set_entry("Notes", {"name": "without the flag"})
    created = rest.post("Notes", json={"name": "without the flag"})
    assert created.json()["portal_flag"] is False
    for record_id in (saved["id"], created.json()["id"]):
        flags = stock.execute("SELECT portal_flag FROM notes WHERE id = ?", (record_id,))
        assert flags == [{"portal_flag": 0}]


def test_standard_links_report_an_empty_module_but_name_their_relationship(
    stock: SugarSandbox,
) -> None:
    v4, rest = clients(stock)
    empty = {"Contacts": ["accounts", "notes"], "Leads": ["accounts"], "Notes": ["accounts"]}
    for module, links in empty.items():
        v4_links = v4_fields(v4, module)["link_fields"]
        v10_links = v10_fields(rest, module)
        for link in links:
            assert v4_links[link]["module"] == "", (module, link)
            assert v10_links[link]["module"] == "", (module, link)
            assert v4_links[link]["relationship"] == v10_links[link]["relationship"] != ""
    assert v4_fields(v4, "Accounts")["link_fields"]["contacts"]["module"] == "Contacts"
    assert v4_fields(v4, "Contacts")["link_fields"]["accounts"]["relationship"] == (
        "accounts_contacts"
    )


def test_lawful_basis_is_a_multienum_in_the_caret_encoding(stock: SugarSandbox) -> None:
    v4, rest = clients(stock)
    meta = v4_fields(v4, "Contacts")["module_fields"]["lawful_basis"]
    assert (meta["type"], meta["len"]) == ("multienum", "")
    assert "legitimate_interests" in meta["options"]
    assert v10_fields(rest, "Leads")["lawful_basis"]["options"] == "lawful_basis_dom"
    saved = v4.set_entry("Contacts", {"last_name": "L", "lawful_basis": "^consent^,^contract^"})
    created = rest.post("Contacts", json={"last_name": "L", "lawful_basis": ["consent"]})
    stored = stock.execute(
        "SELECT lawful_basis FROM contacts WHERE id IN (?, ?) ORDER BY lawful_basis",
        (saved["id"], created.json()["id"]),
    )
    assert [r["lawful_basis"] for r in stored] == ["^consent^", "^consent^,^contract^"]
    assert created.json()["lawful_basis"] == ["consent"]
    entry = v4.call("get_entry", [v4.session, "Contacts", saved["id"], ["lawful_basis"], [], 0])
    values = entry["entry_list"][0]["name_value_list"]
    assert values["lawful_basis"]["value"] == "^consent^,^contract^"


def test_country_fields_have_no_len_in_the_metadata_yet_hold_255(stock: SugarSandbox) -> None:
    v4, rest = clients(stock)
    assert v4_fields(v4, "Accounts")["module_fields"]["billing_address_country"]["len"] == ""
    assert "len" not in v10_fields(rest, "Leads")["primary_address_country"]
    assert v4_fields(v4, "Accounts")["module_fields"]["billing_address_city"]["len"] == 100
    saved = v4.set_entry("Leads", {"last_name": "C", "primary_address_country": "x" * 300})
    stored = stock.execute(
        "SELECT primary_address_country AS c FROM leads WHERE id = ?", (saved["id"],)
    )
    assert len(stored[0]["c"]) == 255


# -- sessions -------------------------------------------------------------------------------
def _parallel(box: SugarSandbox, sessions: list[str]) -> float:
    """Seconds for one get_entries_count per session in ``sessions``, all sent at once."""
    http = httpx.Client(transport=httpx.WSGITransport(app=box.wsgi_app), base_url="http://x")
    v4 = V4(http)

    def count(session: str) -> None:
        answer = v4.call("get_entries_count", [session, "Accounts", "", 0])
        assert "result_count" in answer

    threads = [threading.Thread(target=count, args=(s,)) for s in sessions]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def test_calls_of_one_session_are_served_one_after_another(stock: SugarSandbox) -> None:
    v4, _ = clients(stock)
    other = V4(v4.client)
    other.login()
    stock.faults.latency = 0.1
    assert _parallel(stock, [v4.session] * 3) >= 0.3
    assert stock.faults.peak_parallel_calls == 1
    stock.faults.reset()
    stock.faults.latency = 0.1
    assert _parallel(stock, [v4.session, other.session]) < 0.19
    assert stock.faults.peak_parallel_calls == 2


def test_v10_calls_of_one_token_are_serialised_too(stock: SugarSandbox) -> None:
    _, rest = clients(stock)
    stock.faults.latency = 0.1
    threads = [threading.Thread(target=rest.get, args=("ping",)) for _ in range(3)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.perf_counter() - started >= 0.3
    assert stock.faults.peak_parallel_calls == 1


def test_a_second_login_of_the_same_user_and_platform_ends_the_first_token(
    stock: SugarSandbox,
) -> None:
    _, first = clients(stock)
    assert first.get("ping").status_code == 200
    second = Rest(first.client)
    second.login(platform="t")  # the platform `first` logged in on
    assert first.get("ping").status_code == 401
    assert second.get("ping").status_code == 200
    other_platform = Rest(first.client)
    other_platform.login(platform="another")
    assert second.get("ping").status_code == 200


def test_a_token_that_dies_during_a_bulk_call_fails_the_rest_of_it_with_401(
    stock: SugarSandbox,
) -> None:
    _, rest = clients(stock)
    stock.faults.expire_sessions_after(3)  # the bulk call itself and two sub-requests
    requests = [{"url": "/v11/Accounts?max_num=1", "method": "GET"} for _ in range(4)]
    replies = rest.post("bulk", json={"requests": requests}).json()
    assert [r["status"] for r in replies] == [200, 200, 401, 401]
    assert replies[2]["contents"]["error"] == "need_login"


# -- deleting a Lead that has Notes ---------------------------------------------------------
def _lead_with_note(box: SugarSandbox, v4: V4) -> str:
    lead = v4.set_entry("Leads", {"last_name": "Noted"})["id"]
    v4.set_entry("Notes", {"name": "n", "parent_type": "Leads", "parent_id": lead})
    return str(lead)


def test_deleting_a_lead_with_notes_may_answer_500_after_deleting_it(
    stock: SugarSandbox,
) -> None:
    v4, rest = clients(stock)
    stock.faults.fail_lead_deletes_with_notes(3)
    lead = _lead_with_note(stock, v4)
    answer = v4.post(
        "set_entry",
        [v4.session, "Leads", [{"name": "id", "value": lead}, {"name": "deleted", "value": 1}]],
    )
    assert (answer.status_code, answer.text) == (500, "")
    assert stock.execute("SELECT deleted FROM leads WHERE id = ?", (lead,)) == [{"deleted": 1}]

    lead = _lead_with_note(stock, v4)
    assert rest.request("DELETE", f"Leads/{lead}").status_code == 500
    lead = _lead_with_note(stock, v4)
    plain = v4.set_entry("Leads", {"last_name": "No notes"})["id"]
    requests = [
        {"url": f"/v11/Leads/{lead}", "method": "DELETE"},
        {"url": f"/v11/Leads/{plain}", "method": "DELETE"},
    ]
    replies = rest.post("bulk", json={"requests": requests}).json()
    assert [r["status"] for r in replies] == [500, 200]
    deleted = stock.execute(
        "SELECT COUNT(*) AS n FROM leads WHERE deleted = 1 AND id IN (?, ?)", (lead, plain)
    )
    assert deleted == [{"n": 2}]
    # the knob used up: deletes answer normally again
    lead = _lead_with_note(stock, v4)
    assert rest.request("DELETE", f"Leads/{lead}").json() == {"id": lead}
    assert replies[0]["contents"]["error"] == "fatal_error"
