"""How the connector handles what a real SuiteCRM 7.14.6 does (the sandbox reproduces it:
tests/sandbox/sugarcrm/test_sugar_real_server.py), on both APIs where it applies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sugarcrm_helpers import Connect, batch_of, check_equivalence, connector_factory, read_all

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.testing.writes import write_records


@pytest.fixture
def stock() -> Iterator[SugarSandbox]:
    """A stock SuiteCRM: no field added with Studio."""
    box = SugarSandbox(accounts=3)
    yield box
    box.close()


@pytest.fixture
def connect_stock(stock: SugarSandbox) -> Iterator[Connect]:
    with connector_factory(stock.wsgi_app) as make:
        yield make


@pytest.fixture
def crm(connect_stock: Connect, api: str) -> SugarCrmConnector:
    return connect_stock(api)


def write(
    crm: SugarCrmConnector,
    module: str,
    rows: list[dict[str, Any]],
    mode: WriteMode = WriteMode.INSERT,
    keys: tuple[str, ...] = (),
    *,
    checks: bool = True,
) -> WriteResult:
    batch = batch_of(crm, module, rows)
    return write_records(crm, module, batch, mode, keys=keys, checks=checks)


def addresses(box: SugarSandbox, record_id: str) -> list[str]:
    rows = box.execute(
        "SELECT ea.email_address FROM email_addr_bean_rel r JOIN email_addresses ea "
        "ON ea.id = r.email_address_id WHERE r.bean_id = ? AND r.deleted = 0",
        (record_id,),
    )
    return [r["email_address"] for r in rows]


def writes(box: SugarSandbox) -> int:
    counts = box.faults.call_counts()
    return counts.get("v4_1:set_entries", 0) + counts.get("v10:POST /bulk", 0)


# -- 1: a stock server ----------------------------------------------------------------------
def test_a_custom_field_the_server_lacks_is_named_with_studio(crm: SugarCrmConnector) -> None:
    with pytest.raises(ConfigError) as info:
        crm.describe("Leads").field("external_id_c")
    message = str(info.value)
    assert "unknown field 'external_id_c'" in message
    assert "custom fields exist only once an administrator adds them with Studio" in message
    assert "(Admin > Studio > Leads > Fields > Add Field)" in message
    with pytest.raises(ConfigError) as plain:
        crm.describe("Leads").field("titel")
    assert "Studio" not in str(plain.value)
    assert "did you mean 'title'" in str(plain.value)


def test_notes_need_no_portal_flag_although_marked_required(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    flag = crm.describe("Notes").field("portal_flag")
    assert (flag.type, flag.required) == (FieldType.BOOLEAN, False)
    result = write(crm, "Notes", [{"name": "no flag given"}])
    assert result.outcome.to_pylist() == ["created"]
    stored = stock.execute(
        "SELECT portal_flag FROM notes WHERE id = ?", (result.target_id[0].as_py(),)
    )
    assert stored == [{"portal_flag": 0}]


# -- 2: e-mail addresses the CRM would drop ---------------------------------------------------
@pytest.mark.parametrize("address", ["josé@example.com", "jose@exämple.com", "no-at-sign"])
def test_an_address_the_crm_refuses_rejects_the_record_with_the_reason(
    crm: SugarCrmConnector, stock: SugarSandbox, address: str
) -> None:
    stock.faults.reset()
    result = write(crm, "Leads", [{"last_name": "Refused", "email1": address}])
    assert result.outcome.to_pylist() == ["rejected"]
    reason = result.reason[0].as_py()
    assert f"email1 {address!r}" in reason
    assert "it would save the record without it" in reason
    assert writes(stock) == 0, "nothing is sent"


def test_an_address_is_trimmed_as_the_crm_would_not_and_matched_again(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    rows = [{"last_name": "Spaced", "email1": " spaced@example.com "}]
    created = write(crm, "Leads", rows, WriteMode.UPSERT, ("email1",))
    assert created.outcome.to_pylist() == ["created"]
    assert addresses(stock, created.target_id[0].as_py()) == ["spaced@example.com"]
    again = write(crm, "Leads", rows, WriteMode.UPSERT, ("email1",))
    assert (again.outcome.to_pylist(), again.target_id[0].as_py()) == (
        ["unchanged"],
        created.target_id[0].as_py(),
    )
    kept = [{"last_name": "Apostrophe", "email1": "o'brien@example.com"}]
    assert write(crm, "Leads", kept).outcome.to_pylist() == ["created"]


def test_what_the_crm_did_not_store_is_found_and_the_record_undone(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    """A rule of the server the connector does not know (here: its own checks left out):
    the record comes back without its address, which a read-back finds."""
    existing = write(crm, "Leads", [{"last_name": "Kept", "email1": "kept@example.com"}])
    kept_id = existing.target_id[0].as_py()
    rows = [
        {"last_name": "New", "email1": "josé@example.com"},
        {"last_name": "Fine", "email1": "fine@example.com"},
    ]
    result = write(crm, "Leads", rows, checks=False)
    assert result.outcome.to_pylist() == ["rejected", "created"]
    assert result.reason[0].as_py() == (
        "the CRM did not store email1 'josé@example.com' (it keeps None); the record it "
        "created without it was deleted again"
    )
    live = stock.execute("SELECT last_name FROM leads WHERE deleted = 0 AND last_name = 'New'")
    assert live == []
    update = write(
        crm,
        "Leads",
        [{"id": kept_id, "email1": "jösé@example.com", "title": "T"}],
        WriteMode.UPDATE,
        ("id",),
        checks=False,
    )
    assert update.outcome.to_pylist() == ["rejected"]
    assert update.reason[0].as_py() == (
        "the CRM did not store email1 'jösé@example.com' (it keeps 'kept@example.com'); the "
        "record's other fields were updated"
    )


def test_text_the_crm_rewrites_on_save_is_compared_in_its_stored_form(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    rows = [{"name": "AT&amp;T <Test>Wireless", "description": "<b>key</b> account"}]
    created = write(crm, "Accounts", rows, WriteMode.UPSERT, ("name",))
    record_id = created.target_id[0].as_py()
    stored = stock.execute("SELECT name FROM accounts WHERE id = ?", (record_id,))
    assert stored == [{"name": "AT&T Wireless"}]
    again = write(crm, "Accounts", rows, WriteMode.UPSERT, ("name",))
    assert (again.outcome.to_pylist(), again.target_id[0].as_py()) == (["unchanged"], record_id)
    live = stock.execute("SELECT COUNT(*) AS n FROM accounts WHERE name = 'AT&T Wireless'")
    assert live == [{"n": 1}], "matched in the stored form: not created twice"


# -- 3: links whose metadata names no module --------------------------------------------------
def test_links_with_an_empty_module_resolve_through_their_relationship(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    assert crm.links("Contacts")["accounts"] == "Accounts"
    assert crm.links("Contacts")["notes"] == "Notes"
    assert crm.links("Leads")["accounts"] == "Accounts"
    assert crm.links("Notes")["accounts"] == "Accounts"
    contacts = crm.describe("Contacts")
    assert contacts.field("accounts.name").on_request
    rows = read_all(crm, "Contacts", fields=["id", "accounts.name"])
    names = {
        r["contact_id"]: r["name"]
        for r in stock.execute(
            "SELECT ac.contact_id, a.name FROM accounts_contacts ac JOIN accounts a "
            "ON a.id = ac.account_id WHERE ac.deleted = 0"
        )
    }
    assert names
    assert {r["id"]: r["accounts.name"] for r in rows if r["id"] in names} == names


# -- 4: multienum, lengths --------------------------------------------------------------------
def test_multienum_is_a_list_read_and_written_in_the_caret_encoding(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    field = crm.describe("Contacts").field("lawful_basis")
    assert (field.type, field.length) == (FieldType.LIST, None)
    assert field.allowed_values is not None
    assert "consent" in field.allowed_values
    assert "" not in field.allowed_values
    rows = [{"last_name": "Lawful", "lawful_basis": ["consent", "contract"]}]
    created = write(crm, "Contacts", rows)
    record_id = created.target_id[0].as_py()
    stored = stock.execute("SELECT lawful_basis FROM contacts WHERE id = ?", (record_id,))
    assert stored == [{"lawful_basis": "^consent^,^contract^"}]
    read = read_all(crm, "Contacts", fields=["id", "lawful_basis"])
    assert {r["id"]: r["lawful_basis"] for r in read}[record_id] == ["consent", "contract"]
    keyed = [{"id": record_id, "lawful_basis": ["consent", "contract"]}]
    assert write(crm, "Contacts", keyed, WriteMode.UPDATE).outcome.to_pylist() == ["unchanged"]
    bad = write(crm, "Contacts", [{"last_name": "L", "lawful_basis": ["consent", "whim"]}])
    assert bad.reason[0].as_py().startswith("'whim' is not one of the options of 'lawful_basis'")


def test_both_apis_read_a_multienum_alike(connect_stock: Connect, stock: SugarSandbox) -> None:
    stock.execute("UPDATE leads SET lawful_basis = '^withdrawn^' WHERE rowid = 1")
    stock.execute("UPDATE leads SET lawful_basis = '' WHERE rowid = 2")
    v4 = read_all(connect_stock("v4_1"), "Leads", fields=["id", "lawful_basis"])
    v10 = read_all(connect_stock("v10"), "Leads", fields=["id", "lawful_basis"])
    assert v4 == v10
    assert [r["lawful_basis"] for r in v4].count(["withdrawn"]) == 1
    assert all(r["lawful_basis"] in (None, ["withdrawn"]) for r in v4)


def test_a_varchar_without_len_has_the_length_of_its_column(crm: SugarCrmConnector) -> None:
    country = crm.describe("Leads").field("primary_address_country")
    assert (country.type, country.length) == (FieldType.STRING, 255)
    result = write(crm, "Leads", [{"last_name": "C", "primary_address_country": "x" * 256}])
    assert result.reason[0].as_py().endswith("is 256 characters, the limit is 255")


def test_text_fields_carry_their_byte_limit(crm: SugarCrmConnector, stock: SugarSandbox) -> None:
    description = crm.describe("Leads").field("description")
    assert (description.type, description.max_bytes) == (FieldType.TEXT, 65_535)
    assert description.describe_type() == "text(65535 bytes)"
    result = write(crm, "Leads", [{"last_name": "Long", "description": "é" * 35_000}])
    assert result.reason[0].as_py().endswith("is 70000 bytes (UTF-8), the limit is 65535 bytes")
    assert writes(stock) == 0


# -- 6: a token that dies during /bulk --------------------------------------------------------
def test_a_token_dying_inside_a_bulk_call_costs_no_record(
    connect_stock: Connect, stock: SugarSandbox
) -> None:
    crm = connect_stock("v10", max_batch_size=100)
    crm.describe("Leads")
    stock.faults.reset()
    stock.faults.expire_sessions_after(40)  # about 150 calls on the real server
    rows = [{"last_name": f"Bulk {n}", "email1": f"bulk{n}@example.com"} for n in range(120)]
    result = write(crm, "Leads", rows)
    assert result.counts()["created"] == 120, result.reason.to_pylist()
    live = stock.execute("SELECT COUNT(*) AS n FROM leads WHERE last_name LIKE 'Bulk %'")
    assert live == [{"n": 120}], "no record twice"
    assert stock.faults.call_counts()["v10:POST /oauth2/token"] >= 3


def test_a_second_login_beside_a_run_costs_no_record(
    connect_stock: Connect, stock: SugarSandbox
) -> None:
    """`crmbridge connection test` while a run writes: same user, same platform."""
    run = connect_stock("v10")
    first = write(run, "Leads", [{"last_name": f"Run {n}"} for n in range(5)])
    connect_stock("v10").check()  # logs in: the run's token is superseded
    second = write(run, "Leads", [{"last_name": f"Run {n}"} for n in range(5, 10)])
    assert first.counts()["created"] + second.counts()["created"] == 10


def test_related_fields_read_through_bulk_survive_an_expiring_token(
    connect_stock: Connect, stock: SugarSandbox
) -> None:
    crm = connect_stock("v10")
    expected = read_all(crm, "Opportunities", fields=["id", "contacts.email1"])
    stock.faults.reset()
    stock.faults.expire_sessions_after(3)
    assert read_all(crm, "Opportunities", fields=["id", "contacts.email1"]) == expected


# -- 6: HTTP 500 on deleting a Lead that has Notes --------------------------------------------
def test_a_500_on_deleting_a_lead_is_settled_by_reading_it(
    crm: SugarCrmConnector, stock: SugarSandbox
) -> None:
    leads = write(crm, "Leads", [{"last_name": f"Noted {n}"} for n in range(3)])
    ids = leads.target_id.to_pylist()
    write(crm, "Notes", [{"name": "n", "parent_type": "Leads", "parent_id": i} for i in ids])
    stock.faults.fail_lead_deletes_with_notes(3)
    result = write(crm, "Leads", [{"id": i} for i in ids], WriteMode.DELETE, ("id",))
    assert result.outcome.to_pylist() == ["deleted"] * 3, result.reason.to_pylist()
    gone = stock.execute(
        f"SELECT COUNT(*) AS n FROM leads WHERE deleted = 1 AND id IN ({','.join('?' * 3)})", ids
    )
    assert gone == [{"n": 3}]


# -- 10: one answer everywhere ----------------------------------------------------------------
def test_a_null_boolean_reads_as_false_on_both_apis_and_filters_agree(
    connect_stock: Connect, stock: SugarSandbox, api: str
) -> None:
    stock.execute("UPDATE contacts SET do_not_call = NULL WHERE rowid IN (1, 2)")
    stock.execute("UPDATE contacts SET do_not_call = 1 WHERE rowid = 3")
    crm = connect_stock(api)
    rows = read_all(crm, "Contacts", fields=["id", "do_not_call"])
    assert [r["do_not_call"] for r in rows].count(None) == 0
    predicates = [
        "do_not_call",
        "NOT do_not_call",
        "do_not_call = FALSE",
        "do_not_call IS NULL",
        "do_not_call IS NOT NULL",
    ]
    pushed = check_equivalence(crm, "Contacts", predicates)
    assert pushed == predicates[:3]


def test_email1_pushdown_agrees_for_addresses_outside_ascii(
    connect_stock: Connect, stock: SugarSandbox, api: str
) -> None:
    """Imported so (the CRM refuses such addresses), with email_address_caps upper-cased
    either as PHP 8 does (ASCII letters only) or as older setups did (every letter)."""
    contacts = [r["id"] for r in stock.execute("SELECT id FROM contacts ORDER BY id LIMIT 3")]
    for n, (contact, address, caps) in enumerate(
        zip(
            contacts,
            ["josé@example.com", "renée@example.com", "JOSÉ@example.com"],
            ["JOSé@EXAMPLE.COM", "RENÉE@EXAMPLE.COM", "JOSÉ@EXAMPLE.COM"],
            strict=True,
        )
    ):
        stock.execute(
            "INSERT INTO email_addresses (id, email_address, email_address_caps, deleted) "
            "VALUES (?, ?, ?, 0)",
            (f"ea-{n}", address, caps),
        )
        stock.execute(
            "UPDATE email_addr_bean_rel SET primary_address = 0 WHERE bean_id = ?", (contact,)
        )
        stock.execute(
            "INSERT INTO email_addr_bean_rel (id, email_address_id, bean_id, bean_module, "
            "primary_address, deleted) VALUES (?, ?, ?, 'Contacts', 1, 0)",
            (f"r-{n}", f"ea-{n}", contact),
        )
    predicates = [
        "email1 = 'josé@example.com'",
        "email1 = 'renée@example.com'",
        "email1 IN ('JOSÉ@example.com', 'nobody@example.com')",
        "email1 LIKE 'jos%'",
        "email1 LIKE 'ren_e@%'",
    ]
    crm = connect_stock(api)
    assert check_equivalence(crm, "Contacts", predicates) == predicates
    found = read_all(crm, "Contacts", fields=["id"], filter=_parse("email1 = 'josé@example.com'"))
    assert [r["id"] for r in found] == [contacts[0]]


def test_literals_are_pushed_with_the_values_the_local_engine_gives_them(
    connect_stock: Connect, stock: SugarSandbox, api: str
) -> None:
    for n, name in enumerate(["1000.0", "1e3", "1000"]):
        stock.execute(
            "UPDATE contacts SET last_name = ?, date_modified = ? WHERE rowid = ?",
            (name, f"2024-01-03 1{2 + n}:30:00", n + 1),
        )
    predicates = [
        "last_name = cast(1e3 AS VARCHAR)",  # '1000.0', not its source text
        "last_name IN (cast(1e3 AS VARCHAR), '1000')",
        "date_modified >= TIMESTAMP '2024-01-03 14:00:00+02'",  # 12:00 UTC
        "date_modified < TIMESTAMP '2024-01-03 14:00:00+02'",
        "date_modified < TIMESTAMPTZ '2024-01-03 14:00:00+02'",  # 12:00 UTC
        "date_modified BETWEEN TIMESTAMP '2024-01-03 12:00:00' AND '2024-01-03 13:45:00+01'",
    ]
    crm = connect_stock(api)
    assert check_equivalence(crm, "Contacts", predicates) == predicates
    one = read_all(crm, "Contacts", fields=["last_name"], filter=_parse(predicates[0]))
    assert one == [{"last_name": "1000.0"}]


def _parse(text: str) -> Any:
    from crmbridge.core.expressions import parse

    return parse(text, what="filter")
