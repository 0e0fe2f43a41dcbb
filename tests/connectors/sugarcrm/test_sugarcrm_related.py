"""Related records: links verified by reading them back, find-or-create, notes on a parent."""

from __future__ import annotations

import pytest
from sugarcrm_helpers import batch_of, read_all

from crmbridge.connectors.base import WriteRequest
from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.expressions import parse
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError, RecordError
from crmbridge.sandbox.sugarcrm import SugarSandbox

GHOST = "99999999-9999-4999-8999-999999999999"


def test_link_reports_which_links_really_exist(crm: SugarCrmConnector) -> None:
    account = read_all(crm, "Accounts", fields=["id"])[0]["id"]
    contacts = [r["id"] for r in read_all(crm, "Contacts", fields=["id"])[:2]]
    result = crm.link("Accounts", account, "contacts", [*contacts, GHOST])
    assert result == {contacts[0]: True, contacts[1]: True, GHOST: False}
    linked = crm.api.linked("Accounts", account, "contacts", contacts)
    assert linked == set(contacts)


def test_link_names_are_checked(crm: SugarCrmConnector) -> None:
    assert crm.links("Accounts")["contacts"] == "Contacts"
    with pytest.raises(ConfigError, match="unknown link 'contact'; did you mean 'contacts'"):
        crm.link("Accounts", "x", "contact", ["y"])


def test_find_or_create_finds_creates_and_remembers(
    crm: SugarCrmConnector, sandbox: SugarSandbox
) -> None:
    existing = read_all(crm, "Accounts", fields=["id", "name"])[0]
    assert crm.find_or_create("Accounts", "name", existing["name"]) == (existing["id"], False)
    new_id, created = crm.find_or_create("Accounts", "name", "Brand New Ltd", {"industry": "Media"})
    assert created
    rows = read_all(
        crm,
        "Accounts",
        fields=["name", "industry"],
        filter=parse(f"id = '{new_id}'", what="filter"),
    )
    assert rows == [{"name": "Brand New Ltd", "industry": "Media"}]
    sandbox.faults.reset()
    assert crm.find_or_create("Accounts", "name", "Brand New Ltd") == (new_id, False)
    assert sandbox.faults.calls == 0, "answered from the connection's memory"


def test_find_or_create_refuses_to_guess_between_several(crm: SugarCrmConnector) -> None:
    twins = [{"name": "Twin Corp"}, {"name": "Twin Corp"}]
    crm.write(WriteRequest("Accounts", batch_of(crm, "Accounts", twins), WriteMode.INSERT))
    with pytest.raises(RecordError, match="2 Accounts match name 'Twin Corp': ids "):
        crm.find_or_create("Accounts", "name", "Twin Corp")


def test_notes_attach_to_any_parent_with_a_normal_write(crm: SugarCrmConnector) -> None:
    account = read_all(crm, "Accounts", fields=["id"])[0]["id"]
    note = {
        "name": "Called",
        "description": "Left a message",
        "parent_type": "Accounts",
        "parent_id": account,
    }
    result = crm.write(WriteRequest("Notes", batch_of(crm, "Notes", [note]), WriteMode.INSERT))
    assert result.outcome.to_pylist() == ["created"]
    rows = read_all(
        crm,
        "Notes",
        fields=list(note),
        filter=parse(f"parent_id = '{account}' AND name = 'Called'", what="filter"),
    )
    assert rows == [note]
