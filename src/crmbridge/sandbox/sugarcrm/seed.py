"""Deterministic demo data: the same ``accounts`` number always gives the same rows and ids.

For ``accounts = N`` the seed writes (see :func:`seed_counts`)

* Accounts: N live, plus N // 20 soft-deleted;
* Contacts: 2 per account (2N), linked through ``accounts_contacts``, plus N // 20 deleted;
* Leads: 2N, with ``external_id_c`` ``WEB-00001``... and a ``lead_score_c`` where these
  Studio fields exist (Contacts get ``external_id_c`` ``ERP-...`` likewise);
* Opportunities: N + N // 2, each linked to an account (and its first contact);
* Notes: N, attached to accounts (``parent_type`` Accounts), half naming a contact.

Every account, contact, lead and user has a primary e-mail address; every fifth contact has
a second one, every seventh contact has opted out. Rows are written in batches of seven that
share one ``date_modified`` second. The first accounts carry the awkward characters real data
has (``&``, quotes, an apostrophe, umlauts).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from crmbridge.sandbox.sugarcrm.context import md5_hex
from crmbridge.sandbox.sugarcrm.store import Store
from crmbridge.sandbox.sugarcrm.vardefs import DROPDOWNS

SEED = 20240501
_BASE = datetime(2024, 1, 2, 8, 0, 0)
_DEMO_USERS = ("sally", "max", "will", "sarah", "chris", "jim")
_SPECIAL_ACCOUNTS = (
    'Acme & Sons "Q"',
    "O'Brien Brothers Ltd",
    "Zürich Trading AG",
    "Müller & Søn GmbH",
)
_PREFIXES = (
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Gringotts",
    "Oceanic",
    "Monarch",
    "Aperture",
    "Nakatomi",
    "Gekko",
    "Bluth",
    "Prestige",
    "Oscorp",
    "Virtucon",
    "Krusty",
    "Duff",
    "Sirius",
    "Ajax",
    "Zenith",
    "Apex",
    "Nimbus",
    "Quantum",
    "Vertex",
)
_MIDDLES = (
    "Industries",
    "Logistics",
    "Software",
    "Foods",
    "Energy",
    "Systems",
    "Media",
    "Consulting",
    "Pharma",
    "Textiles",
    "Motors",
    "Mining",
    "Airlines",
    "Foundry",
    "Labs",
    "Robotics",
    "Finance",
    "Retail",
    "Optics",
    "Marine",
)
_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Corp", "Group", "Holdings", "AG", "S.A.", "plc")
_FIRST = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Chloé",
    "Renée",
    "José",
    "Zoë",
    "Björn",
    "Ana",
    "Mei",
    "Yusuf",
    "Priya",
    "Olga",
    "Pierre",
    "Aoife",
)
_LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernández",
    "O'Neil",
    "Nguyen",
    "Müller",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Svensson",
    "Tanaka",
    "Okafor",
    "Fitzgerald",
    "Novak",
    "Jensen",
    "Schmidt",
    "Costa",
)
_CITIES = (
    ("New York", "NY", "USA"),
    ("San Francisco", "CA", "USA"),
    ("Chicago", "IL", "USA"),
    ("Austin", "TX", "USA"),
    ("London", "", "United Kingdom"),
    ("Berlin", "", "Germany"),
    ("Zürich", "ZH", "Switzerland"),
    ("Paris", "", "France"),
)


def seed_counts(accounts: int) -> dict[str, tuple[int, int]]:
    """(live, deleted) rows per module that :func:`seed` writes for ``accounts``."""
    extra = accounts // 20
    return {
        "Accounts": (accounts, extra),
        "Contacts": (2 * accounts, extra),
        "Leads": (2 * accounts, 0),
        "Opportunities": (accounts + accounts // 2, 0),
        "Notes": (accounts, 0),
    }


def user_id_for(user_name: str) -> str:
    """The id of a seeded user: ``1`` for admin, ``seed_<name>_id`` otherwise (as Sugar's demo)."""
    return "1" if user_name == "admin" else f"seed_{user_name}_id"


def ensure_users(store: Store, logins: Mapping[str, str]) -> None:
    """Create or refresh the users: ``logins`` (name -> password) plus the demo assignees.

    Users that are not in ``logins`` cannot log in. The admin's time zone is America/New_York
    so v10 datetimes carry a non-UTC offset.
    """
    names = ["admin", *sorted(set(logins) - {"admin"}), *_DEMO_USERS]
    for n, name in enumerate(dict.fromkeys(names)):
        password = logins.get(name)
        stamp = _stamp(0)
        store.query(
            "INSERT INTO users (id, user_name, first_name, last_name, is_admin, status, "
            "deleted, is_group, employee_status, title, department, phone_work, date_entered, "
            "date_modified, created_by, modified_user_id, user_hash, time_zone) "
            "VALUES (?, ?, ?, ?, ?, 'Active', 0, 0, 'Active', ?, ?, ?, ?, ?, '1', '1', ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET user_hash = excluded.user_hash, status = 'Active', "
            "deleted = 0",
            (
                user_id_for(name),
                name,
                "" if name == "admin" else name.title(),
                "Administrator" if name == "admin" else "Demo",
                int(name == "admin"),
                "Administrator" if name == "admin" else "Sales Rep",
                "Sales",
                f"+1 555 0100 {n:03d}",
                stamp,
                stamp,
                md5_hex(password) if password is not None else None,
                "America/New_York" if n % 2 == 0 else "Europe/Berlin",
            ),
        )


def _stamp(n: int) -> str:
    return (_BASE + timedelta(hours=29 * (n // 7))).strftime("%Y-%m-%d %H:%M:%S")


class _Seeder:
    def __init__(self, store: Store, accounts: int) -> None:
        self.store = store
        self.n = accounts
        self.rng = random.Random(SEED)
        self.users = [user_id_for(u) for u in ("admin", *_DEMO_USERS)]
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.emails: list[tuple[str, str, str, bool, bool]] = []  # module, id, addr, prim, opt

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def add(self, table: str, n: int, deleted: bool = False, **values: Any) -> str:
        row_id = self.uid()
        stamp = _stamp(n)
        row = {
            "id": row_id,
            "date_entered": stamp,
            "date_modified": stamp,
            "created_by": "1",
            "modified_user_id": "1",
            "assigned_user_id": self.users[n % len(self.users)],
            "deleted": int(deleted),
            **values,
        }
        self.rows.setdefault(table, []).append(row)
        return row_id

    def run(self) -> None:
        accounts = [self.account(i) for i in range(self.n + self.n // 20)]
        live = accounts[: self.n]
        contacts = [self.contact(i, live[i // 2] if live else None) for i in range(2 * self.n)]
        for i in range(self.n // 20):
            self.contact(2 * self.n + i, None, deleted=True)
        for i in range(2 * self.n):
            self.lead(i)
        for i in range(self.n + self.n // 2):
            self.opportunity(i, live[i % self.n], contacts[2 * (i % self.n)])
        for i in range(self.n):
            self.note(i, live[i], contacts[2 * i] if i % 2 == 0 else None)
        self.flush()

    def account(self, i: int) -> str:
        if i < len(_SPECIAL_ACCOUNTS):
            name = _SPECIAL_ACCOUNTS[i]
        else:
            prefix = _PREFIXES[i % len(_PREFIXES)]
            middle = _MIDDLES[(i // len(_PREFIXES)) % len(_MIDDLES)]
            name = f"{prefix} {middle} {_SUFFIXES[i % len(_SUFFIXES)]}"
            if i >= len(_PREFIXES) * len(_MIDDLES):
                name += f" {i}"
        city, state, country = _CITIES[i % len(_CITIES)]
        domain = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20]
        types = [k for k in DROPDOWNS["account_type_dom"] if k]
        industries = [k for k in DROPDOWNS["industry_dom"] if k]
        row_id = self.add(
            "accounts",
            i,
            deleted=i >= self.n,
            name=name,
            account_type=self.rng.choice(types),
            industry=self.rng.choice(industries),
            billing_address_street=f"{100 + i} Main Street",
            billing_address_city=city,
            billing_address_state=state,
            billing_address_postalcode=f"{10000 + i * 7:05d}",
            billing_address_country=country,
            phone_office=f"+1 555 {2000 + i:04d}",
            website=f"www.{domain}.example.com",
            employees=str(10 * (1 + i % 50)),
            description=f"Seed account {i + 1}." if i % 3 else "",
        )
        self.emails.append(("Accounts", row_id, f"info@{domain}.example.com", True, False))
        return row_id

    def person(self, i: int) -> dict[str, Any]:
        first = _FIRST[i % len(_FIRST)]
        last = _LAST[(i * 7 + i // len(_FIRST)) % len(_LAST)]
        city, state, country = _CITIES[(i * 3) % len(_CITIES)]
        return {
            "salutation": self.rng.choice(["", "Mr.", "Ms.", "Dr."]),
            "first_name": first,
            "last_name": last,
            "title": self.rng.choice(["CEO", "VP Sales", "Buyer", "IT Manager", "Director"]),
            "phone_work": f"+1 555 {3000 + i:04d}",
            "phone_mobile": f"+1 555 {6000 + i:04d}" if i % 2 else None,
            "primary_address_city": city,
            "primary_address_state": state,
            "primary_address_country": country,
            "lead_source": self.rng.choice([k for k in DROPDOWNS["lead_source_dom"] if k]),
            "do_not_call": int(i % 11 == 0),
        }

    def _address(self, first: str, last: str, i: int) -> str:
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isascii() and ch != "'")
        return f"{local}{i}@example.net"

    def contact(self, i: int, account: str | None, *, deleted: bool = False) -> str:
        person = self.person(i)
        row_id = self.add("contacts", i, deleted=deleted, **person)
        address = self._address(person["first_name"], person["last_name"], i)
        self.emails.append(("Contacts", row_id, address, True, i % 7 == 3))
        if i % 5 == 0:
            self.emails.append(("Contacts", row_id, f"alt.{address}", False, False))
        if i % 2 == 0:
            self.rows.setdefault("contacts_cstm", []).append(
                {"id_c": row_id, "external_id_c": f"ERP-{i + 1:05d}"}
            )
        if account:
            self.relation("accounts_contacts", i, account_id=account, contact_id=row_id)
        return row_id

    def lead(self, i: int) -> None:
        person = self.person(i + 1000)
        statuses = [k for k in DROPDOWNS["lead_status_dom"] if k]
        row_id = self.add(
            "leads",
            i,
            **person,
            status=statuses[i % len(statuses)],
            account_name=f"{_PREFIXES[(i * 5) % len(_PREFIXES)]} Prospects",
            converted=0,
        )
        address = self._address(person["first_name"], person["last_name"], i + 1000)
        self.emails.append(("Leads", row_id, address, True, False))
        self.rows.setdefault("leads_cstm", []).append(
            {
                "id_c": row_id,
                "external_id_c": f"WEB-{i + 1:05d}",
                "lead_score_c": self.rng.randint(0, 100),
            }
        )

    def opportunity(self, i: int, account: str, contact: str) -> None:
        stages = list(DROPDOWNS["sales_stage_dom"])
        stage = stages[i % len(stages)]
        amount = float(self.rng.randrange(1000, 250000, 250))
        row_id = self.add(
            "opportunities",
            i,
            name=f"Deal {i + 1:04d}",
            amount=amount,
            amount_usdollar=amount,
            currency_id="-99",
            date_closed=(_BASE + timedelta(days=30 + 3 * i)).strftime("%Y-%m-%d"),
            sales_stage=stage,
            probability={"Closed Won": 100, "Closed Lost": 0}.get(stage, 10 * (1 + i % 9)),
            opportunity_type=self.rng.choice(["New Business", "Existing Business"]),
        )
        self.relation("accounts_opportunities", i, account_id=account, opportunity_id=row_id)
        self.relation("opportunities_contacts", i, opportunity_id=row_id, contact_id=contact)

    def note(self, i: int, account: str, contact: str | None) -> None:
        self.add(
            "notes",
            i,
            name=f"Call summary {i + 1}",
            description=f"Discussed renewal <b>terms</b> & pricing (#{i + 1}).",
            parent_type="Accounts",
            parent_id=account,
            contact_id=contact,
            portal_flag=0,
            embed_flag=0,
        )

    def relation(self, table: str, n: int, **ids: str) -> None:
        row = {"id": self.uid(), **ids, "date_modified": _stamp(n), "deleted": 0}
        self.rows.setdefault(table, []).append(row)

    def flush(self) -> None:
        for table, rows in self.rows.items():
            present = self.store.columns_of(table)  # a stock server has no Studio fields
            columns = sorted({c for row in rows for c in row} & present)
            sql = (
                f"INSERT INTO {table} ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})"
            )
            self.store.executemany(sql, [[row.get(c) for c in columns] for row in rows])
        addresses: dict[str, str] = {}
        ea_rows, rel_rows = [], []
        for n, (module, bean, address, primary, opt_out) in enumerate(self.emails):
            stamp = _stamp(n)
            if address.upper() not in addresses:
                addresses[address.upper()] = self.uid()
                ea_rows.append(
                    (addresses[address.upper()], address, address.upper(), int(opt_out), stamp)
                )
            rel_rows.append(
                (self.uid(), addresses[address.upper()], bean, module, int(primary), stamp)
            )
        self.store.executemany(
            "INSERT INTO email_addresses (id, email_address, email_address_caps, "
            "invalid_email, opt_out, date_created, date_modified, deleted) "
            "VALUES (?, ?, ?, 0, ?, ?, ?5, 0)",
            ea_rows,
        )
        self.store.executemany(
            "INSERT INTO email_addr_bean_rel (id, email_address_id, bean_id, bean_module, "
            "primary_address, reply_to_address, date_created, date_modified, deleted) "
            "VALUES (?, ?, ?, ?, ?, 0, ?, ?6, 0)",
            rel_rows,
        )


def seed(store: Store, accounts: int) -> None:
    """Write the demo records (users excepted: see :func:`ensure_users`) in one transaction."""
    with store.transaction():
        seeder = _Seeder(store, accounts)
        seeder.run()
        for user_id in seeder.users:
            store.query(
                "INSERT OR IGNORE INTO email_addresses (id, email_address, email_address_caps, "
                "invalid_email, opt_out, date_created, date_modified, deleted) "
                "VALUES (?, ?, ?, 0, 0, ?, ?, 0)",
                (f"ea_{user_id}", f"{user_id}@crm.example.com", "", _stamp(0), _stamp(0)),
            )
        store.query(
            "UPDATE email_addresses SET email_address_caps = UPPER(email_address) "
            "WHERE email_address_caps = ''"
        )
        store.executemany(
            "INSERT OR IGNORE INTO email_addr_bean_rel (id, email_address_id, bean_id, "
            "bean_module, primary_address, reply_to_address, date_created, date_modified, "
            "deleted) VALUES (?, ?, ?, 'Users', 1, 0, ?, ?, 0)",
            [(f"eabr_{u}", f"ea_{u}", u, _stamp(0), _stamp(0)) for u in seeder.users],
        )
        store.set_meta("seeded", str(accounts))
