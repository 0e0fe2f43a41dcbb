"""Related records: links verified by reading them back, notes on a parent."""

from __future__ import annotations

import pytest
from sugarcrm_helpers import batch_of, read_all

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.expressions import parse
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError
from crmbridge.testing.writes import write_records

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


def test_notes_attach_to_any_parent_with_a_normal_write(crm: SugarCrmConnector) -> None:
    account = read_all(crm, "Accounts", fields=["id"])[0]["id"]
    note = {
        "name": "Called",
        "description": "Left a message",
        "parent_type": "Accounts",
        "parent_id": account,
    }
    result = write_records(crm, "Notes", batch_of(crm, "Notes", [note]), WriteMode.INSERT)
    assert result.outcome.to_pylist() == ["created"]
    rows = read_all(
        crm,
        "Notes",
        fields=list(note),
        filter=parse(f"parent_id = '{account}' AND name = 'Called'", what="filter"),
    )
    assert rows == [note]
