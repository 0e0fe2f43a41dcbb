"""Deterministic demo data: the same ``companies`` number always gives the same rows and ids.

For ``companies = N`` the seed writes (see :func:`seed_counts`)

* Company: N live, plus N // 20 soft-deleted; each with a Business address (every third one a
  Billing address too), a Business phone (every other one a Fax), a Business e-mail;
* Person: 2 per live company (``pers_companyid``; the first is the company's primary person),
  each with a Business e-mail, a Business phone and a Mobile;
* Opportunity: N + N // 2 (``oppo_primarycompanyid``, ``oppo_primarypersonid``);
* Cases: N; Lead: 2N.

Ids count from 1 in each table. Records are written in groups of seven that share one
updated-date second, the first ones in 2024-01-02. The first companies hold the awkward text
real data has (``&``, quotes, an apostrophe, umlauts).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from crmbridge.sandbox.sagecrm.entities import DROPDOWNS, TERRITORIES, WORLDWIDE
from crmbridge.sandbox.sagecrm.store import Store

SEED = 20240501
_BASE = datetime(2024, 1, 2, 8, 0, 0)
_SPECIAL = ('Acme & Sons "Q"', "O'Brien Brothers Ltd", "Zürich Trading AG", "Müller & Søn GmbH")
_PREFIXES = [
    "Globex",
    "Vandelay",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Hooli",
    "Oceanic",
    "Monarch",
    "Aperture",
    "Nakatomi",
    "Gekko",
    "Bluth",
    "Prestige",
    "Oscorp",
    "Virtucon",
    "Duff",
    "Sirius",
    "Ajax",
    "Zenith",
]
_MIDDLES = [
    "Industries",
    "Logistics",
    "Software",
    "Foods",
    "Energy",
    "Systems",
    "Media",
    "Consulting",
    "Pharma",
    "Motors",
]
_SUFFIXES = ("Ltd", "plc", "GmbH", "Inc", "LLC", "Group", "Holdings", "AG", "S.A.", "Teoranta")
_FIRST = [
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
    "Siobhán",
    "Seán",
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
]
_LAST = [
    "Smith",
    "Murphy",
    "Kelly",
    "O'Neill",
    "Walsh",
    "Byrne",
    "Ryan",
    "Müller",
    "Nguyen",
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
    "Hernández",
]
_CITIES = (
    ("Dublin", "", "Ireland", "D02 X285"),
    ("Cork", "", "Ireland", "T12 K8AF"),
    ("London", "", "United Kingdom", "EC1A 1BB"),
    ("Manchester", "", "United Kingdom", "M1 1AE"),
    ("Newcastle", "", "United Kingdom", "NE1 7RU"),
    ("New York", "NY", "USA", "10001"),
    ("Chicago", "IL", "USA", "60601"),
    ("Berlin", "", "Germany", "10115"),
    ("Zürich", "ZH", "Switzerland", "8001"),
    ("Paris", "", "France", "75001"),
)
_DEMO_USERS = (("sally", "Sally", "Bronsen"), ("max", "Max", "Tate"), ("will", "Will", "Vo"))


def seed_counts(companies: int) -> dict[str, tuple[int, int]]:
    """(live, deleted) rows per entity that :func:`seed` writes for ``companies``."""
    return {
        "company": (companies, companies // 20),
        "person": (2 * companies, 0),
        "opportunity": (companies + companies // 2, 0),
        "cases": (companies, 0),
        "lead": (2 * companies, 0),
    }


def ensure_users(store: Store, logins: Mapping[str, str]) -> None:
    """The users: ``logins`` (logon -> password, web service access on) plus demo users who
    own records but cannot log on. ``admin`` is user 1; territories Worldwide."""
    rows: list[tuple[str, str, str, str | None]] = [("admin", "", "Administrator", None)]
    rows += [(name, name.title(), "User", None) for name in sorted(set(logins) - {"admin"})]
    rows += [(logon, first, last, None) for logon, first, last in _DEMO_USERS]
    stamp = _BASE.strftime("%Y-%m-%d %H:%M:%S")
    for n, (logon, first, last, _) in enumerate({r[0]: r for r in rows}.values(), 1):
        password = logins.get(logon)
        existing = store.query("SELECT user_userid FROM Users WHERE user_logon = ?", (logon,))
        values = {
            "user_password": password,
            "user_webservice": "Y" if password is not None else None,
        }
        if existing:
            store.query(
                "UPDATE Users SET user_password = ?, user_webservice = ? WHERE user_logon = ?",
                (values["user_password"], values["user_webservice"], logon),
            )
            continue
        store.insert_row(
            "Users",
            {
                "user_logon": logon,
                "user_firstname": first,
                "user_lastname": last,
                "user_emailaddress": f"{logon}@sandbox.example.com",
                "user_primaryterritory": WORLDWIDE if n % 2 else list(TERRITORIES)[n % 4],
                "user_createdby": 1,
                "user_createddate": stamp,
                "user_updatedby": 1,
                "user_updateddate": stamp,
                "user_timestamp": stamp,
                **values,
            },
        )


def seed(store: Store, companies: int) -> None:
    """Write the demo data (once: the meta key ``seeded`` marks a seeded database)."""
    with store.transaction():
        _Seeder(store, companies).run()
        store.set_meta("seeded", str(companies))


class _Seeder:
    def __init__(self, store: Store, companies: int) -> None:
        self.store = store
        self.n = companies
        self.rng = random.Random(SEED)
        self.count = 0
        self.users = [
            int(r["user_userid"]) for r in store.query("SELECT user_userid FROM Users ORDER BY 1")
        ]

    def stamp(self) -> str:
        self.count += 1
        moment = _BASE + timedelta(hours=29 * (self.count // 7))
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def add(self, table: str, prefix: str, *, deleted: bool = False, **values: Any) -> int:
        stamp = self.stamp()
        user = self.users[self.count % len(self.users)]
        row = {
            f"{prefix}_createdby": user,
            f"{prefix}_createddate": stamp,
            f"{prefix}_updatedby": user,
            f"{prefix}_updateddate": stamp,
            f"{prefix}_timestamp": stamp,
            f"{prefix}_deleted": 1 if deleted else None,
            **values,
        }
        return self.store.insert_row(table, row)

    def pick(self, family: str) -> str:
        return self.rng.choice(DROPDOWNS[family])

    def territory(self) -> int:
        return self.rng.choice(list(TERRITORIES))

    def run(self) -> None:
        companies = [self.company(i) for i in range(self.n + self.n // 20)]
        live = companies[: self.n]
        for i, (company_id, name) in enumerate(live):
            people = [self.person(2 * i + k, company_id, name) for k in range(2)]
            self.store.query(
                "UPDATE Company SET comp_primarypersonid = ? WHERE comp_companyid = ?",
                (people[0], company_id),
            )
        for i in range(self.n + self.n // 2):
            company_id, _ = live[i % self.n]
            self.opportunity(i, company_id, 2 * (i % self.n) + 1)
        for i in range(self.n):
            self.case(i, live[i][0], 2 * i + 2)
        for i in range(2 * self.n):
            self.lead(i)

    def company_name(self, i: int) -> str:
        if i < len(_SPECIAL):
            return _SPECIAL[i]
        return " ".join(
            (
                _PREFIXES[i % len(_PREFIXES)],
                _MIDDLES[(i // len(_PREFIXES)) % len(_MIDDLES)],
                _SUFFIXES[i % len(_SUFFIXES)],
            )
        )

    def company(self, i: int) -> tuple[int, str]:
        name = self.company_name(i)
        slug = "".join(ch for ch in name.lower() if ch.isalnum())[:20] or f"company{i}"
        company_id = self.add(
            "Company",
            "comp",
            deleted=i >= self.n,
            comp_name=name,
            comp_type=("Customer", "Prospect", "Supplier", "Partner")[i % 4],
            comp_status="Active" if i % 9 else "Inactive",
            comp_source=self.pick("comp_source"),
            comp_territory=self.pick("comp_territory"),
            comp_revenue=self.pick("comp_revenue"),
            comp_employees=self.pick("comp_employees"),
            comp_sector=self.pick("comp_sector"),
            comp_website=f"http://www.{slug}.example.com",
            comp_supplierid=f"SUP-{i + 1:05d}" if i % 4 == 2 else None,
            comp_mailrestriction="Y" if i % 11 == 0 else None,
            comp_primaryuserid=self.users[i % len(self.users)],
            comp_secterr=self.territory(),
            comp_notes=None if i % 3 else f"Key account since {2010 + i % 14}.",
        )
        city, state, country, postcode = _CITIES[i % len(_CITIES)]
        address = self.child_address(
            company_id,
            None,
            "Business",
            f"{1 + i * 7 % 200} {('High', 'Main', 'Station', 'Quay')[i % 4]} Street",
            city,
            state,
            country,
            postcode,
        )
        self.store.query(
            "UPDATE Company SET comp_primaryaddressid = ? WHERE comp_companyid = ?",
            (address, company_id),
        )
        if i % 3 == 0:
            self.child_address(
                company_id, None, "Billing", "PO Box " + str(100 + i), city, state, country, ""
            )
        self.child_phone(5, company_id, "Business", f"{200 + i:03d} {1000 + i * 37 % 9000}")
        if i % 2 == 0:
            self.child_phone(5, company_id, "Fax", f"{200 + i:03d} {2000 + i * 37 % 7000}")
        self.child_email(5, company_id, "Business", f"info@{slug}.example.com")
        return company_id, name

    def child_address(
        self,
        company_id: int | None,
        person_id: int | None,
        kind: str,
        line1: str,
        city: str,
        state: str,
        country: str,
        postcode: str,
    ) -> int:
        address = self.add(
            "Address",
            "addr",
            addr_address1=line1,
            addr_city=city,
            addr_state=state or None,
            addr_country=country,
            addr_postcode=postcode or None,
        )
        self.add(
            "Address_Link",
            "adli",
            adli_addressid=address,
            adli_companyid=company_id,
            adli_personid=person_id,
            adli_type=kind,
        )
        return address

    def child_phone(self, entity: int, record: int, kind: str, number: str) -> None:
        area, _, rest = number.partition(" ")
        phone = self.add(
            "Phone", "phon", phon_countrycode="353", phon_areacode=area, phon_number=rest
        )
        self.add(
            "PhoneLink",
            "plink",
            plink_entityid=entity,
            plink_recordid=record,
            plink_type=kind,
            plink_phoneid=phone,
        )

    def child_email(self, entity: int, record: int, kind: str, address: str) -> None:
        email = self.add("Email", "emai", emai_emailaddress=address)
        self.add(
            "EmailLink",
            "elink",
            elink_entityid=entity,
            elink_recordid=record,
            elink_type=kind,
            elink_emailid=email,
        )

    def person(self, i: int, company_id: int, company: str) -> int:
        first = _FIRST[i % len(_FIRST)]
        last = _LAST[(i * 7) % len(_LAST)]
        person_id = self.add(
            "Person",
            "pers",
            pers_companyid=company_id,
            pers_salutation=self.pick("pers_salutation"),
            pers_firstname=first,
            pers_lastname=last,
            pers_title=("Managing Director", "Buyer", "Accounts", "IT Manager")[i % 4],
            pers_department=("Management", "Purchasing", "Finance", "IT")[i % 4],
            pers_gender=self.pick("pers_gender"),
            pers_status="Active",
            pers_source=self.pick("pers_source"),
            pers_primaryuserid=self.users[i % len(self.users)],
            pers_secterr=self.territory(),
        )
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        domain = "".join(ch for ch in company.lower() if ch.isalnum())[:20] or "example"
        self.child_email(13, person_id, "Business", f"{local}@{domain}.example.com")
        self.child_phone(13, person_id, "Business", f"{300 + i:03d} {1000 + i * 53 % 9000}")
        self.child_phone(13, person_id, "Mobile", f"{80 + i % 9:03d} {1000 + i * 71 % 9000}")
        return person_id

    def opportunity(self, i: int, company_id: int, person_id: int) -> None:
        opened = _BASE + timedelta(days=3 * i)
        status = ("In Progress", "Won", "Lost", "In Progress")[i % 4]
        self.add(
            "Opportunity",
            "oppo",
            oppo_primarycompanyid=company_id,
            oppo_primarypersonid=person_id,
            oppo_assigneduserid=self.users[i % len(self.users)],
            oppo_description=f"{('Renewal', 'New licences', 'Upgrade', 'Support')[i % 4]} {i + 1}",
            oppo_type=self.pick("oppo_type"),
            oppo_stage=("Lead", "Qualified", "Proposal", "Negotiating", "Closed")[i % 5],
            oppo_status=status,
            oppo_source=self.pick("oppo_source"),
            oppo_forecast=float(self.rng.randrange(5, 500) * 100) + (0.5 if i % 7 == 0 else 0),
            oppo_certainty=self.rng.randrange(0, 101, 5),
            oppo_opened=opened.strftime("%Y-%m-%d %H:%M:%S"),
            oppo_targetclose=(opened + timedelta(days=60)).strftime("%Y-%m-%d %H:%M:%S"),
            oppo_closed=(opened + timedelta(days=45)).strftime("%Y-%m-%d %H:%M:%S")
            if status != "In Progress"
            else None,
            oppo_secterr=self.territory(),
        )

    def case(self, i: int, company_id: int, person_id: int) -> None:
        opened = _BASE + timedelta(days=2 * i, hours=i % 8)
        closed = i % 3 == 0
        self.add(
            "Cases",
            "case",
            case_primarycompanyid=company_id,
            case_primarypersonid=person_id,
            case_assigneduserid=self.users[(i + 1) % len(self.users)],
            case_description=("Cannot log in", "Invoice query", "Delivery late", "Bug")[i % 4],
            case_referenceid=f"{i + 1:04d}-{1000 + i}",
            case_status="Closed" if closed else "In Progress",
            case_stage="Solved" if closed else ("Logged", "Queued", "Investigating")[i % 3],
            case_priority=("Low", "Normal", "High")[i % 3],
            case_source=self.pick("case_source"),
            case_opened=opened.strftime("%Y-%m-%d %H:%M:%S"),
            case_closed=(opened + timedelta(days=4)).strftime("%Y-%m-%d %H:%M:%S")
            if closed
            else None,
            case_problemnote="The customer reports: " + ("it fails", "<b>urgent</b>")[i % 2],
            case_secterr=self.territory(),
        )

    def lead(self, i: int) -> None:
        first = _FIRST[(i * 3) % len(_FIRST)]
        last = _LAST[(i * 5) % len(_LAST)]
        company = self.company_name(1000 + i)
        city, _, country, _ = _CITIES[i % len(_CITIES)]
        self.add(
            "Lead",
            "lead",
            lead_description=f"Web enquiry {i + 1}",
            lead_companyname=company,
            lead_personfirstname=first,
            lead_personlastname=last,
            lead_personemail=f"{first.lower()}{i}@lead{i}.example.com".replace("'", ""),
            lead_personphonenumber=f"01 {5550000 + i}",
            lead_companycity=city,
            lead_companycountry=country if country in DROPDOWNS["lead_companycountry"] else None,
            lead_stage=("NewLead", "Assigned", "Qualified", "Rejected")[i % 4],
            lead_status="Closed" if i % 4 == 3 else "In Progress",
            lead_source=self.pick("lead_source"),
            lead_rating=("Hot", "Warm", "Cold")[i % 3],
            lead_assigneduserid=self.users[i % len(self.users)],
            lead_secterr=self.territory(),
        )
