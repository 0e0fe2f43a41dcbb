"""Discovery: objects and describe mapped onto the schema vocabulary."""

from __future__ import annotations

import pytest
from salesforce_helpers import Connect

from crmbridge.connectors.base import CreateIdentity, DeleteReporting
from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError


def test_objects_are_the_queryable_sobjects(sf: SalesforceConnector) -> None:
    assert sf.objects() == ["Account", "Contact", "Lead", "Opportunity", "User"]


def test_field_types_lengths_and_flags(sf: SalesforceConnector) -> None:
    schema = sf.describe("Account")
    assert schema.id_field == "Id"
    name = schema.field("Name")
    assert (name.type, name.length, name.required, name.read_only) == (
        FieldType.STRING,
        255,
        True,
        False,
    )
    assert schema.field("Id").key
    assert schema.field("Id").type is FieldType.ID
    stamp = schema.field("SystemModstamp")
    assert (stamp.type, stamp.read_only) == (FieldType.DATETIME, True)
    revenue = schema.field("AnnualRevenue")
    assert (revenue.type, revenue.precision, revenue.scale) == (FieldType.DECIMAL, 18, 0)
    assert schema.field("NumberOfEmployees").type is FieldType.INTEGER
    assert schema.field("Description").type is FieldType.TEXT
    assert schema.field("OwnerId").required is False  # defaulted on create


def test_picklists_restricted_are_enums_others_strings(sf: SalesforceConnector) -> None:
    stage = sf.describe("Opportunity").field("StageName")
    assert stage.type is FieldType.ENUM
    assert stage.allowed_values is not None
    assert "Closed Won" in stage.allowed_values
    industry = sf.describe("Account").field("Industry")
    assert (industry.type, industry.allowed_values) == (FieldType.STRING, None)
    close = sf.describe("Opportunity").field("CloseDate")
    assert (close.type, close.required) == (FieldType.DATE, True)


def test_external_ids_id_lookups_and_relationships(sf: SalesforceConnector) -> None:
    meta = sf.meta("Contact")
    assert meta.external_ids == ["Ext_Id__c", "Crmbridge_Key__c"]
    assert meta.relationships["Account"] == ("AccountId", ("Account",))
    assert meta.info["Email"].id_lookup
    assert not meta.filterable("Description")
    assert sf.meta("Account").child_relationships["Contacts"] == "Contact"


def test_unknown_object_suggests_close_names(sf: SalesforceConnector) -> None:
    with pytest.raises(ConfigError, match="unknown object 'Acount'; did you mean 'Account'"):
        sf.describe("Acount")


def test_describe_is_asked_once_per_object(sf: SalesforceConnector, sandbox: object) -> None:
    sf.describe("Lead")  # Lead, and User (its owner) for the external ids of the owner
    sf.describe("Lead")
    sf.describe("User")
    counts = sandbox.faults.call_counts()  # type: ignore[attr-defined]
    assert counts["GET sobjects/{object}/describe"] == 2
    assert counts["GET sobjects"] == 1


def test_references_through_external_ids_are_fields_read_on_request(
    sf: SalesforceConnector,
) -> None:
    schema = sf.describe("Opportunity")
    related = [f for f in schema.fields if f.on_request]
    assert [f.name for f in related] == [
        "Account.Ext_Id__c",
        "Account.Crmbridge_Key__c",
        "Contact.Ext_Id__c",
        "Contact.Crmbridge_Key__c",
    ]
    ext = schema.field("Account.Ext_Id__c")
    assert (ext.type, ext.length, ext.read_only, ext.required) == (
        FieldType.STRING,
        40,
        False,
        False,
    )
    assert ext.label == "Account: External Id"
    assert "Account.Ext_Id__c" not in schema.default_field_names
    assert sf.meta("Opportunity").related["Account.Ext_Id__c"].reference == "AccountId"
    assert sf.describe("Account").has("Parent.Ext_Id__c")  # a reference to its own object


def test_key_rules_are_what_salesforce_compares(sf: SalesforceConnector) -> None:
    contact = sf.describe("Contact")
    assert contact.field("LastName").key_rule is KeyRule.CASEFOLD  # SOQL ignores case
    assert contact.field("Ext_Id__c").key_rule is KeyRule.CASEFOLD
    assert contact.field("Phone").key_rule is KeyRule.CASEFOLD  # text to Salesforce
    assert contact.field("Email").key_rule is KeyRule.EMAIL
    assert contact.field("Id").key_rule is KeyRule.EXACT  # in the 18-character form
    assert contact.field("AccountId").key_rule is KeyRule.EXACT
    assert contact.field("Birthdate").key_rule is KeyRule.EXACT
    assert contact.field("Crmbridge_Key__c").key_rule is KeyRule.EXACT  # caseSensitive


def test_capabilities_declare_every_write_mode(connect: Connect) -> None:
    caps = connect().capabilities()
    assert caps.write_modes == frozenset(WriteMode)
    assert (caps.read, caps.incremental, caps.match) == (True, True, True)
    assert caps.deletes is DeleteReporting.FLAG
    assert caps.create_identity is CreateIdentity.KEY
    keyed = connect(operation_key_field="Crmbridge_Key__c").capabilities()
    assert keyed.create_identity is CreateIdentity.CLIENT_ID
    assert connect().describe("Account").deleted_field == "IsDeleted"
