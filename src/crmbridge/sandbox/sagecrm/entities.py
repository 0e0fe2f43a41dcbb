"""The Sage CRM tables the sandbox holds, with their real table and column names.

Every entity table has the system columns ``xxx_createdby``, ``xxx_createddate``,
``xxx_updatedby``, ``xxx_updateddate``, ``xxx_timestamp``, ``xxx_deleted`` (NULL live, 1 deleted)
and, for the main entities, the security territory ``xxx_secterr``. The web services name a
column without its prefix (``comp_name`` is ``name``); the REST API uses the column names.

Children of a company or person live in their own tables and are joined through link tables,
as in Sage CRM 7.2 and later: ``Address`` through ``Address_Link`` (``adli_type`` Business,
Billing, Shipping), ``Phone`` through ``PhoneLink`` and ``Email`` through ``EmailLink``
(``plink_type`` / ``elink_type`` Business, Fax, Mobile, Home / Business, Private; the entity is
given by its number, 5 company and 13 person).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: field types, as the metadata reports them
INT, TEXT, NTEXT, DATETIME, NUMERIC, DROPDOWN, CHECKBOX = (
    "integer",
    "text",
    "multiline",
    "datetime",
    "numeric",
    "selection",
    "checkbox",
)
SYSTEM = ("createdby", "createddate", "updatedby", "updateddate", "timestamp", "deleted")


@dataclass(frozen=True)
class Column:
    """One database column."""

    name: str  # with the prefix, e.g. comp_name
    type: str = TEXT
    length: int | None = None
    required: bool = False
    #: read-only for clients: ids and the system columns set by the server
    system: bool = False

    @property
    def short(self) -> str:
        """The name without its prefix, as the web services use it."""
        return self.name.split("_", 1)[1]


@dataclass(frozen=True)
class Entity:
    """A table the web services and the REST API expose as an entity."""

    name: str  # web service entity name, e.g. company
    table: str  # database table, e.g. Company
    prefix: str  # column prefix without the underscore, e.g. comp
    columns: tuple[Column, ...]
    number: int = 0  # the entity number link tables use (5 company, 13 person)
    #: nested children in typed answers: element name -> kind
    children: tuple[str, ...] = ()
    _by_name: dict[str, Column] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({c.name: c for c in self.columns})

    @property
    def id_column(self) -> str:
        return self.columns[0].name

    def column(self, name: str) -> Column | None:
        """The column called ``name`` (prefixed, case-insensitive)."""
        return self._by_name.get(name.lower())

    def by_short(self, short: str) -> Column | None:
        """The column whose unprefixed name is ``short``."""
        return self._by_name.get(f"{self.prefix}_{short.lower()}")

    def col(self, short: str) -> str:
        return f"{self.prefix}_{short}"


def _entity(
    name: str,
    table: str,
    prefix: str,
    columns: list[Column],
    *,
    number: int = 0,
    territory: bool = True,
    children: tuple[str, ...] = (),
    id_name: str | None = None,
) -> Entity:
    ident = Column(f"{prefix}_{id_name or name}id", INT, system=True)
    system = [
        Column(f"{prefix}_createdby", INT, system=True),
        Column(f"{prefix}_createddate", DATETIME, system=True),
        Column(f"{prefix}_updatedby", INT, system=True),
        Column(f"{prefix}_updateddate", DATETIME, system=True),
        Column(f"{prefix}_timestamp", DATETIME, system=True),
        Column(f"{prefix}_deleted", INT, system=True),
    ]
    if territory:
        system.append(Column(f"{prefix}_secterr", INT))
    return Entity(name, table, prefix, (ident, *columns, *system), number, children)


def _t(name: str, length: int, required: bool = False) -> Column:
    return Column(name, TEXT, length, required)


def _d(name: str, required: bool = False) -> Column:
    return Column(name, DROPDOWN, 40, required)


COMPANY = _entity(
    "company",
    "Company",
    "comp",
    [
        Column("comp_primarypersonid", INT),
        Column("comp_primaryaddressid", INT),
        Column("comp_primaryuserid", INT),
        _t("comp_name", 60, required=True),
        _d("comp_type"),
        _d("comp_status"),
        _d("comp_source"),
        _d("comp_territory"),
        _d("comp_revenue"),
        _d("comp_employees"),
        _d("comp_sector"),
        _t("comp_website", 255),
        Column("comp_mailrestriction", CHECKBOX, 1),
        _t("comp_supplierid", 40),
        Column("comp_notes", NTEXT),
    ],
    number=5,
    children=("address", "phone", "email", "person"),
)
PERSON = _entity(
    "person",
    "Person",
    "pers",
    [
        Column("pers_companyid", INT),
        Column("pers_primaryaddressid", INT),
        Column("pers_primaryuserid", INT),
        _d("pers_salutation"),
        _t("pers_firstname", 30),
        _t("pers_lastname", 40, required=True),
        _t("pers_middlename", 30),
        _t("pers_title", 30),
        _t("pers_department", 40),
        _d("pers_gender"),
        _d("pers_status"),
        _d("pers_source"),
    ],
    number=13,
    children=("address", "phone", "email"),
)
ADDRESS = _entity(
    "address",
    "Address",
    "addr",
    [
        _t("addr_address1", 40),
        _t("addr_address2", 40),
        _t("addr_address3", 40),
        _t("addr_address4", 40),
        _t("addr_city", 30),
        _t("addr_state", 30),
        _d("addr_country"),
        _t("addr_postcode", 10),
    ],
    number=26,
    territory=False,
)
ADDRESS_LINK = _entity(
    "address_link",
    "Address_Link",
    "adli",
    [
        Column("adli_addressid", INT, required=True),
        Column("adli_companyid", INT),
        Column("adli_personid", INT),
        _d("adli_type"),
    ],
    territory=False,
    id_name="addresslink",
)
PHONE = _entity(
    "phone",
    "Phone",
    "phon",
    [_t("phon_countrycode", 5), _t("phon_areacode", 20), _t("phon_number", 34, required=True)],
    territory=False,
)
PHONE_LINK = _entity(
    "phone_link",
    "PhoneLink",
    "plink",
    [
        Column("plink_entityid", INT, required=True),
        Column("plink_recordid", INT, required=True),
        _d("plink_type"),
        Column("plink_phoneid", INT, required=True),
    ],
    territory=False,
    id_name="link",
)
EMAIL = _entity(
    "email", "Email", "emai", [_t("emai_emailaddress", 255, required=True)], territory=False
)
EMAIL_LINK = _entity(
    "email_link",
    "EmailLink",
    "elink",
    [
        Column("elink_entityid", INT, required=True),
        Column("elink_recordid", INT, required=True),
        _d("elink_type"),
        Column("elink_emailid", INT, required=True),
    ],
    territory=False,
    id_name="link",
)
OPPORTUNITY = _entity(
    "opportunity",
    "Opportunity",
    "oppo",
    [
        Column("oppo_primarycompanyid", INT),
        Column("oppo_primarypersonid", INT),
        Column("oppo_assigneduserid", INT),
        _t("oppo_description", 75, required=True),
        _d("oppo_type"),
        _d("oppo_stage"),
        _d("oppo_status"),
        _d("oppo_source"),
        Column("oppo_forecast", NUMERIC),
        Column("oppo_certainty", INT),
        Column("oppo_targetclose", DATETIME),
        Column("oppo_opened", DATETIME),
        Column("oppo_closed", DATETIME),
        Column("oppo_note", NTEXT),
    ],
    number=10,
)
CASES = _entity(
    "cases",
    "Cases",
    "case",
    [
        Column("case_primarycompanyid", INT),
        Column("case_primarypersonid", INT),
        Column("case_assigneduserid", INT),
        _t("case_description", 40, required=True),
        _t("case_referenceid", 20),
        _d("case_status"),
        _d("case_stage"),
        _d("case_priority"),
        _d("case_source"),
        Column("case_opened", DATETIME),
        Column("case_closed", DATETIME),
        Column("case_problemnote", NTEXT),
        Column("case_solutionnote", NTEXT),
    ],
    number=3,
    id_name="case",
)
LEAD = _entity(
    "lead",
    "Lead",
    "lead",
    [
        Column("lead_primarycompanyid", INT),
        Column("lead_assigneduserid", INT),
        _t("lead_description", 40),
        _t("lead_companyname", 60),
        _t("lead_personfirstname", 30),
        _t("lead_personlastname", 40),
        _t("lead_personemail", 255),
        _t("lead_personphonenumber", 34),
        _t("lead_companycity", 30),
        _d("lead_companycountry"),
        _d("lead_stage"),
        _d("lead_status"),
        _d("lead_source"),
        _d("lead_rating"),
        Column("lead_details", NTEXT),
    ],
    number=4,
)
USERS = _entity(
    "users",
    "Users",
    "user",
    [
        _t("user_logon", 30, required=True),
        _t("user_firstname", 30),
        _t("user_lastname", 40, required=True),
        _t("user_emailaddress", 255),
        Column("user_primaryterritory", INT),
        Column("user_webservice", CHECKBOX, 1),
    ],
    territory=False,
    id_name="user",
)

#: every table, by entity name
ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        COMPANY,
        PERSON,
        ADDRESS,
        ADDRESS_LINK,
        PHONE,
        PHONE_LINK,
        EMAIL,
        EMAIL_LINK,
        OPPORTUNITY,
        CASES,
        LEAD,
        USERS,
    )
}
#: the entities a default install allows web service access to
DEFAULT_WEB_ENTITIES = frozenset(
    ("company", "person", "address", "phone", "email", "opportunity", "cases", "lead")
)

#: drop-down lists (capt_family = the column name): the codes a column accepts
DROPDOWNS: dict[str, tuple[str, ...]] = {
    "comp_type": ("Customer", "Prospect", "Supplier", "Competitor", "Partner", "Other"),
    "comp_status": ("Active", "Inactive", "Archive"),
    "comp_source": ("Advertising", "Web", "Referral", "Trade Show", "Mailing", "Other"),
    "comp_territory": ("Europe", "USA", "Asia", "Rest of World"),
    "comp_revenue": ("1-10", "11-50", "51-100", "101-500", "501-1000", "1000+"),
    "comp_employees": ("1-5", "6-20", "21-100", "101-500", "500+"),
    "comp_sector": ("Finance", "Manufacturing", "Retail", "Services", "Technology", "Public"),
    "pers_salutation": ("Mr.", "Mrs.", "Ms.", "Dr.", "Prof."),
    "pers_gender": ("Male", "Female", "Other"),
    "pers_status": ("Active", "Inactive"),
    "pers_source": ("Advertising", "Web", "Referral", "Trade Show", "Mailing", "Other"),
    "addr_country": (
        "USA",
        "United Kingdom",
        "Ireland",
        "Germany",
        "France",
        "Switzerland",
        "Spain",
        "Austria",
    ),
    "adli_type": ("Business", "Billing", "Shipping"),
    "plink_type": ("Business", "Fax", "Mobile", "Home"),
    "elink_type": ("Business", "Private"),
    "oppo_type": ("Consulting", "Mix", "Product", "Service"),
    "oppo_stage": ("Lead", "Qualified", "Proposal", "Negotiating", "Closed"),
    "oppo_status": ("In Progress", "Won", "Lost", "Abandoned"),
    "oppo_source": ("Advertising", "Web", "Referral", "Trade Show", "Mailing", "Other"),
    "case_status": ("In Progress", "Closed"),
    "case_stage": ("Logged", "Queued", "Investigating", "Resolved", "Solved"),
    "case_priority": ("Low", "Normal", "High"),
    "case_source": ("Phone", "E-mail", "Web", "Fax"),
    "lead_companycountry": ("USA", "United Kingdom", "Ireland", "Germany", "France"),
    "lead_stage": ("NewLead", "Assigned", "Qualified", "Converted", "Rejected"),
    "lead_status": ("In Progress", "Closed"),
    "lead_source": ("Advertising", "Web", "Referral", "Trade Show", "Mailing", "Other"),
    "lead_rating": ("Hot", "Warm", "Cold"),
}
#: Territories: id -> caption (Sage numbers territories with large negative integers)
TERRITORIES: dict[int, str] = {
    -2147483640: "Worldwide",
    -1845493753: "Europe",
    -1543503866: "USA",
    -1241513979: "Asia",
}
WORLDWIDE = -2147483640
