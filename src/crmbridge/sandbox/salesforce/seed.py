"""Deterministic demo data: the same ``accounts`` number gives the same rows and ids.

For ``accounts = N``: N Accounts (``Ext_Id__c`` ``ACC-00001`` ...), 2N Contacts (two per
account, ``Ext_Id__c`` ``CON-00001`` ...), 2N Leads (``Web_Id__c`` ``WEB-00001`` ...,
``Score__c`` 0-100), N + N // 2 Opportunities (``Ext_Id__c`` ``OPP-00001`` ...), and N // 20
soft-deleted Accounts and Contacts each (seen only through ``queryAll``). Records are written in
groups of seven that share one ``SystemModstamp`` second, starting 2024-01-02 09:00:00 UTC.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from crmbridge.sandbox.salesforce.objects import (
    ACCOUNT,
    ACCOUNT_TYPES,
    CONTACT,
    INDUSTRIES,
    LEAD,
    LEAD_SOURCES,
    LEAD_STATUSES,
    OPPORTUNITY,
    STAGES,
    USER,
    ObjectDef,
)
from crmbridge.sandbox.salesforce.store import Store
from crmbridge.sandbox.salesforce.values import stamp

START = dt.datetime(2024, 1, 2, 9, 0, 0, tzinfo=dt.UTC)
AWKWARD = ['Acme & Sons "Q"', "O'Brien Brothers Ltd", "Zürich Trading AG", "Müller & Søn GmbH"]
_COMPANIES = ["Northwind", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Tyrell",
              "Cyberdyne", "Soylent", "Hooli", "Vandelay", "Wonka", "Gringotts", "Oscorp",
              "Aperture"]  # fmt: skip
_SUFFIXES = ["Inc", "Ltd", "GmbH", "LLC", "SA", "Group", "Holdings"]
_FIRST = ["Anna", "Ben", "Chloé", "David", "Eva", "Farid", "Greta", "Hiro", "Ines", "Jonas",
          "Kira", "Liam", "Maja", "Noah", "Olga", "Paul"]  # fmt: skip
_LAST = ["Smith", "Müller", "García", "Rossi", "Nowak", "Dubois", "Jensen", "Silva", "Kim",
         "O'Neil", "Schmidt", "Novak", "Berg", "Costa"]  # fmt: skip
_CITIES = [("Berlin", "Germany"), ("Paris", "France"), ("New York", "United States"),
           ("London", "United Kingdom"), ("Zürich", "Switzerland"),
           ("Madrid", "Spain")]  # fmt: skip


def seed_counts(accounts: int = 40) -> dict[str, tuple[int, int]]:
    """object -> (live rows, soft-deleted rows) that :func:`seed` writes."""
    deleted = accounts // 20
    return {
        "Account": (accounts, deleted),
        "Contact": (2 * accounts, deleted),
        "Lead": (2 * accounts, 0),
        "Opportunity": (accounts + accounts // 2, 0),
        "User": (1, 0),
    }


class _Writer:
    def __init__(self, store: Store, user_id: str) -> None:
        self.store = store
        self.user_id = user_id
        self.count = 0

    def add(self, odef: ObjectDef, values: dict[str, Any], *, deleted: bool = False) -> str:
        when = stamp(START + dt.timedelta(minutes=self.count // 7))
        self.count += 1
        record_id = self.store.new_id(odef)
        row: dict[str, Any] = {f.name: None for f in odef.fields}
        row.update(
            Id=record_id, IsDeleted=int(deleted), OwnerId=self.user_id, CreatedDate=when,
            CreatedById=self.user_id, LastModifiedDate=when, LastModifiedById=self.user_id,
            SystemModstamp=when,
        )  # fmt: skip
        row.update(values)
        if odef.field("Name") and odef.field("Name").calculated:  # type: ignore[union-attr]
            row["Name"] = " ".join(p for p in (row.get("FirstName"), row.get("LastName")) if p)
        self.store.insert(odef, {k: v for k, v in row.items() if odef.field(k)})
        return record_id


def ensure_user(store: Store, username: str) -> str:
    """The id of the sandbox user ``username`` (created when missing)."""
    found = store.user_by_name(username)
    if found:
        return found
    user_id = store.new_id(USER)
    now = store.now()
    store.insert(
        USER,
        {
            "Id": user_id, "IsDeleted": 0, "Username": username, "LastName": username.split("@")[0],
            "Name": username.split("@")[0], "Email": username if "@" in username else None,
            "IsActive": 1, "TimeZoneSidKey": "GMT", "CreatedDate": now, "CreatedById": user_id,
            "LastModifiedDate": now, "LastModifiedById": user_id, "SystemModstamp": now,
        },
    )  # fmt: skip
    store.execute(
        "INSERT INTO sandbox_users (username, password, user_id) VALUES (?, '', ?)",
        (username, user_id),
    )
    return user_id


def seed(store: Store, accounts: int, user_id: str) -> None:
    """Write the demo data (once; the store remembers that it is seeded)."""
    rng = random.Random(20240102)
    w = _Writer(store, user_id)
    with store.transaction():
        account_ids = [_account(w, rng, n) for n in range(accounts)]
        for n in range(accounts // 20):
            w.add(ACCOUNT, {"Name": f"Deleted Account {n + 1}"}, deleted=True)
        contact_ids: list[str] = []
        for n in range(2 * accounts):
            contact_ids.append(_contact(w, rng, n, account_ids[n // 2]))
        for n in range(accounts // 20):
            w.add(
                CONTACT, {"LastName": f"Deleted{n + 1}", "AccountId": account_ids[n]}, deleted=True
            )
        for n in range(2 * accounts):
            _lead(w, rng, n)
        for n in range(accounts + accounts // 2):
            account = n % accounts
            _opportunity(w, rng, n, account_ids[account], contact_ids[2 * account])
        store.set_meta("seeded", str(accounts))


def _account(w: _Writer, rng: random.Random, n: int) -> str:
    if n < len(AWKWARD):
        name = AWKWARD[n]
    else:
        name = f"{rng.choice(_COMPANIES)} {rng.choice(_SUFFIXES)} {n + 1}"
    city, country = rng.choice(_CITIES)
    return w.add(
        ACCOUNT,
        {
            "Name": name,
            "Type": ACCOUNT_TYPES[n % len(ACCOUNT_TYPES)],
            "Industry": rng.choice(INDUSTRIES) if n % 5 else None,
            "BillingStreet": f"{n + 1} Main Street",
            "BillingCity": city,
            "BillingPostalCode": f"{10000 + n * 7}",
            "BillingCountry": country,
            "Phone": f"+1 555 {1000 + n:04d}",
            "Website": f"https://www.example{n + 1}.com",
            "AnnualRevenue": float(rng.randrange(1, 500) * 100_000) if n % 3 else None,
            "NumberOfEmployees": rng.randrange(1, 5000) if n % 4 else None,
            "Description": "Key account\nsecond line" if n == 0 else None,
            "Ext_Id__c": f"ACC-{n + 1:05d}",
        },
    )


def _contact(w: _Writer, rng: random.Random, n: int, account_id: str) -> str:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country = rng.choice(_CITIES)
    return w.add(
        CONTACT,
        {
            "AccountId": account_id,
            "FirstName": first,
            "LastName": last,
            "Salutation": "Dr." if n % 9 == 0 else None,
            "Title": "Buyer" if n % 2 else "CFO",
            "Email": f"{first.lower()}.{n + 1}@example.com".replace("é", "e"),
            "Phone": f"+44 20 7946 {n:04d}",
            "MailingCity": city,
            "MailingCountry": country,
            "Birthdate": (dt.date(1970, 1, 1) + dt.timedelta(days=n * 211)).isoformat(),
            "HasOptedOutOfEmail": int(n % 7 == 0),
            "LeadSource": LEAD_SOURCES[n % len(LEAD_SOURCES)],
            "Ext_Id__c": f"CON-{n + 1:05d}",
        },
    )


def _lead(w: _Writer, rng: random.Random, n: int) -> None:
    city, country = rng.choice(_CITIES)
    w.add(
        LEAD,
        {
            "FirstName": rng.choice(_FIRST),
            "LastName": rng.choice(_LAST),
            "Company": f"{rng.choice(_COMPANIES)} Prospect {n + 1}",
            "Email": f"lead{n + 1}@prospects.example.org",
            "City": city,
            "Country": country,
            "Status": LEAD_STATUSES[n % 2],
            "LeadSource": LEAD_SOURCES[n % len(LEAD_SOURCES)],
            "Rating": ("Hot", "Warm", "Cold")[n % 3],
            "IsConverted": 0,
            "Web_Id__c": f"WEB-{n + 1:05d}",
            "Score__c": float(rng.randrange(0, 101)),
        },
    )


def _opportunity(w: _Writer, rng: random.Random, n: int, account_id: str, contact_id: str) -> None:
    stage = list(STAGES)[n % len(STAGES)]
    w.add(
        OPPORTUNITY,
        {
            "AccountId": account_id,
            "ContactId": contact_id,
            "Name": f"Deal {n + 1}",
            "StageName": stage,
            "Amount": round(rng.randrange(100, 100_000) + rng.randrange(0, 100) / 100, 2),
            "Probability": float(STAGES[stage]),
            "CloseDate": (dt.date(2024, 1, 15) + dt.timedelta(days=n * 5)).isoformat(),
            "Type": "New Customer" if n % 2 else "Existing Customer - Upgrade",
            "LeadSource": LEAD_SOURCES[n % len(LEAD_SOURCES)],
            "IsClosed": int(stage.startswith("Closed")),
            "IsWon": int(stage == "Closed Won"),
            "Ext_Id__c": f"OPP-{n + 1:05d}",
        },
    )
