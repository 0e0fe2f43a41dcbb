"""A profile's `links` against the SugarCRM sandbox: records written, then related, then checked."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmbridge.connections import ConnectionStore
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import run_profile
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import StateStore


@pytest.fixture(params=["v4_1", "v10"])
def crm(request: pytest.FixtureRequest, store: ConnectionStore) -> Iterator[SugarSandbox]:
    sandbox = SugarSandbox(accounts=3)
    with sandbox.serve() as server:
        settings = {
            "url": server.url,
            "username": "admin",
            "password": "admin",
            "api": request.param,
        }
        store.add("crm", "sugarcrm", settings)
        yield sandbox
    sandbox.close()


def test_opportunities_are_linked_to_their_contact(
    tmp_path: Path, crm: SugarSandbox, store: ConnectionStore, state: StateStore
) -> None:
    contact = crm.execute(
        "SELECT c.id, ea.email_address FROM contacts c "
        "JOIN email_addr_bean_rel r ON r.bean_id = c.id AND r.deleted = 0 "
        "JOIN email_addresses ea ON ea.id = r.email_address_id WHERE c.deleted = 0 LIMIT 1"
    )[0]
    (tmp_path / "deals.csv").write_text(
        "deal,amount,contact_email\n"
        f"Big deal,5000,{contact['email_address']}\n"
        "Lost deal,10,nobody@example.invalid\n",
        encoding="utf-8",
    )
    (tmp_path / "p.yaml").write_text(
        textwrap.dedent("""
        source: {connection: {type: csv, path: .}, object: deals.csv}
        target: {connection: crm, object: Opportunities, mode: upsert, match_keys: [name]}
        mapping: {name: deal, amount: "cast(amount AS DECIMAL(12,2))"}
        constants: {sales_stage: Prospecting, date_closed: "2026-12-31"}
        links:
          - link: contacts
            object: Contacts
            match: {email1: contact_email}
            missing: reject
        """),
        encoding="utf-8",
    )
    summary = run_profile(
        load_profile(tmp_path / "p.yaml"),
        connections=store,
        state=state,
        output_dir=tmp_path / "run",
    )
    assert (summary.counts["created"], summary.counts["rejected"]) == (1, 1)
    errors = (tmp_path / "run/error.csv").read_text(encoding="utf-8")
    assert "but no Contacts record was found to link through 'contacts'" in errors
    deals = {
        r["name"]: r["id"]
        for r in crm.execute("SELECT id, name FROM opportunities WHERE deleted = 0")
    }
    linked = crm.execute(
        "SELECT contact_id FROM opportunities_contacts WHERE opportunity_id = ? AND deleted = 0",
        (deals["Big deal"],),
    )
    assert [r["contact_id"] for r in linked] == [contact["id"]]
