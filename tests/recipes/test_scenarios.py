"""The scenario profiles of examples/scenarios/, run end to end as their doc shows, against
the SugarCRM and Salesforce sandboxes (docs/recipes/scenarios.md)."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from python_calamine import CalamineWorkbook

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.base import ReadRequest
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import RunSummary, run_profile
from crmbridge.state import StateStore

SCENARIOS = Path(__file__).resolve().parents[2] / "examples" / "scenarios"

#: the CRM's names of what the tests look at
NAMES: dict[str, dict[str, str]] = {
    "sugarcrm": {
        "Opportunities": "Opportunities", "Accounts": "Accounts", "Contacts": "Contacts",
        "name": "name", "stage": "sales_stage", "amount": "amount", "closed": "date_closed",
        "account": "account_id", "email": "email1", "last": "last_name", "id": "id",
    },
    "salesforce": {
        "Opportunities": "Opportunity", "Accounts": "Account", "Contacts": "Contact",
        "name": "Name", "stage": "StageName", "amount": "Amount", "closed": "CloseDate",
        "account": "AccountId", "email": "Email", "last": "LastName", "id": "Id",
    },
}  # fmt: skip


@pytest.fixture(params=["sugarcrm", "salesforce"])
def crm(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue(request.param)  # the sandbox, saved as connection "crm"
    return str(request.param)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of examples/scenarios, as a user would make."""
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    return tmp_path / "scenarios"


@pytest.fixture
def scenario(folder: Path, crm: str, store: ConnectionStore, state: StateStore) -> Any:
    def run(name: str, **params: str) -> RunSummary:
        loaded = load_profile(folder / crm / name, params)
        summary = run_profile(loaded, connections=store, state=state)
        assert summary.error is None
        return summary

    return run


def read(store: ConnectionStore, crm: str, what: str, fields: list[str]) -> list[dict[str, Any]]:
    names = NAMES[crm]
    connector = store.get("crm").connector()
    connector.open()
    try:
        request = ReadRequest(names[what], fields=[names[f] for f in fields])
        rows = [r for batch in connector.read(request) for r in batch.to_pylist()]
    finally:
        connector.close()
    return [{f: r[names[f]] for f in fields} for r in rows]


def load(tmp_path: Path, store: ConnectionStore, state: StateStore, crm: str, rows: str) -> None:
    """Put opportunities into the CRM (a profile of the test's own)."""
    n = NAMES[crm]
    (tmp_path / "setup.csv").write_text(textwrap.dedent(rows).lstrip(), encoding="utf-8")
    (tmp_path / "setup.yaml").write_text(
        textwrap.dedent(f"""
        source:
          connection: {{type: csv, path: .}}
          object: setup.csv
          types: {{amount: decimal, closed: date}}
        target: {{connection: crm, object: {n["Opportunities"]}, mode: upsert,
                  match_keys: [{n["name"]}]}}
        mapping:
          {n["name"]}: name
          {n["stage"]}: stage
          {n["amount"]}: amount
          {n["closed"]}: closed
        """),
        encoding="utf-8",
    )
    summary = run_profile(load_profile(tmp_path / "setup.yaml"), connections=store, state=state)
    assert summary.error is None, summary.error


def test_closed_opportunities_of_last_month_go_to_excel(
    tmp_path: Path, folder: Path, crm: str, store: ConnectionStore, state: StateStore,
    scenario: Any,
) -> None:  # fmt: skip
    this_month = dt.date.today().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=3)
    load(tmp_path, store, state, crm, f"""
        name,stage,amount,closed
        Won last month,Closed Won,100.00,{last_month}
        Lost last month,Closed Lost,50.00,{last_month}
        Won this month,Closed Won,70.00,{this_month}
        Open last month,Prospecting,20.00,{last_month}
        """)  # fmt: skip
    summary = scenario("closed-opportunities-to-excel.yaml")
    book = CalamineWorkbook.from_path(str(folder / "out" / "closed-opportunities.xlsx"))
    sheet = book.get_sheet_by_name("Last month").to_python()
    assert sheet[0] == ["Opportunity", "Stage", "Amount", "Closed", "CRM id"]
    found = sorted((r[0], r[1]) for r in sheet[1:])
    assert ("Lost last month", "Closed Lost") in found
    assert ("Won last month", "Closed Won") in found
    assert all(name not in ("Won this month", "Open last month") for name, _ in found)
    assert summary.counts["created"] == len(found)
    seeded = [
        r for r in read(store, crm, "Opportunities", ["stage", "closed"])
        if r["stage"] in ("Closed Won", "Closed Lost") and r["closed"] is not None
        and (r["closed"].year, r["closed"].month) == (last_month.year, last_month.month)
    ]  # fmt: skip
    assert len(found) == len(seeded)


