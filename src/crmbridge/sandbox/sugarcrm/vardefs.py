"""The modules, fields, links and drop-down lists the sandbox serves (a slice of Sugar's vardefs).

Field lengths follow the real vardefs. ``source`` says where a value lives:

* ``db``: a column of the module's table;
* ``custom``: a column of ``<table>_cstm`` (keyed by ``id_c``), the way Studio adds fields;
* ``email``: the primary address in ``email_addresses`` / ``email_addr_bean_rel``;
* ``relate``: computed from another table (read-only here, except the few handled on write);
* ``v10``: a column only the REST v10/v11 API exposes (``sync_key``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

#: Drop-down lists (``app_list_strings``): key -> label. The empty key is the blank choice.
DROPDOWNS: dict[str, dict[str, str]] = {
    "account_type_dom": {
        "": "",
        **{k: k for k in ("Analyst", "Competitor", "Customer", "Integrator", "Investor")},
        **{k: k for k in ("Partner", "Press", "Prospect", "Reseller", "Other")},
    },
    "industry_dom": {
        "": "",
        **{
            k: k
            for k in (
                "Apparel",
                "Banking",
                "Biotechnology",
                "Chemicals",
                "Communications",
                "Construction",
                "Consulting",
                "Education",
                "Electronics",
                "Energy",
                "Engineering",
                "Entertainment",
                "Environmental",
                "Finance",
                "Government",
                "Healthcare",
                "Hospitality",
                "Insurance",
                "Machinery",
                "Manufacturing",
                "Media",
                "Not For Profit",
                "Recreation",
                "Retail",
                "Shipping",
                "Technology",
                "Telecommunications",
                "Transportation",
                "Utilities",
                "Other",
            )
        },
    },
    "lead_source_dom": {
        "": "",
        "Cold Call": "Cold Call",
        "Existing Customer": "Existing Customer",
        "Self Generated": "Self Generated",
        "Employee": "Employee",
        "Partner": "Partner",
        "Public Relations": "Public Relations",
        "Direct Mail": "Direct Mail",
        "Conference": "Conference",
        "Trade Show": "Trade Show",
        "Web Site": "Web Site",
        "Word of mouth": "Word of mouth",
        "Email": "Email",
        "Campaign": "Campaign",
        "Other": "Other",
    },
    "lead_status_dom": {
        "": "",
        "New": "New",
        "Assigned": "Assigned",
        "In Process": "In Process",
        "Converted": "Converted",
        "Recycled": "Recycled",
        "Dead": "Dead",
    },
    "sales_stage_dom": {
        "Prospecting": "Prospecting",
        "Qualification": "Qualification",
        "Needs Analysis": "Needs Analysis",
        "Value Proposition": "Value Proposition",
        "Id. Decision Makers": "Id. Decision Makers",
        "Perception Analysis": "Perception Analysis",
        "Proposal/Price Quote": "Proposal/Price Quote",
        "Negotiation/Review": "Negotiation/Review",
        "Closed Won": "Closed Won",
        "Closed Lost": "Closed Lost",
    },
    "salutation_dom": {
        "": "",
        "Mr.": "Mr.",
        "Ms.": "Ms.",
        "Mrs.": "Mrs.",
        "Miss": "Miss",
        "Dr.": "Dr.",
        "Prof.": "Prof.",
    },
    "opportunity_type_dom": {
        "": "",
        "Existing Business": "Existing Business",
        "New Business": "New Business",
    },
    "user_status_dom": {"Active": "Active", "Inactive": "Inactive"},
    "lawful_basis_dom": {
        "": "",
        "consent": "Consent",
        "contract": "Contract",
        "legal_obligation": "Legal obligation",
        "protection_of_interests": "Protection of interests",
        "public_interest": "Public interest",
        "legitimate_interests": "Legitimate interests",
        "withdrawn": "Withdrawn",
    },
    "parent_type_display": {
        "Accounts": "Account",
        "Contacts": "Contact",
        "Leads": "Lead",
        "Opportunities": "Opportunity",
    },
}

#: Field types whose values are text (truncated to ``len`` when stored).
TEXT_TYPES = frozenset(
    {"id", "name", "varchar", "enum", "phone", "url", "relate", "parent_type", "text", "multienum"}
)


@dataclass(frozen=True)
class FieldDef:
    """One field of a module, as ``get_module_fields`` and the v10 metadata describe it."""

    name: str
    type: str = "varchar"
    len: int | None = None
    required: bool = False
    options: str | None = None  # name of a DROPDOWNS list
    source: str = "db"  # db | custom | email | relate | v10
    label: str | None = None
    read_only: bool = False
    #: False: the metadata gives no ``len`` although the column has one (``len`` here), as
    #: SuiteCRM's for the ``*_address_country`` fields (``varchar(255)``)
    len_shown: bool = True

    @property
    def shown_len(self) -> int | None:
        """The ``len`` the metadata reports."""
        return self.len if self.len_shown else None

    @property
    def stored(self) -> bool:
        """Whether the value is a plain column (of the module table or its _cstm table)."""
        return self.source in ("db", "custom", "v10")

    @property
    def display_label(self) -> str:
        return self.label or self.name.removesuffix("_c").replace("_", " ").title() + ":"


@dataclass(frozen=True)
class LinkDef:
    """A link field: how one module reaches related records.

    ``kind`` is ``table`` (a relationship table with ``left``/``right`` id columns), ``column``
    (``column`` on the *related* table points at us), ``own_column`` (our ``column`` points at
    the related record) or ``email``. ``module_shown`` False: the metadata reports the link
    with an empty ``module``, as SuiteCRM does for many standard links (the related module is
    then found through the relationship).
    """

    name: str
    module: str
    relationship: str
    kind: str
    table: str | None = None
    left: str | None = None  # column holding our id
    right: str | None = None  # column holding the related id
    column: str | None = None
    module_shown: bool = True

    @property
    def shown_module(self) -> str:
        """The ``module`` the metadata reports for this link."""
        return self.module if self.module_shown else ""


@dataclass(frozen=True)
class ModuleDef:
    """A module: its table, bean name, fields (in vardef order) and links."""

    name: str
    table: str
    bean: str
    fields: tuple[FieldDef, ...]
    links: tuple[LinkDef, ...] = ()
    custom_table: str | None = None
    search_fields: tuple[str, ...] = ("name",)
    _by_name: dict[str, FieldDef] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        self._by_name.update({f.name: f for f in self.fields})

    def field(self, name: str) -> FieldDef | None:
        return self._by_name.get(name)

    def link(self, name: str) -> LinkDef | None:
        return next((link for link in self.links if link.name == name), None)

    def with_fields(self, extra: tuple[FieldDef, ...]) -> ModuleDef:
        """This module with ``extra`` fields after its own (as Studio adds them)."""
        return ModuleDef(
            self.name,
            self.table,
            self.bean,
            (*self.fields, *extra),
            self.links,
            self.custom_table,
            self.search_fields,
        )

    @property
    def columns(self) -> list[FieldDef]:
        """Fields stored in the module table itself."""
        return [f for f in self.fields if f.source in ("db", "v10")]

    @property
    def custom_columns(self) -> list[FieldDef]:
        return [f for f in self.fields if f.source == "custom"]


def _f(name: str, type_: str = "varchar", len_: int | None = None, **kw: object) -> FieldDef:
    return FieldDef(name, type_, len_, **kw)  # type: ignore[arg-type]


def _common(name_len: int | None = 150, name_type: str = "name") -> list[FieldDef]:
    head = [_f("id", "id", 36, required=True, label="ID:")]
    if name_len is not None:
        head.append(_f("name", name_type, name_len, required=True, label="Name:"))
    return [
        *head,
        _f("date_entered", "datetime", read_only=True, label="Date Created:"),
        _f("date_modified", "datetime", read_only=True, label="Date Modified:"),
        _f("modified_user_id", "id", 36, label="Modified By Id:"),
        _f("created_by", "id", 36, label="Created By Id:"),
        _f("description", "text", label="Description:"),
        _f("deleted", "bool", label="Deleted:"),
        _f("assigned_user_id", "id", 36, label="Assigned User Id:"),
        _f("assigned_user_name", "relate", 255, source="relate", label="Assigned to:"),
        _f("sync_key", "varchar", 100, source="v10", label="Sync Key:"),
    ]


def _address(prefix: str) -> list[FieldDef]:
    return [
        _f(f"{prefix}_street", "varchar", 150),
        _f(f"{prefix}_city", "varchar", 100),
        _f(f"{prefix}_state", "varchar", 100),
        _f(f"{prefix}_postalcode", "varchar", 20),
        _f(f"{prefix}_country", "varchar", 255, len_shown=False),
    ]


def _person() -> list[FieldDef]:
    return [
        _f("salutation", "enum", 255, options="salutation_dom"),
        _f("first_name", "varchar", 100),
        _f("last_name", "varchar", 100, required=True),
        _f("full_name", "fullname", 510, source="relate", read_only=True, label="Name:"),
        _f("title", "varchar", 100),
        _f("department", "varchar", 255),
        _f("do_not_call", "bool"),
        _f("phone_home", "phone", 100),
        _f("phone_mobile", "phone", 100),
        _f("phone_work", "phone", 100),
        _f("phone_other", "phone", 100),
        _f("phone_fax", "phone", 100),
        _f("email1", "varchar", 100, source="email", label="Email Address:"),
        *_address("primary_address"),
        *_address("alt_address"),
        _f("birthdate", "date"),
        _f("lead_source", "enum", 100, options="lead_source_dom"),
        # stored as TEXT in the ^a^,^b^ encoding; no len in the metadata
        _f("lawful_basis", "multienum", options="lawful_basis_dom", label="Lawful Basis"),
    ]


def _email_link(table: str) -> LinkDef:
    return LinkDef("email_addresses", "EmailAddresses", f"{table}_email_addresses", "email")


ACCOUNTS = ModuleDef(
    "Accounts",
    "accounts",
    "Account",
    (
        *_common(150),
        _f("account_type", "enum", 50, options="account_type_dom", label="Type:"),
        _f("industry", "enum", 50, options="industry_dom"),
        _f("annual_revenue", "varchar", 100),
        _f("employees", "varchar", 10),
        *_address("billing_address"),
        *_address("shipping_address"),
        _f("phone_office", "phone", 100),
        _f("phone_fax", "phone", 100),
        _f("phone_alternate", "phone", 100),
        _f("website", "url", 255),
        _f("ownership", "varchar", 100),
        _f("rating", "varchar", 100),
        _f("ticker_symbol", "varchar", 10),
        _f("sic_code", "varchar", 10),
        _f("parent_id", "id", 36),
        _f("email1", "varchar", 100, source="email", label="Email Address:"),
    ),
    (
        LinkDef(
            "contacts",
            "Contacts",
            "accounts_contacts",
            "table",
            "accounts_contacts",
            "account_id",
            "contact_id",
        ),
        LinkDef(
            "opportunities",
            "Opportunities",
            "accounts_opportunities",
            "table",
            "accounts_opportunities",
            "account_id",
            "opportunity_id",
        ),
        LinkDef("leads", "Leads", "account_leads", "column", column="account_id"),
        LinkDef("notes", "Notes", "account_notes", "column", column="parent_id"),
        _email_link("accounts"),
    ),
    custom_table="accounts_cstm",
)

CONTACTS = ModuleDef(
    "Contacts",
    "contacts",
    "Contact",
    (
        *_common(None),
        *_person(),
        _f("reports_to_id", "id", 36),
        _f("account_id", "id", 36, source="relate", label="Account ID:"),
        _f("account_name", "relate", 255, source="relate", label="Account Name:"),
    ),
    (
        LinkDef(
            "accounts",
            "Accounts",
            "accounts_contacts",
            "table",
            "accounts_contacts",
            "contact_id",
            "account_id",
            module_shown=False,
        ),
        LinkDef(
            "opportunities",
            "Opportunities",
            "opportunities_contacts",
            "table",
            "opportunities_contacts",
            "contact_id",
            "opportunity_id",
        ),
        LinkDef("leads", "Leads", "contact_leads", "column", column="contact_id"),
        LinkDef(
            "notes", "Notes", "contact_notes", "column", column="contact_id", module_shown=False
        ),
        _email_link("contacts"),
    ),
    custom_table="contacts_cstm",
    search_fields=("first_name", "last_name"),
)

LEADS = ModuleDef(
    "Leads",
    "leads",
    "Lead",
    (
        *_common(None),
        *_person(),
        _f("converted", "bool"),
        _f("status", "enum", 100, options="lead_status_dom"),
        _f("status_description", "text"),
        _f("lead_source_description", "text"),
        _f("account_name", "varchar", 255),
        _f("account_description", "text"),
        _f("website", "url", 255),
        _f("account_id", "id", 36),
        _f("contact_id", "id", 36),
        _f("opportunity_id", "id", 36),
        _f("opportunity_name", "varchar", 255),
        _f("opportunity_amount", "varchar", 50),
    ),
    (
        LinkDef(
            "accounts",
            "Accounts",
            "account_leads",
            "own_column",
            column="account_id",
            module_shown=False,
        ),
        LinkDef("contacts", "Contacts", "contact_leads", "own_column", column="contact_id"),
        _email_link("leads"),
    ),
    custom_table="leads_cstm",
    search_fields=("first_name", "last_name", "account_name"),
)

OPPORTUNITIES = ModuleDef(
    "Opportunities",
    "opportunities",
    "Opportunity",
    (
        *_common(50),
        _f("opportunity_type", "enum", 255, options="opportunity_type_dom", label="Type:"),
        _f("lead_source", "enum", 50, options="lead_source_dom"),
        _f("amount", "currency", 26, required=True, label="Opportunity Amount:"),
        _f("amount_usdollar", "currency", 26),
        _f("currency_id", "id", 36),
        _f("date_closed", "date", required=True, label="Expected Close Date:"),
        _f("next_step", "varchar", 100),
        _f("sales_stage", "enum", 255, required=True, options="sales_stage_dom"),
        _f("probability", "int", 3, label="Probability (%):"),
        _f("account_id", "id", 36, source="relate", label="Account ID:"),
        _f("account_name", "relate", 255, source="relate", label="Account Name:"),
    ),
    (
        LinkDef(
            "accounts",
            "Accounts",
            "accounts_opportunities",
            "table",
            "accounts_opportunities",
            "opportunity_id",
            "account_id",
        ),
        LinkDef(
            "contacts",
            "Contacts",
            "opportunities_contacts",
            "table",
            "opportunities_contacts",
            "opportunity_id",
            "contact_id",
        ),
    ),
)

NOTES = ModuleDef(
    "Notes",
    "notes",
    "Note",
    (
        *_common(255, "varchar"),
        _f("file_mime_type", "varchar", 100),
        _f("filename", "varchar", 255),
        _f("parent_type", "parent_type", 255, options="parent_type_display"),
        _f("parent_id", "id", 36),
        _f("contact_id", "id", 36),
        # marked required by the metadata, yet optional: a save without it stores 0
        _f("portal_flag", "bool", required=True, label="Display in Portal?"),
        _f("embed_flag", "bool"),
        _f("contact_name", "relate", 510, source="relate", label="Contact Name:"),
    ),
    (
        LinkDef("contact", "Contacts", "contact_notes", "own_column", column="contact_id"),
        LinkDef(
            "accounts",
            "Accounts",
            "account_notes",
            "own_column",
            column="parent_id",
            module_shown=False,
        ),
    ),
)

USERS = ModuleDef(
    "Users",
    "users",
    "User",
    (
        _f("id", "id", 36, required=True, label="ID:"),
        _f("user_name", "user_name", 60, required=True, label="User Name:"),
        _f("first_name", "name", 30),
        _f("last_name", "name", 30, required=True),
        _f("full_name", "name", 510, source="relate", read_only=True),
        _f("is_admin", "bool"),
        _f("date_entered", "datetime", read_only=True),
        _f("date_modified", "datetime", read_only=True),
        _f("modified_user_id", "id", 36),
        _f("created_by", "id", 36),
        _f("title", "varchar", 50),
        _f("department", "varchar", 50),
        _f("phone_work", "phone", 50),
        _f("status", "enum", 100, options="user_status_dom"),
        _f("description", "text"),
        _f("deleted", "bool"),
        _f("is_group", "bool"),
        _f("employee_status", "varchar", 100),
        _f("email1", "varchar", 100, source="email", label="Email Address:"),
    ),
    (_email_link("users"),),
    search_fields=("user_name", "first_name", "last_name"),
)

_STOCK = (ACCOUNTS, CONTACTS, LEADS, OPPORTUNITIES, NOTES, USERS)

#: Custom fields an administrator can add with Studio, by ``Module.field``. A stock server has
#: none of them; ``SugarSandbox(studio_fields=[...])`` adds them (values in ``<table>_cstm``).
STUDIO_FIELDS: dict[str, FieldDef] = {
    "Accounts.supplier_id_c": _f(
        "supplier_id_c", "varchar", 36, source="custom", label="Supplier ID"
    ),
    "Contacts.external_id_c": _f(
        "external_id_c", "varchar", 255, source="custom", label="External ID"
    ),
    "Leads.external_id_c": _f(
        "external_id_c", "varchar", 255, source="custom", label="External ID"
    ),
    "Leads.lead_score_c": _f("lead_score_c", "int", 11, source="custom", label="Lead Score"),
}


def build_modules(studio_fields: Iterable[str] = ()) -> dict[str, ModuleDef]:
    """The modules of a server: the stock ones plus ``studio_fields`` (keys of
    :data:`STUDIO_FIELDS`). An unknown name is a ValueError."""
    extra: dict[str, list[FieldDef]] = {}
    for key in dict.fromkeys(studio_fields):
        if key not in STUDIO_FIELDS:
            known = ", ".join(STUDIO_FIELDS)
            raise ValueError(f"no Studio field {key!r} in the sandbox; it knows: {known}")
        extra.setdefault(key.split(".", 1)[0], []).append(STUDIO_FIELDS[key])
    return {m.name: m.with_fields(tuple(extra.get(m.name, ()))) for m in _STOCK}


#: The modules of a stock server (no Studio fields).
MODULES: dict[str, ModuleDef] = build_modules()

#: Columns of the users table that are not fields (never returned by the APIs).
USER_PRIVATE_COLUMNS = ("user_hash", "time_zone")
