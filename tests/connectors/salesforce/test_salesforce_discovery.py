"""Discovery: objects and describe mapped onto the schema vocabulary."""

from __future__ import annotations

import pytest

from crmbridge.connectors.base import DeleteReporting
from crmbridge.connectors.salesforce import SalesforceConnector
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
    sf.describe("Lead")
    sf.describe("Lead")
    counts = sandbox.faults.call_counts()  # type: ignore[attr-defined]
    assert counts["GET sobjects/{object}/describe"] == 1
    assert counts["GET sobjects"] == 1


def test_capabilities_declare_reading_only_for_now(sf: SalesforceConnector) -> None:
    caps = sf.capabilities()
    assert caps.write_modes == frozenset()
    assert (caps.read, caps.incremental, caps.match) == (True, True, False)
    assert caps.deletes is DeleteReporting.FLAG
    assert sf.describe("Account").deleted_field == "IsDeleted"