def test_accounts_whose_name_starts_with_a_go_to_csv(
    folder: Path, crm: str, store: ConnectionStore, scenario: Any
) -> None:
    scenario("online-customers-to-accounts.yaml")  # "Alder & Sons" among the accounts
    summary = scenario("accounts-a-to-csv.yaml")
    with (folder / "out" / "accounts-a.csv").open(encoding="utf-8") as f:
        names = [r[NAMES[crm]["name"]] for r in csv.DictReader(f)]
    assert "Alder & Sons" in names
    assert all(name.startswith("A") for name in names)
    every = [r["name"] for r in read(store, crm, "Accounts", ["name"])]
    assert sorted(names) == sorted(n for n in every if n and n.startswith("A"))
    assert summary.counts["created"] == len(names)


def test_branch_office_invoice_rows_go_to_the_crm_with_their_account(
    crm: str, store: ConnectionStore, scenario: Any
) -> None:
    first = scenario("invoices-to-crm.yaml")  # berlin, the default
    second = scenario("invoices-to-crm.yaml", branch="munich")
    assert first.counts["created"] == 2
    assert second.counts["created"] == 2
    again = scenario("invoices-to-crm.yaml", branch="munich")
    assert again.counts["unchanged"] == 2
    accounts = {r["id"]: r["name"] for r in read(store, crm, "Accounts", ["id", "name"])}
    invoices = {
        r["name"]: (accounts.get(r["account"]), r["stage"], float(r["amount"]))
        for r in read(store, crm, "Opportunities", ["name", "account", "stage", "amount"])
        if r["name"] and r["name"].startswith("Invoice ")
    }
    assert invoices == {
        "Invoice B-2024-017": ("Bright Lamps", "Closed Won", 1250.0),
        "Invoice B-2024-018": ("Spree Office Supplies", "Closed Won", 480.5),
        "Invoice M-2024-101": ("Isar Furniture", "Closed Won", 3200.0),
        "Invoice M-2024-102": ("Bright Lamps", "Closed Won", 99.9),
    }


def test_web_shop_orders_become_opportunities_with_their_account_and_contact(
    crm: str, store: ConnectionStore, scenario: Any
) -> None:
    if crm == "sugarcrm":
        customers = scenario("webshop-customers-to-crm.yaml")
        assert customers.counts["created"] == 2
    orders = scenario("webshop-orders-to-crm.yaml")
    assert orders.counts["created"] == 2
    assert orders.counts["filtered"] == 1  # the guest order without an e-mail address
    accounts = {r["id"]: r["name"] for r in read(store, crm, "Accounts", ["id", "name"])}
    contacts = read(store, crm, "Contacts", ["email", "account", "last"])
    by_email = {r["email"].lower(): r for r in contacts if r["email"]}
    assert by_email["ann.lee@brightlamps.example"]["last"] == "Lee"
    web = {
        r["name"]: accounts.get(r["account"])
        for r in read(store, crm, "Opportunities", ["name", "account"])
        if r["name"] and r["name"].startswith("Web order")
    }
    assert web == {"Web order W-1001": "Bright Lamps", "Web order W-1002": "Northwind Gifts"}
    assert scenario("webshop-orders-to-crm.yaml").counts["unchanged"] == 2


def test_customers_entered_online_become_accounts_with_their_contacts(
    crm: str, store: ConnectionStore, scenario: Any
) -> None:
    summary = scenario("online-customers-to-accounts.yaml")
    assert summary.counts["created"] == 2
    assert summary.counts["people.created"] == 3
    accounts = {r["id"]: r["name"] for r in read(store, crm, "Accounts", ["id", "name"])}
    people = {
        r["email"].lower(): accounts.get(r["account"])
        for r in read(store, crm, "Contacts", ["email", "account"])
        if r["email"] and r["email"].endswith((".example",))
        and accounts.get(r["account"]) in ("Alder & Sons", "Birch Digital")
    }  # fmt: skip
    assert people == {
        "jo@alder.example": "Alder & Sons",
        "sam@alder.example": "Alder & Sons",
        "lou@birch.example": "Birch Digital",
    }
    again = scenario("online-customers-to-accounts.yaml")
    assert again.counts["unchanged"] == 2
    assert again.counts["people.unchanged"] == 3
