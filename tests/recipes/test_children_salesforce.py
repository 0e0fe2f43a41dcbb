"""Child records in Salesforce: an account entered online with its people becomes an Account
and Contacts carrying its AccountId; a rerun finds them again instead of doubling them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from crmbridge.connections import ConnectionStore
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import run_profile
from crmbridge.sandbox.salesforce import SalesforceSandbox
from crmbridge.state import StateStore

SIGNUPS = [
    {"company": "Zeta Tools", "people": [{"last": "Lee", "email": "lee@zeta.example"},
                                          {"last": "Ng", "email": "ng@zeta.example"}]},
    {"company": "Ypsilon Labs", "people": [{"last": "Oz", "email": "oz@ypsilon.example"}]},
]  # fmt: skip

PROFILE = """
source:
  connection: {type: jsonl, path: .}
  object: signups.jsonl
  types: {people: [{last: string, email: string}]}
target: {connection: crm, object: Account, mode: upsert, match_keys: [Name]}
mapping: {Name: company}
children:
  - field: people
    object: Contact
    parent_key: AccountId
    match_keys: [Email]
    mapping: {LastName: last, Email: email}
"""


def test_an_accounts_people_become_contacts_with_its_account_id(
    tmp_path: Path, store: ConnectionStore, state: StateStore, salesforce: SalesforceSandbox
) -> None:
    (tmp_path / "signups.jsonl").write_text(
        "\n".join(json.dumps(s) for s in SIGNUPS) + "\n", encoding="utf-8"
    )
    (tmp_path / "p.yaml").write_text(textwrap.dedent(PROFILE), encoding="utf-8")
    first = run_profile(load_profile(tmp_path / "p.yaml"), connections=store, state=state)
    assert first.error is None
    assert first.counts["created"] == 2
    assert first.counts["people.created"] == 3
    found = salesforce.execute(
        "SELECT c.Email AS email, a.Name AS account FROM sobject_contact c JOIN sobject_account a "
        "ON c.AccountId = a.Id WHERE c.Email LIKE '%.example' ORDER BY c.Email"
    )
    assert [(r["email"], r["account"]) for r in found] == [
        ("lee@zeta.example", "Zeta Tools"),
        ("ng@zeta.example", "Zeta Tools"),
        ("oz@ypsilon.example", "Ypsilon Labs"),
    ]
    again = run_profile(load_profile(tmp_path / "p.yaml"), connections=store, state=state)
    assert again.counts["unchanged"] == 2
    assert again.counts["people.unchanged"] == 3
    rows = salesforce.execute(
        "SELECT count(*) AS n FROM sobject_contact WHERE Email LIKE '%.example'"
    )
    assert rows[0]["n"] == 3
