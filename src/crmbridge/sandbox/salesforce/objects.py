"""The sObjects the sandbox knows and their fields, as ``describe`` reports them.

Types are Salesforce's field types (``id``, ``string``, ``textarea``, ``picklist``, ``email``,
``phone``, ``url``, ``boolean``, ``int``, ``double``, ``currency``, ``percent``, ``date``,
``datetime``, ``reference``). Field and object names are case-insensitive in SOQL and in
write bodies; :func:`find_object` and :meth:`ObjectDef.field` look them up that way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: types whose values are text (compared case-insensitively, quoted in SOQL)
TEXT_TYPES = frozenset(
    {"id", "string", "textarea", "picklist", "email", "phone", "url", "reference"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
#: textarea fields longer than this cannot be filtered or sorted in SOQL
LONG_TEXT = 255


@dataclass(frozen=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    #: nillable = False (with createable and not defaulted: required on create)
    required: bool = False
    #: maintained by the server: not createable, not updateable
    system: bool = False
    #: computed from other fields (Contact.Name, Opportunity.IsWon): read-only
    calculated: bool = False
    defaulted: bool = False
    external_id: bool = False
    unique: bool = False
    #: text compared exactly (a unique external id "case sensitive"), not case-insensitively
    case_sensitive: bool = False
    id_lookup: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None

    @property
    def createable(self) -> bool:
        return not (self.system or self.calculated)

    @property
    def updateable(self) -> bool:
        return self.createable

    @property
    def nillable(self) -> bool:
        return not self.required and self.type != "boolean"

    @property
    def filterable(self) -> bool:
        return not (self.type == "textarea" and self.length > LONG_TEXT)

    @property
    def sortable(self) -> bool:
        return self.filterable

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")


@dataclass(frozen=True)
class ObjectDef:
    name: str
    label: str
    plural: str
    prefix: str
    fields: tuple[FieldDef, ...]
    #: child relationships: (relationship name, child object, child field)
    children: tuple[tuple[str, str, str], ...] = ()
    _by_lower: dict[str, FieldDef] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        self._by_lower.update({f.name.lower(): f for f in self.fields})

    @property
    def table(self) -> str:
        return f"sobject_{self.name.lower()}"

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship name is ``name`` (``Account``, ``Owner``)."""
        lower = name.lower()
        for f in self.fields:
            if f.relationship and f.relationship.lower() == lower:
                return f
        return None


def _f(name: str, type: str, label: str = "", length: int = 0, **kw: object) -> FieldDef:
    return FieldDef(name, type, label or name, length, **kw)  # type: ignore[arg-type]


def _key_field() -> FieldDef:
    """``Crmbridge_Key__c``: the unique, case-sensitive external id an org sets up for
    crmbridge's operation keys (the connection's ``operation_key_field``)."""
    return _f("Crmbridge_Key__c", "string", "crmbridge Key", 36, external_id=True, unique=True,
              case_sensitive=True)  # fmt: skip


def _system(owner: bool = True) -> tuple[FieldDef, ...]:
    user = ("User",)
    fields = [
        _f("Id", "id", "Record ID", 18, system=True, id_lookup=True, required=True),
        _f("IsDeleted", "boolean", "Deleted", system=True, defaulted=True),
    ]
    if owner:
        fields.append(
            _f("OwnerId", "reference", "Owner ID", 18, required=True, defaulted=True,
               reference_to=user, relationship="Owner")
        )  # fmt: skip
    fields += [
        _f("CreatedDate", "datetime", "Created Date", system=True, required=True),
        _f("CreatedById", "reference", "Created By ID", 18, system=True, required=True,
           reference_to=user, relationship="CreatedBy"),
        _f("LastModifiedDate", "datetime", "Last Modified Date", system=True, required=True),
        _f("LastModifiedById", "reference", "Last Modified By ID", 18, system=True,
           required=True, reference_to=user, relationship="LastModifiedBy"),
        _f("SystemModstamp", "datetime", "System Modstamp", system=True, required=True),
    ]  # fmt: skip
    return tuple(fields)


LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
INDUSTRIES = (
    "Agriculture", "Banking", "Chemicals", "Communications", "Construction", "Consulting",
    "Education", "Electronics", "Energy", "Engineering", "Finance", "Healthcare", "Insurance",
    "Manufacturing", "Media", "Retail", "Technology", "Transportation", "Other",
)  # fmt: skip
ACCOUNT_TYPES = (
    "Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
    "Installation Partner", "Technology Partner", "Other",
)  # fmt: skip
LEAD_STATUSES = (
    "Open - Not Contacted", "Working - Contacted", "Closed - Converted",
    "Closed - Not Converted",
)  # fmt: skip
STAGES = {
    "Prospecting": 10, "Qualification": 10, "Needs Analysis": 20, "Value Proposition": 50,
    "Id. Decision Makers": 60, "Perception Analysis": 70, "Proposal/Price Quote": 75,
    "Negotiation/Review": 90, "Closed Won": 100, "Closed Lost": 0,
}  # fmt: skip
SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
OPPORTUNITY_TYPES = ("New Customer", "Existing Customer - Upgrade", "Existing Customer - Renewal")

USER = ObjectDef(
    "User", "User", "Users", "005",
    (
        *_system(owner=False),
        _f("Username", "string", "Username", 80, required=True, unique=True, id_lookup=True),
        _f("FirstName", "string", "First Name", 40),
        _f("LastName", "string", "Last Name", 80, required=True),
        _f("Name", "string", "Full Name", 121, calculated=True, id_lookup=True),
        _f("Email", "email", "Email", 128, required=True),
        _f("IsActive", "boolean", "Active", defaulted=True),
        _f("TimeZoneSidKey", "picklist", "Time Zone", 40, required=True,
           picklist=("America/New_York", "Europe/Berlin", "GMT"), restricted=True),
    ),
)  # fmt: skip

