"""The QuickBooks recipes end to end: the example profiles of examples/quickbooks, run as a
user runs them (saved connections, ``run_profile``), against the SugarCRM sandbox as the CRM
and the QuickBooks sandbox, each on a real port."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.quickbooks import QuickBooksConnector
from crmbridge.connectors.quickbooks.operations import Operation
from crmbridge.profiles.loader import load_profile
from crmbridge.runner import RunSummary, run_profile
from crmbridge.sandbox.quickbooks import QuickBooksSandbox
from crmbridge.sandbox.salesforce import DEFAULT_USER, SalesforceSandbox
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.state import RunStatus, StateStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickbooks"
ACCOUNTS, SALESFORCE_ACCOUNTS, WON, INVOICES, DESKTOP_ACCOUNTS, DESKTOP_WON = (
    "accounts-to-customers.yaml",
    "accounts-to-customers-salesforce.yaml",
    "won-opportunities-to-sales-receipts.yaml",
    "invoices-to-opportunities.yaml",
    "desktop-accounts-to-iif.yaml",
    "desktop-won-opportunities-to-iif.yaml",
)


class Books:
    """The copied examples, the CRM, the QuickBooks company, and a way to run them."""

    def __init__(
        self,
        folder: Path,
        crm: SugarSandbox,
        books: QuickBooksSandbox,
        store: ConnectionStore,
        state: StateStore,
    ) -> None:
        self.folder, self.crm, self.books, self.store, self.state = folder, crm, books, store, state

    def run(self, profile: str, **params: str) -> RunSummary:
        summary = run_profile(
            load_profile(self.folder / profile, params), connections=self.store, state=self.state
        )
        assert summary.status is RunStatus.SUCCEEDED, summary.error
        return summary

    def customers(self) -> dict[str, dict[str, Any]]:
        docs = self.books.execute(
            "SELECT doc FROM objects WHERE entity = 'Customer' AND deleted = 0"
        )
        found = [json.loads(d["doc"]) for d in docs]
        return {c["DisplayName"]: c for c in found}

    def documents(self, entity: str) -> list[dict[str, Any]]:
        rows = self.books.execute(
            "SELECT doc FROM objects WHERE entity = ? AND deleted = 0 ORDER BY id", (entity,)
        )
        return [json.loads(r["doc"]) for r in rows]

    def connector(self) -> QuickBooksConnector:
        made = self.store.get("books").connector()
        assert isinstance(made, QuickBooksConnector)
        return made


@pytest.fixture
def recipe(tmp_path: Path, store: ConnectionStore, state: StateStore) -> Iterator[Books]:
    folder = tmp_path / "quickbooks"
    shutil.copytree(EXAMPLE, folder)
    crm = SugarSandbox(accounts=2)
    books = QuickBooksSandbox(customers=10)
    with crm.serve() as crm_server, books.serve() as books_server:
        store.add(
            "crm", "sugarcrm", {"url": crm_server.url, "username": "admin", "password": "admin"}
        )
        store.add(
            "books",
            "quickbooks",
            {
                "realm_id": books.realm_id,
                "client_id": books.client_id,
                "client_secret": books.client_secret,
                "refresh_token": books.issue_refresh_token(),
                "api_url": books_server.url,
                "token_url": f"{books_server.url}/oauth2/v1/tokens/bearer",
            },
        )
        yield Books(folder, crm, books, store, state)
    crm.close()
    books.close()


def test_the_rotated_refresh_token_is_saved_with_the_connection(recipe: Books) -> None:
    before = recipe.store.get("books").settings.refresh_token  # type: ignore[attr-defined]
    with recipe.connector() as qb:
        qb.check()
    after = recipe.store.get("books").settings.refresh_token  # type: ignore[attr-defined]
    assert after.get_secret_value() != before.get_secret_value()
    with recipe.connector() as qb:  # the next run logs in with the saved one
        assert qb.check().system == "QuickBooks Online"


def test_accounts_become_customers_found_by_name_or_created(recipe: Books) -> None:
    assert 'Acme & Sons "Q"' in recipe.customers()  # the company has it already
    recipe.crm.execute("UPDATE accounts SET name = 'Newco Ventures' WHERE name LIKE 'O''Brien%'")
    first = recipe.run(ACCOUNTS)
    assert (first.counts["updated"], first.counts["created"]) == (1, 1)
    customers = recipe.customers()
    acme, newco = customers['Acme & Sons "Q"'], customers["Newco Ventures"]
    assert acme["SyncToken"] == "1"  # sparse: what the seed had stays
    assert acme["PrimaryEmailAddr"]["Address"] == "info@acmesonsq.example.com"
    assert newco["BillAddr"]["City"] == "San Francisco"
    assert newco["PrimaryPhone"]["FreeFormNumber"] == "+1 555 2001"
    assert newco["CompanyName"] == "Newco Ventures"
    assert acme["BillAddr"] == {
        "Line1": "100 Main Street", "City": "New York", "CountrySubDivisionCode": "NY",
        "PostalCode": "10000", "Country": "USA",
    }  # fmt: skip
    again = recipe.run(ACCOUNTS)
    assert again.counts["unchanged"] == 2
    assert recipe.customers()['Acme & Sons "Q"']["SyncToken"] == "1"


def _win(recipe: Books, account: str) -> list[dict[str, Any]]:
    """Mark the CRM opportunities of ``account`` won; their rows."""
    rows = recipe.crm.execute(
        "SELECT o.id, o.name, o.amount FROM opportunities o "
        "JOIN accounts_opportunities ao ON ao.opportunity_id = o.id AND ao.deleted = 0 "
        "JOIN accounts a ON a.id = ao.account_id WHERE a.name = ? AND o.deleted = 0",
        (account,),
    )
    for row in rows:
        recipe.crm.execute(
            "UPDATE opportunities SET sales_stage = 'Closed Won' WHERE id = ?", (row["id"],)
        )
    return rows


def test_won_opportunities_become_sales_receipts_of_their_account_found_or_created(
    recipe: Books,
) -> None:
    recipe.crm.execute("UPDATE accounts SET name = 'Newco Ventures' WHERE name LIKE 'O''Brien%'")
    won = _win(recipe, "Newco Ventures") + _win(recipe, 'Acme & Sons "Q"')
    assert len(won) >= 2
    before = len(recipe.documents("SalesReceipt"))
    summary = recipe.run(WON)
    assert summary.counts["created"] == len(won)
    customers = recipe.customers()
    assert "Newco Ventures" in customers  # created first, as the receipt's customer
    receipts = {d["DocNumber"]: d for d in recipe.documents("SalesReceipt")[before:]}
    for opportunity in won:
        receipt = receipts[f"CRM-{opportunity['id'][:8].upper()}"]
        assert receipt["TotalAmt"] == pytest.approx(float(opportunity["amount"]))
        assert receipt["PrivateNote"].startswith(f"CRM opportunity {opportunity['id']}")
        line = receipt["Line"][0]
        assert line["SalesItemLineDetail"]["ItemRef"] == {"value": "1", "name": "Hours"}
    acme_id = customers['Acme & Sons "Q"']["Id"]
    assert any(r["CustomerRef"]["value"] == acme_id for r in receipts.values())
    again = recipe.run(WON)
    assert again.counts["unchanged"] == len(won)
    assert len(recipe.documents("SalesReceipt")) == before + len(won)


def test_paid_invoices_close_their_opportunities(recipe: Books) -> None:
    opportunities = recipe.crm.execute(
        "SELECT id, name FROM opportunities WHERE deleted = 0 ORDER BY name LIMIT 3"
    )
    customer = recipe.customers()['Acme & Sons "Q"']["Id"]
    with recipe.connector() as qb:
        made = qb.operations("Invoice").apply(
            [
                Operation(
                    "create",
                    {
                        "DocNumber": f"INV-{n}",
                        "CustomerRef_value": customer,
                        "PrivateNote": f"CRM opportunity {o['id']}",
                        "Line": '[{"Amount": 500, "SalesItemLineDetail": {"ItemRef": '
                        '{"value": "1"}}}]',
                    },
                )
                for n, o in enumerate(opportunities)
            ]
        )
        assert all(r.ok for r in made)
        payments = qb.operations("Payment").apply(
            [
                Operation(
                    "create",
                    {
                        "CustomerRef_value": customer,
                        "TotalAmt": 500,
                        "Line": [
                            {"Amount": 500, "LinkedTxn": [{"TxnId": r.id, "TxnType": "Invoice"}]}
                        ],
                    },
                )
                for r in made[:2]  # the third stays open
            ]
        )
        assert all(p.ok for p in payments)
    first = recipe.run(INVOICES)
    assert first.counts["updated"] == 2
    stages = {
        r["id"]: r
        for r in recipe.crm.execute(
            "SELECT id, sales_stage, amount, next_step FROM opportunities WHERE id IN (?, ?, ?)",
            tuple(o["id"] for o in opportunities),
        )
    }
    paid, open_one = opportunities[:2], opportunities[2]
    for n, o in enumerate(paid):
        assert stages[o["id"]]["sales_stage"] == "Closed Won"
        assert float(stages[o["id"]]["amount"]) == 500.0
        assert stages[o["id"]]["next_step"] == f"Paid: invoice INV-{n}"
    assert stages[open_one["id"]]["sales_stage"] != "Closed Won"
    again = recipe.run(INVOICES)  # incremental: nothing changed since
    assert again.counts.get("updated", 0) == 0


def test_salesforce_accounts_become_customers(recipe: Books, tmp_path: Path) -> None:
    sandbox = SalesforceSandbox(accounts=4, tls_dir=tmp_path / "tls")
    with sandbox.serve() as server:
        recipe.store.add(
            "org",
            "salesforce",
            {
                "login_url": server.url,
                "client_id": sandbox.consumer_key,
                "client_secret": sandbox.consumer_secret,
                "username": DEFAULT_USER,
                "password": "admin",
                "ca_file": str(sandbox.ca_file),
            },
        )
        first = recipe.run(SALESFORCE_ACCOUNTS)
        assert first.counts["created"] + first.counts["updated"] == 4
        again = recipe.run(SALESFORCE_ACCOUNTS)
        assert again.counts["unchanged"] == 4
    sandbox.close()
    customers = recipe.customers()
    phones = {n: c.get("PrimaryPhone", {}).get("FreeFormNumber", "") for n, c in customers.items()}
    named = [customers[n] for n, phone in phones.items() if phone.startswith("+1 555 1")]
    assert len(named) == 4
    assert all(c["BillAddr"]["Line1"].endswith("Main Street") for c in named)


def _iif(path: Path) -> list[list[str]]:
    """The rows of an IIF file, parsed on their own: tab-separated, CRLF, Windows-1252."""
    text = path.read_bytes().decode("cp1252")
    assert text.endswith("\r\n")
    return [row.split("\t") for row in text[:-2].split("\r\n")]


def test_desktop_customers_and_cash_sales_as_iif_files(recipe: Books) -> None:
    won = _win(recipe, 'Acme & Sons "Q"') + _win(recipe, "O'Brien Brothers Ltd")
    assert won
    customers = recipe.run(DESKTOP_ACCOUNTS)
    assert customers.counts["created"] == 2
    rows = _iif(recipe.folder / "desktop" / "customers.iif")
    header = rows[0]
    assert header[0] == "!CUST"
    by_name = {r[header.index("NAME")]: dict(zip(header[1:], r[1:], strict=True)) for r in rows[1:]}
    assert set(by_name) == {'Acme & Sons "Q"', "O'Brien Brothers Ltd"}
    assert by_name["O'Brien Brothers Ltd"]["BADDR3"] == "San Francisco, CA 10007"
    sales = recipe.run(DESKTOP_WON)
    assert sales.counts["created"] == len(won)
    rows = _iif(recipe.folder / "desktop" / "sales_receipts.iif")
    assert [r[0] for r in rows[:3]] == ["!TRNS", "!SPL", "!ENDTRNS"]
    trns_head, spl_head = rows[0][1:], rows[1][1:]
    body = rows[3:]
    assert [r[0] for r in body] == ["TRNS", "SPL", "ENDTRNS"] * len(won)
    amounts = {}
    for start in range(0, len(body), 3):
        trns = dict(zip(trns_head, body[start][1:], strict=True))
        spl = dict(zip(spl_head, body[start + 1][1:], strict=True))
        assert trns["TRNSTYPE"] == spl["TRNSTYPE"] == "CASH SALE"
        assert trns["ACCNT"] == "Undeposited Funds"
        assert (spl["ACCNT"], spl["INVITEM"]) == ("Services", "Services")
        assert Decimal(trns["AMOUNT"]) + Decimal(spl["AMOUNT"]) == 0  # it balances
        amounts[trns["DOCNUM"]] = Decimal(trns["AMOUNT"])
    assert amounts == {
        f"CRM-{o['id'][:7].upper()}": Decimal(o["amount"]).quantize(Decimal("0.01")) for o in won
    }


def test_a_run_whose_batch_answers_are_lost_ends_with_exact_counts(recipe: Books) -> None:
    """Each lost answer outlasts the connector's one retry: the engine repeats the batch, with
    the same requestids, and QuickBooks answers it without applying it again."""
    settings = recipe.store.get("books").settings.model_copy(update={"retries": 1})
    recipe.store.add("books", "quickbooks", settings.model_dump(), replace=True)
    names = "".join(f"Lost Answer {n:02}\n" for n in range(70))
    (recipe.folder / "names.csv").write_text("name\n" + names, encoding="utf-8")
    (recipe.folder / "names.yaml").write_text(
        "source: {connection: {type: csv, path: .}, object: names.csv}\n"
        "target: {connection: books, object: Customer, mode: upsert, match_keys: [DisplayName]}\n"
        "mapping: {DisplayName: name}\n",
        encoding="utf-8",
    )
    recipe.books.faults.reset()
    recipe.books.faults.lose_answer_next(4, only="POST /batch")
    summary = recipe.run("names.yaml")
    assert recipe.books.faults.call_counts()["POST /batch"] == 3 + 4  # 70 in 3, 4 answers lost
    assert {k: v for k, v in summary.counts.items() if v} == {"created": 70}
    made = [n for n in recipe.customers() if n.startswith("Lost Answer")]
    assert len(made) == 70


def test_a_dry_run_of_the_won_opportunities_plans_what_the_run_does(recipe: Books) -> None:
    recipe.crm.execute("UPDATE accounts SET name = 'Newco Ventures' WHERE name LIKE 'O''Brien%'")
    won = _win(recipe, "Newco Ventures") + _win(recipe, 'Acme & Sons "Q"')
    dry = run_profile(
        load_profile(recipe.folder / WON), connections=recipe.store, state=recipe.state,
        dry_run=True,
    )  # fmt: skip
    assert dry.status is RunStatus.DRY_RUN, dry.error
    assert "Newco Ventures" not in recipe.customers()  # nothing written
    real = recipe.run(WON)
    assert {k: v for k, v in dry.counts.items() if v} == {k: v for k, v in real.counts.items() if v}
    assert real.counts["created"] == len(won)
