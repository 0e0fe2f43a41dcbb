"""Fields of related records (``contacts.email1`` on Opportunities): described, read, never
pushed down or written; both API families, against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from sugarcrm_helpers import Connect, batch_of, read_all

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.expressions import parse
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError, RemoteError
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.testing.writes import write_records

FIELDS = ["id", "name", "contacts.id", "contacts.email1", "contacts.last_name", "accounts.name"]
LIST_CALL = {"v4_1": "v4_1:get_entry_list", "v10": "v10:POST /Opportunities/filter"}


def _truth(sandbox: SugarSandbox) -> dict[str, str | None]:
    """Opportunity id -> the id of its oldest live contact (or None), straight from SQL."""
    rows = sandbox.execute(
        "SELECT o.id AS opportunity, c.id AS contact FROM opportunities o "
        "LEFT JOIN opportunities_contacts oc ON oc.opportunity_id = o.id AND oc.deleted = 0 "
        "LEFT JOIN contacts c ON c.id = oc.contact_id AND c.deleted = 0 "
        "WHERE o.deleted = 0 ORDER BY o.id, c.date_entered, c.id"
    )
    out: dict[str, str | None] = {}
    for row in rows:
        out.setdefault(row["opportunity"], row["contact"])
    return out


def _by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows}


def _link_contact(sandbox: SugarSandbox, opportunity: str, contact: str) -> None:
    sandbox.execute(
        "INSERT INTO opportunities_contacts (id, opportunity_id, contact_id, date_modified, "
        "deleted) VALUES (?, ?, ?, '2024-01-01 00:00:00', 0)",
        (f"rel-{opportunity[:8]}-{contact[:8]}", opportunity, contact),
    )


def test_describe_lists_related_fields_read_only_and_typed(crm: SugarCrmConnector) -> None:
    schema = crm.describe("Opportunities")
    email = schema.field("contacts.email1")
    assert (email.type, email.length, email.read_only) == (FieldType.STRING, 100, True)
    assert not email.required
    assert not email.key
    assert schema.field("accounts.date_entered").type is FieldType.DATETIME
    assert schema.field("contacts.do_not_call").type is FieldType.BOOLEAN
    stage = schema.field("contacts.lead_source")
    assert stage.type is FieldType.ENUM
    assert "Web Site" in (stage.allowed_values or ())
    assert not schema.has("contacts.contacts.email1"), "one level only"
    assert schema.field_names.index("name") < schema.field_names.index("contacts.email1")
    assert crm.links("Opportunities") == {"accounts": "Accounts", "contacts": "Contacts"}
    with pytest.raises(ConfigError, match=r"did you mean 'contacts\.email1'"):
        schema.field("contacts.emial1")


def test_each_record_gets_the_values_of_its_related_record(
    crm: SugarCrmConnector, sandbox: SugarSandbox
) -> None:
    rows = read_all(crm, "Opportunities", fields=FIELDS)
    truth = _truth(sandbox)
    assert {r["id"]: r["contacts.id"] for r in rows} == truth
    contacts = _by_id(read_all(crm, "Contacts", fields=["id", "email1", "last_name"]))
    accounts = _by_id(read_all(crm, "Accounts", fields=["id", "name"]))
    for row in rows:
        contact = contacts[row["contacts.id"]]
        assert (row["contacts.email1"], row["contacts.last_name"]) == (
            contact["email1"],
            contact["last_name"],
        )
        assert row["accounts.name"] in {a["name"] for a in accounts.values()}


def test_both_apis_read_the_same_related_values(connect: Connect) -> None:
    fields = [*FIELDS, "accounts.date_entered", "contacts.do_not_call"]
    v4 = read_all(connect("v4_1"), "Opportunities", fields=fields)
    v10 = read_all(connect("v10"), "Opportunities", fields=fields)
    assert v4
    assert _by_id(v4) == _by_id(v10)


def test_v4_1_text_is_decoded_in_related_values_too(
    crm: SugarCrmConnector, sandbox: SugarSandbox
) -> None:
    sandbox.execute("UPDATE accounts SET name = 'Acme & Sons \"Q\" <b>' WHERE deleted = 0")
    rows = read_all(crm, "Opportunities", fields=["id", "accounts.name"])
    assert {r["accounts.name"] for r in rows} == {'Acme & Sons "Q" <b>'}


def test_with_several_related_records_the_oldest_counts(
    crm: SugarCrmConnector, sandbox: SugarSandbox
) -> None:
    opportunity = read_all(crm, "Opportunities", fields=["id", "contacts.id"])[0]
    first = opportunity["contacts.id"]
    others = [c for c in read_all(crm, "Contacts", fields=["id"]) if c["id"] != first]
    newer, older = others[0]["id"], others[1]["id"]
    sandbox.execute(
        "UPDATE contacts SET date_entered = '2030-01-01 00:00:00' WHERE id = ?", (newer,)
    )
    sandbox.execute(
        "UPDATE contacts SET date_entered = '2001-01-01 00:00:00' WHERE id = ?", (older,)
    )
    wanted = parse(f"id = '{opportunity['id']}'", what="filter")

    def contact_of_opportunity() -> Any:
        return read_all(crm, "Opportunities", fields=["id", "contacts.id"], filter=wanted)

    _link_contact(sandbox, opportunity["id"], newer)
    assert contact_of_opportunity() == [opportunity]
    _link_contact(sandbox, opportunity["id"], older)
    assert contact_of_opportunity() == [{"id": opportunity["id"], "contacts.id": older}]


def test_a_record_without_related_records_gets_nulls(
    crm: SugarCrmConnector, sandbox: SugarSandbox
) -> None:
    sandbox.execute("UPDATE opportunities_contacts SET deleted = 1")
    rows = read_all(crm, "Opportunities", fields=["id", "contacts.email1", "contacts.do_not_call"])
    assert rows
    assert all(r["contacts.email1"] is None and r["contacts.do_not_call"] is None for r in rows)


def test_related_values_cost_no_extra_call_on_v4_1_and_one_bulk_call_per_page_on_v10(
    connect: Connect, sandbox: SugarSandbox, api: str
) -> None:
    crm = connect(api, page_size=4, concurrency=1)
    crm.describe("Opportunities")
    sandbox.faults.reset()
    rows = read_all(crm, "Opportunities", fields=FIELDS)
    pages = -(-len(rows) // 4)
    counts = sandbox.faults.call_counts()
    assert counts[LIST_CALL[api]] == pages
    assert counts.get("v10:POST /bulk", 0) == (pages if api == "v10" else 0)
    assert sum(counts.values()) == pages * (2 if api == "v10" else 1)


def test_v10_splits_the_related_reads_into_bulk_calls_of_max_batch_size(
    connect: Connect, sandbox: SugarSandbox
) -> None:
    crm = connect("v10", page_size=100, max_batch_size=5)
    crm.describe("Opportunities")
    sandbox.faults.reset()
    rows = read_all(crm, "Opportunities", fields=["id", "contacts.email1", "accounts.name"])
    assert sandbox.faults.call_counts()["v10:POST /bulk"] == -(-len(rows) * 2 // 5)
    assert all(r["contacts.email1"] for r in rows)


def test_related_fields_are_never_pushed_down(
    crm: SugarCrmConnector, sandbox: SugarSandbox
) -> None:
    crm.describe("Opportunities")
    sandbox.faults.reset()
    for text in ('"contacts.email1" IS NOT NULL', "\"accounts.name\" = 'x'"):
        assert not crm.can_push_down("Opportunities", parse(text, what="filter"))
    assert sandbox.faults.calls == 0, "decided without asking the server"


def test_related_fields_cannot_be_written(crm: SugarCrmConnector) -> None:
    rows = [{"name": "Deal", "contacts.email1": "x@example.org"}]
    batch = batch_of(crm, "Opportunities", rows)
    with pytest.raises(ConfigError, match="related Contacts record"):
        write_records(crm, "Opportunities", batch, WriteMode.INSERT)


def test_v10_bulk_replies_for_related_records(connect: Connect) -> None:
    crm = connect("v10")
    meta = crm.meta("Opportunities")
    reply = {"status": 200, "contents": {"records": [{"id": "c1", "email": []}]}}
    assert crm.api._first_related(meta, "contacts", reply) == {  # type: ignore[attr-defined]
        "id": "c1",
        "email": [],
        "email1": None,
    }
    gone = {"status": 404, "contents": {"error": "not_found"}}
    assert crm.api._first_related(meta, "contacts", gone) is None  # type: ignore[attr-defined]
    broken = {"status": 500, "contents": {"error_message": "boom"}}
    with pytest.raises(RemoteError, match="through 'contacts' failed \\(HTTP 500\\) boom"):
        crm.api._first_related(meta, "contacts", broken)  # type: ignore[attr-defined]


def test_v4_1_relationship_lists_with_and_without_the_v4_1_wrappers() -> None:
    from crmbridge.connectors.sugarcrm.v4_1 import _link_records

    record = {"email1": {"name": "email1", "value": "a@x.org"}, "id": {"name": "id", "value": "c1"}}
    wrapped = {"link_list": [{"name": "contacts", "records": [{"link_value": record}]}]}
    bare = [{"name": "contacts", "records": [record]}]
    expected = {"contacts": [{"email1": "a@x.org", "id": "c1"}]}
    assert _link_records(wrapped) == expected
    assert _link_records(bare) == expected
    assert _link_records(None) == {}
    assert _link_records([]) == {}