ACCOUNT = ObjectDef(
    "Account", "Account", "Accounts", "001",
    (
        *_system(),
        _f("Name", "string", "Account Name", 255, required=True, id_lookup=True),
        _f("Type", "picklist", "Account Type", 255, picklist=ACCOUNT_TYPES),
        _f("Industry", "picklist", "Industry", 255, picklist=INDUSTRIES),
        _f("ParentId", "reference", "Parent Account ID", 18, reference_to=("Account",),
           relationship="Parent"),
        _f("BillingStreet", "textarea", "Billing Street", 255),
        _f("BillingCity", "string", "Billing City", 40),
        _f("BillingPostalCode", "string", "Billing Zip/Postal Code", 20),
        _f("BillingCountry", "string", "Billing Country", 80),
        _f("Phone", "phone", "Account Phone", 40),
        _f("Website", "url", "Website", 255),
        _f("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        _f("NumberOfEmployees", "int", "Employees", precision=8),
        _f("Description", "textarea", "Account Description", 32000),
        _f("Ext_Id__c", "string", "External Id", 40, external_id=True, unique=True,
           id_lookup=True),
        _key_field(),
    ),
    children=(("Contacts", "Contact", "AccountId"), ("Opportunities", "Opportunity", "AccountId"),
              ("ChildAccounts", "Account", "ParentId")),
)  # fmt: skip

CONTACT = ObjectDef(
    "Contact", "Contact", "Contacts", "003",
    (
        *_system(),
        _f("AccountId", "reference", "Account ID", 18, reference_to=("Account",),
           relationship="Account"),
        _f("Salutation", "picklist", "Salutation", 40, picklist=SALUTATIONS),
        _f("FirstName", "string", "First Name", 40),
        _f("LastName", "string", "Last Name", 80, required=True),
        _f("Name", "string", "Full Name", 121, calculated=True, id_lookup=True),
        _f("Title", "string", "Title", 128),
        _f("Email", "email", "Email", 80, id_lookup=True),
        _f("Phone", "phone", "Business Phone", 40),
        _f("MobilePhone", "phone", "Mobile Phone", 40),
        _f("MailingCity", "string", "Mailing City", 40),
        _f("MailingCountry", "string", "Mailing Country", 80),
        _f("Birthdate", "date", "Birthdate"),
        _f("HasOptedOutOfEmail", "boolean", "Email Opt Out", defaulted=True),
        _f("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        _f("Description", "textarea", "Contact Description", 32000),
        _f("Ext_Id__c", "string", "External Id", 40, external_id=True, id_lookup=True),
        _key_field(),
    ),
    children=(("Opportunities", "Opportunity", "ContactId"),),
)  # fmt: skip

LEAD = ObjectDef(
    "Lead", "Lead", "Leads", "00Q",
    (
        *_system(),
        _f("Salutation", "picklist", "Salutation", 40, picklist=SALUTATIONS),
        _f("FirstName", "string", "First Name", 40),
        _f("LastName", "string", "Last Name", 80, required=True),
        _f("Name", "string", "Full Name", 121, calculated=True, id_lookup=True),
        _f("Company", "string", "Company", 255, required=True),
        _f("Title", "string", "Title", 128),
        _f("Email", "email", "Email", 80, id_lookup=True),
        _f("Phone", "phone", "Phone", 40),
        _f("City", "string", "City", 40),
        _f("Country", "string", "Country", 80),
        _f("Status", "picklist", "Lead Status", 255, required=True, defaulted=True,
           picklist=LEAD_STATUSES, restricted=True),
        _f("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        _f("Industry", "picklist", "Industry", 255, picklist=INDUSTRIES),
        _f("Rating", "picklist", "Rating", 255, picklist=("Hot", "Warm", "Cold")),
        _f("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        _f("NumberOfEmployees", "int", "Employees", precision=8),
        _f("IsConverted", "boolean", "Converted", defaulted=True),
        _f("Description", "textarea", "Description", 32000),
        _f("Web_Id__c", "string", "Web Id", 40, external_id=True, unique=True, id_lookup=True),
        _f("Score__c", "double", "Score", precision=3, scale=0),
        _key_field(),
    ),
)  # fmt: skip

OPPORTUNITY = ObjectDef(
    "Opportunity", "Opportunity", "Opportunities", "006",
    (
        *_system(),
        _f("AccountId", "reference", "Account ID", 18, reference_to=("Account",),
           relationship="Account"),
        _f("ContactId", "reference", "Contact ID", 18, reference_to=("Contact",),
           relationship="Contact"),
        _f("Name", "string", "Name", 120, required=True, id_lookup=True),
        _f("StageName", "picklist", "Stage", 255, required=True, picklist=tuple(STAGES),
           restricted=True),
        _f("Amount", "currency", "Amount", precision=16, scale=2),
        _f("Probability", "percent", "Probability (%)", precision=3, scale=0, defaulted=True),
        _f("CloseDate", "date", "Close Date", required=True),
        _f("Type", "picklist", "Opportunity Type", 255, picklist=OPPORTUNITY_TYPES),
        _f("LeadSource", "picklist", "Lead Source", 255, picklist=LEAD_SOURCES),
        _f("IsClosed", "boolean", "Closed", calculated=True),
        _f("IsWon", "boolean", "Won", calculated=True),
        _f("Description", "textarea", "Description", 32000),
        _f("Ext_Id__c", "string", "External Id", 40, external_id=True, unique=True,
           id_lookup=True),
        _key_field(),
    ),
)  # fmt: skip

OBJECTS: dict[str, ObjectDef] = {o.name: o for o in (ACCOUNT, CONTACT, LEAD, OPPORTUNITY, USER)}
_LOWER = {name.lower(): o for name, o in OBJECTS.items()}
_BY_PREFIX = {o.prefix: o for o in OBJECTS.values()}


def find_object(name: str) -> ObjectDef | None:
    return _LOWER.get(name.lower())


def object_of_id(record_id: str) -> ObjectDef | None:
    return _BY_PREFIX.get(record_id[:3])
