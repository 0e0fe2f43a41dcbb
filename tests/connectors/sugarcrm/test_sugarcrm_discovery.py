"""Modules, fields and the mapping of Sugar's field types."""

from __future__ import annotations

import pytest

from crmbridge.connectors import registry
from crmbridge.connectors.base import CreateIdentity, DeleteReporting
from crmbridge.connectors.sugarcrm import SugarCrmConnector, SugarCrmSettings
from crmbridge.connectors.sugarcrm.discovery import RawField, RawModule, build_meta, to_field
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import FieldType


def test_the_connector_is_registered() -> None:
    assert registry.get("sugarcrm") is SugarCrmConnector
    assert SugarCrmConnector.settings_model is SugarCrmSettings


def test_modules_are_the_objects(crm: SugarCrmConnector) -> None:
    assert {"Accounts", "Contacts", "Leads", "Opportunities", "Notes"} <= set(crm.objects())


def test_fields_are_typed(crm: SugarCrmConnector) -> None:
    accounts = crm.describe("Accounts")
    assert accounts.id_field == "id"
    name = accounts.field("name")
    assert (name.type, name.length, name.required) == (FieldType.STRING, 150, True)
    kind = accounts.field("account_type")
    assert kind.type is FieldType.ENUM
    assert "Customer" in (kind.allowed_values or ())
    for system in ("date_entered", "date_modified", "created_by", "modified_user_id", "deleted"):
        assert accounts.field(system).read_only, system
    assert accounts.field("date_modified").type is FieldType.DATETIME
    assert accounts.field("deleted").type is FieldType.BOOLEAN
    assert accounts.field("id").key
    opportunities = crm.describe("Opportunities")
    amount = opportunities.field("amount")
    assert (amount.type, amount.precision, amount.scale) == (FieldType.DECIMAL, 26, 6)
    assert opportunities.field("date_closed").type is FieldType.DATE
    assert opportunities.field("probability").type is FieldType.INTEGER
    leads = crm.describe("Leads")
    assert leads.field("lead_score_c").type is FieldType.INTEGER
    contacts = crm.describe("Contacts")
    assert contacts.field("description").type is FieldType.TEXT
    assert contacts.field("email1").length == 100
    assert contacts.field("account_id").type is FieldType.ID


def test_link_fields_are_reported_apart(crm: SugarCrmConnector) -> None:
    assert not crm.describe("Accounts").has("contacts")
    assert crm.links("Accounts")["opportunities"] == "Opportunities"


def test_capabilities(connect: object) -> None:
    crm = SugarCrmConnector(
        "crm", SugarCrmSettings(url="http://x", username="u", password="p", max_batch_size=50)
    )
    caps = crm.capabilities()
    assert caps.write_modes == frozenset(WriteMode)
    assert (caps.incremental, caps.match, caps.max_batch_size) == (True, True, 50)
    assert caps.deletes is DeleteReporting.FLAG
    assert caps.create_identity is CreateIdentity.CLIENT_ID
    assert "email1" in caps.pushdown


@pytest.mark.parametrize(
    ("raw", "ftype", "extra"),
    [
        (RawField("website", "url", "255"), FieldType.STRING, {"length": 255}),
        (RawField("notes", "html"), FieldType.TEXT, {}),
        (RawField("case_number", "autoincrement"), FieldType.INTEGER, {"read_only": True}),
        (RawField("price", "decimal", "10,2"), FieldType.DECIMAL, {"precision": 10, "scale": 2}),
        (RawField("amount", "currency", "26"), FieldType.DECIMAL, {"precision": 26, "scale": 6}),
        (RawField("ratio", "float"), FieldType.FLOAT, {}),
        (RawField("start", "datetimecombo"), FieldType.DATETIME, {}),
        (RawField("assigned_user_id", "relate", "36"), FieldType.ID, {}),
        (RawField("created_by", "assigned_user_name"), FieldType.ID, {"read_only": True}),
        (RawField("account_name", "relate", "255"), FieldType.STRING, {}),
        (
            RawField("status", "enum", "100", options=("", "New")),
            FieldType.ENUM,
            {"allowed_values": ("", "New")},
        ),
        (  # a list of options (stored as ^a^,^b^ in a TEXT column)
            RawField("tags", "multienum", options=("", "a", "b")),
            FieldType.LIST,
            {"allowed_values": ("a", "b"), "length": None},
        ),
        (RawField("notes", "text"), FieldType.TEXT, {"max_bytes": 65_535}),
        (RawField("body", "longtext"), FieldType.TEXT, {"max_bytes": None}),
        (  # a varchar without len is a varchar(255) column
            RawField("primary_address_country", "varchar"),
            FieldType.STRING,
            {"length": 255},
        ),
        (  # Notes portal_flag: marked required, stored as 0 when not given
            RawField("portal_flag", "bool", required=True),
            FieldType.BOOLEAN,
            {"required": False},
        ),
        (RawField("full_name", "fullname", "510"), FieldType.STRING, {"read_only": True}),
        (RawField("gadget", "something_new"), FieldType.STRING, {}),
    ],
)
def test_sugar_types_map_onto_field_types(
    raw: RawField, ftype: FieldType, extra: dict[str, object]
) -> None:
    field = to_field(raw)
    assert field.type is ftype
    for name, value in extra.items():
        assert getattr(field, name) == value, name


def test_columns_for_filters() -> None:
    meta = build_meta(
        RawModule(
            "ProjectTask",
            [
                RawField("id", "id"),
                RawField("name", "name"),
                RawField("score_c", "int"),
                RawField("email1", "varchar"),
                RawField("parent_name", "parent"),
            ],
        ),
        {},
    )
    assert meta.table == "project_task"
    assert meta.column("name") == "project_task.name"
    assert meta.column("score_c") == "project_task_cstm.score_c"
    assert meta.column("email1") is None
    assert meta.column("parent_name") is None
    assert build_meta(RawModule("abc_Widgets", []), {"abc_Widgets": "widgets"}).table == "widgets"
