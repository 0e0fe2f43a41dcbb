"""Deterministic demo books: the same ``customers`` number always gives the same objects.

For ``customers = N`` (see :func:`seed_counts`): 5 Accounts, 9 Items (one inactive), N
Customers (every tenth inactive, its name ending in " (deleted)"), two Invoices per active
customer with one to three lines, an Estimate for every third and a SalesReceipt for every
second active customer, a Payment for every third invoice (every other one of them partial),
and the last two invoices deleted. Objects are created one after the other over the 45 days
before the sandbox was first started, so the newest ones lie inside the 30-day window of
change data capture. The first customers carry awkward text (apostrophes, quotes, ``&``,
umlauts).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from crmbridge.sandbox.quickbooks.clock import Clock
from crmbridge.sandbox.quickbooks.company import Books
from crmbridge.sandbox.quickbooks.entities import ENTITIES
from crmbridge.sandbox.quickbooks.store import Store

SEED = 20240501
SPAN = dt.timedelta(days=45)
_SPECIAL = (
    "Amy's Bird Sanctuary",
    'Acme & Sons "Q"',
    "O'Brien Brothers Ltd",
    "Zürich Trading AG",
    "Müller & Søn GmbH",
    "Bill's Windsurf Shop",
)
_PREFIXES = (
    "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Wonka", "Tyrell", "Hooli",
    "Vandelay", "Oceanic", "Aperture", "Nakatomi", "Bluth", "Virtucon", "Zenith",
)  # fmt: skip
_SUFFIXES = ("Landscaping", "Pools", "Gardens", "Builders", "Cafe", "Dental", "Motors")
_FIRST = ("Amy", "Bill", "Dylan", "Emily", "Grace", "Jeff", "Kate", "Mark", "Nina", "Peter")
_LAST = ("Lauterbach", "Lucchini", "Sollman", "Platt", "Pariente", "Chin", "Reyes", "Keller")
_CITIES = (("Bayshore", "CA", "94326"), ("Half Moon Bay", "CA", "94213"), ("Sunnyvale", "CA",
           "94086"), ("Middlefield", "CA", "94303"), ("Tucson", "AZ", "85719"))  # fmt: skip
ACCOUNTS = (
    ("Services", "Income"),
    ("Sales of Product Income", "Income"),
    ("Undeposited Funds", "Other Current Asset"),
    ("Accounts Receivable (A/R)", "Accounts Receivable"),
    ("Checking", "Bank"),
)
ITEMS = (
    ("Hours", "Service", 75.0, 1),
    ("Design", "Service", 75.0, 1),
    ("Installation", "Service", 50.0, 1),
    ("Gardening", "Service", 25.0, 1),
    ("Pest Control", "Service", 35.0, 1),
    ("Rocks", "NonInventory", 22.5, 2),
    ("Sprinkler Heads", "NonInventory", 2.0, 2),
    ("Pump", "NonInventory", 15.0, 2),
    ("Old Service", "Service", 10.0, 1),
)


def seed_counts(customers: int) -> dict[str, int]:
    """Live objects per entity for a seed of ``customers`` (inactive list objects included)."""
    active = customers - customers // 10
    invoices = 2 * active
    return {
        "Account": len(ACCOUNTS),
        "Item": len(ITEMS),
        "Customer": customers,
        "Invoice": invoices - 2,
        "Estimate": len(range(0, active, 3)),
        "SalesReceipt": len(range(0, active, 2)),
        "Payment": len(range(0, invoices - 2, 3)),
    }


class _SeedClock(Clock):
    def __init__(self, start: dt.datetime) -> None:
        super().__init__()
        self.moment = start

    def now(self) -> dt.datetime:
        return self.moment


def seed(store: Store, now: dt.datetime, customers: int = 30) -> None:
    """Write the demo books into an empty store (then mark it seeded)."""
    rng = random.Random(SEED)
    total = 30 + customers * 4
    clock = _SeedClock((now - SPAN).replace(microsecond=0))
    step = SPAN / total
    books = Books(store, clock)

    def make(entity: str, body: dict[str, Any]) -> dict[str, Any]:
        clock.moment = (clock.moment + step).replace(microsecond=0)
        return books.create(ENTITIES[entity], body)

    def change(entity: str, body: dict[str, Any]) -> dict[str, Any]:
        clock.moment = (clock.moment + step).replace(microsecond=0)
        return books.update(ENTITIES[entity], {**body, "sparse": True})

    with store.transaction():
        accounts = [make("Account", {"Name": n, "AccountType": t}) for n, t in ACCOUNTS]
        items = []
        for name, kind, price, account in ITEMS:
            items.append(
                make(
                    "Item",
                    {
                        "Name": name,
                        "Type": kind,
                        "UnitPrice": price,
                        "Description": f"{name} ({kind.lower()})",
                        "IncomeAccountRef": {"value": accounts[account - 1]["Id"]},
                    },
                )
            )
        old = items[-1]
        change("Item", {"Id": old["Id"], "SyncToken": old["SyncToken"], "Active": False})
        live_items = items[:-1]
        people = []
        for n in range(customers):
            first, last = _FIRST[n % len(_FIRST)], _LAST[(n * 3) % len(_LAST)]
            if n < len(_SPECIAL):
                company = _SPECIAL[n]
            else:
                company = f"{_PREFIXES[n % len(_PREFIXES)]} {_SUFFIXES[n % len(_SUFFIXES)]}"
                if n >= len(_PREFIXES):
                    company += f" {n}"
            city, state, postal = _CITIES[n % len(_CITIES)]
            slug = "".join(c for c in company.lower() if c.isascii() and c.isalnum())[:20]
            person = make(
                "Customer",
                {
                    "DisplayName": company,
                    "CompanyName": company,
                    "GivenName": first,
                    "FamilyName": last,
                    "PrimaryEmailAddr": {"Address": f"{first.lower()}@{slug}.example.com"},
                    "PrimaryPhone": {"FreeFormNumber": f"(650) 555-{1000 + n:04d}"},
                    "BillAddr": {
                        "Line1": f"{100 + n * 7} Main Street",
                        "City": city,
                        "CountrySubDivisionCode": state,
                        "PostalCode": postal,
                        "Country": "USA",
                    },
                    "Notes": "Prefers e-mail" if n % 4 == 0 else None,
                },
            )
            if n % 10 == 9:
                change(
                    "Customer",
                    {"Id": person["Id"], "SyncToken": person["SyncToken"], "Active": False},
                )
            else:
                people.append(person)

        def lines() -> list[dict[str, Any]]:
            out = []
            for _ in range(rng.randint(1, 3)):
                item = rng.choice(live_items)
                qty = rng.randint(1, 12)
                out.append(
                    {
                        "Description": item["Description"],
                        "Amount": round(qty * item["UnitPrice"], 2),
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": item["Id"]},
                            "Qty": qty,
                            "UnitPrice": item["UnitPrice"],
                        },
                    }
                )
            return out

        invoices = []
        for n, person in enumerate(people):
            ref = {"value": person["Id"]}
            for _ in range(2):
                day = (clock.moment + step).date()
                invoices.append(
                    make(
                        "Invoice",
                        {
                            "CustomerRef": ref,
                            "Line": lines(),
                            "TxnDate": day.isoformat(),
                            "DueDate": (day + dt.timedelta(days=30)).isoformat(),
                        },
                    )
                )
            if n % 3 == 0:
                make("Estimate", {"CustomerRef": ref, "Line": lines()})
            if n % 2 == 0:
                make(
                    "SalesReceipt",
                    {
                        "CustomerRef": ref,
                        "Line": lines(),
                        "DepositToAccountRef": {"value": accounts[2]["Id"]},
                    },
                )
        for doomed in invoices[-2:]:
            clock.moment = (clock.moment + step).replace(microsecond=0)
            books.delete(ENTITIES["Invoice"], doomed)
        for n, invoice in enumerate(invoices[:-2]):
            if n % 3:
                continue
            amount = invoice["TotalAmt"] if n % 2 == 0 else round(invoice["TotalAmt"] / 2, 2)
            make(
                "Payment",
                {
                    "CustomerRef": {"value": invoice["CustomerRef"]["value"]},
                    "TotalAmt": amount,
                    "Line": [
                        {
                            "Amount": amount,
                            "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                        }
                    ],
                },
            )
        store.set_meta("seeded", now.isoformat())
