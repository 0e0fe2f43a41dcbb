"""Writing: every mode's outcomes and ids, the traps of the v4_1 API, and calls per batch."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sugarcrm_helpers import Connect, batch_of, connector_factory, read_all

from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.errors import ConfigError
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.sandbox.sugarcrm.vardefs import STUDIO_FIELDS
from crmbridge.testing.writes import write_records

SAVE_CALL = {"v4_1": "v4_1:set_entries", "v10": "v10:POST /bulk"}
LOOKUP_CALL = {"v4_1": "v4_1:get_entry_list", "v10": "v10:POST /Contacts/filter"}


def write(
    crm: SugarCrmConnector,
    rows: list[dict[str, Any]],
    mode: WriteMode,
    keys: tuple[str, ...] = (),
    module: str = "Contacts",
) -> WriteResult:
    return write_records(crm, module, batch_of(crm, module, rows), mode, keys=keys)


def outcomes(result: WriteResult) -> list[str]:
    return result.outcome.to_pylist()


def contact(n: int, **values: Any) -> dict[str, Any]:
    return {
        "first_name": f"Test{n}",
        "last_name": f"Person{n}",
        "email1": f"test{n}@example.org",
        "external_id_c": f"X-{n}",
        **values,
    }


def stored(crm: SugarCrmConnector, record_id: str, module: str = "Contacts") -> dict[str, Any]:
    own = [name for name in crm.describe(module).field_names if "." not in name]
    rows = read_all(crm, module, fields=own, filter=_id_is(record_id))
    assert len(rows) == 1
    return rows[0]


def _id_is(record_id: str) -> Any:
    from crmbridge.core.expressions import parse

    return parse(f"id = '{record_id}'", what="filter")


def test_insert_creates_records_with_the_ids_it_reports(crm: SugarCrmConnector) -> None:
    result = write(crm, [contact(1), contact(2, lead_source="Web Site")], WriteMode.INSERT)
    assert outcomes(result) == ["created", "created"]
    first, second = result.target_id.to_pylist()
    assert stored(crm, first)["email1"] == "test1@example.org"
    assert stored(crm, second)["lead_source"] == "Web Site"


def test_insert_of_an_existing_key_is_rejected(crm: SugarCrmConnector) -> None:
    created = write(crm, [contact(1)], WriteMode.INSERT).target_id[0].as_py()
    result = write(crm, [contact(1), contact(2)], WriteMode.INSERT, ("email1",))
    assert outcomes(result) == ["rejected", "created"]
    assert result.reason[0].as_py() == (
        f"a Contacts record with email1='test1@example.org' already exists (id {created})"
    )


def test_insert_with_a_chosen_id_uses_it_and_refuses_an_existing_one(
    crm: SugarCrmConnector,
) -> None:
    chosen = "00000000-0000-4000-8000-00000000abcd"
    result = write(crm, [contact(1, id=chosen)], WriteMode.INSERT)
    assert outcomes(result) == ["created"]
    assert result.target_id.to_pylist() == [chosen]
    assert stored(crm, chosen)["last_name"] == "Person1"
    again = write(crm, [contact(2, id=chosen)], WriteMode.INSERT)
    assert outcomes(again) == ["rejected"]
    assert "already exists" in again.reason[0].as_py()
    assert stored(crm, chosen)["last_name"] == "Person1", "the existing record was not touched"


def test_an_invalid_id_is_rejected_before_anything_is_sent(crm: SugarCrmConnector) -> None:
    result = write(crm, [contact(1, id="not a valid id!")], WriteMode.INSERT)
    assert outcomes(result) == ["rejected"]
    assert "not a valid SugarCRM id" in result.reason[0].as_py()


def test_update_of_a_missing_record_is_rejected_and_never_sent(
    crm: SugarCrmConnector, sandbox: SugarSandbox, api: str
) -> None:
    before = read_all(crm, "Contacts", fields=["id"])
    sandbox.faults.reset()
    ghost = "11111111-2222-4333-8444-555555555555"
    result = write(crm, [{"id": ghost, "last_name": "Nobody"}], WriteMode.UPDATE)
    assert outcomes(result) == ["rejected"]
    assert result.reason[0].as_py() == f"no Contacts record matches id='{ghost}'"
    by_key = write(crm, [contact(9)], WriteMode.UPDATE, ("external_id_c",))
    assert by_key.reason[0].as_py() == "no Contacts record matches external_id_c='X-9'"
    assert SAVE_CALL[api] not in sandbox.faults.call_counts()
    assert read_all(crm, "Contacts", fields=["id"]) == before


def test_update_changes_only_what_differs_and_reports_unchanged(
    crm: SugarCrmConnector, sandbox: SugarSandbox, api: str
) -> None:
    ids = write(crm, [contact(1), contact(2)], WriteMode.INSERT).target_id.to_pylist()
    sandbox.faults.reset()
    changed = [contact(1, title="Boss"), contact(2)]
    result = write(crm, changed, WriteMode.UPDATE, ("external_id_c",))
    assert outcomes(result) == ["updated", "unchanged"]
    assert result.target_id.to_pylist() == ids
    assert stored(crm, ids[0])["title"] == "Boss"
    assert sandbox.faults.call_counts()[SAVE_CALL[api]] == 1
    sandbox.faults.reset()
    again = write(crm, changed, WriteMode.UPDATE, ("external_id_c",))
    assert outcomes(again) == ["unchanged", "unchanged"]
    assert SAVE_CALL[api] not in sandbox.faults.call_counts(), "nothing to send"


def test_upsert_creates_and_updates_keeping_ids(crm: SugarCrmConnector) -> None:
    first = write(crm, [contact(1)], WriteMode.UPSERT, ("external_id_c",))
    assert outcomes(first) == ["created"]
    second = write(crm, [contact(1, title="CTO"), contact(2)], WriteMode.UPSERT, ("external_id_c",))
    assert outcomes(second) == ["updated", "created"]
    assert second.target_id[0].as_py() == first.target_id[0].as_py()
    assert stored(crm, first.target_id[0].as_py())["title"] == "CTO"


def test_upsert_with_update_fields_leaves_other_fields_of_existing_records(
    crm: SugarCrmConnector,
) -> None:
    first = write(crm, [contact(1, title="Buyer")], WriteMode.UPSERT, ("email1",))
    rows = [contact(1, title="CEO", lead_source="Web Site"), contact(2, title="CTO")]
    result = write_records(
        crm,
        "Contacts",
        batch_of(crm, "Contacts", rows),
        WriteMode.UPSERT,
        keys=["email1"],
        update_fields=["lead_source"],
    )
    assert outcomes(result) == ["updated", "created"]
    kept = stored(crm, first.target_id[0].as_py())
    assert kept["title"] == "Buyer"  # a standard field of an existing record is left alone
    assert kept["lead_source"] == "Web Site"
    assert stored(crm, result.target_id[1].as_py())["title"] == "CTO"  # created: every field
    nothing = write_records(
        crm,
        "Contacts",
        batch_of(crm, "Contacts", rows[:1]),
        WriteMode.UPSERT,
        keys=["email1"],
        update_fields=[],
    )
    assert outcomes(nothing) == ["unchanged"]


def test_upsert_and_update_with_an_empty_key_are_rejected(crm: SugarCrmConnector) -> None:
    # one rule for every mode that finds records: a record without its key finds nothing
    keyless = contact(1, external_id_c=None)
    for mode in (WriteMode.UPSERT, WriteMode.UPDATE):
        result = write(crm, [keyless], mode, ("external_id_c",))
        assert outcomes(result) == ["rejected"]
        assert result.reason[0].as_py() == "match key 'external_id_c' has no value"


def test_email_keys_match_case_insensitively_like_sugar(crm: SugarCrmConnector) -> None:
    created = write(crm, [contact(1)], WriteMode.INSERT).target_id[0].as_py()
    result = write(
        crm, [{"email1": " TEST1@Example.ORG ", "title": "Dr"}], WriteMode.UPSERT, ("email1",)
    )
    assert outcomes(result) == ["updated"]
    assert result.target_id.to_pylist() == [created]


def test_several_matches_for_one_key_are_rejected(crm: SugarCrmConnector) -> None:
    ids = write(crm, [contact(1), contact(2, email1="test1@example.org")], WriteMode.INSERT)
    result = write(
        crm, [{"email1": "test1@example.org", "title": "X"}], WriteMode.UPSERT, ("email1",)
    )
    assert outcomes(result) == ["rejected"]
    reason = result.reason[0].as_py()
    assert reason.startswith("2 Contacts records match email1='test1@example.org' (ids ")
    assert all(i in reason for i in ids.target_id.to_pylist())


def test_two_records_of_a_batch_matching_the_same_record(crm: SugarCrmConnector) -> None:
    # applied one after the other, as if written one by one: the second sees the first's
    created = write(crm, [contact(1)], WriteMode.INSERT).target_id[0].as_py()
    rows = [
        {"email1": "test1@example.org", "title": "A"},
        {"email1": "TEST1@example.org", "title": "B"},
        {"email1": " test1@example.org", "title": "B"},
    ]
    result = write(crm, rows, WriteMode.UPSERT, ("email1",))
    assert outcomes(result) == ["updated", "updated", "unchanged"]
    assert result.target_id.to_pylist() == [created] * 3
    assert stored(crm, created)["title"] == "B"


def test_composite_keys(crm: SugarCrmConnector) -> None:
    write(crm, [contact(1), contact(2)], WriteMode.INSERT)
    rows = [{"first_name": "Test2", "last_name": "Person2", "title": "Chief"}]
    result = write(crm, rows, WriteMode.UPDATE, ("first_name", "last_name"))
    assert outcomes(result) == ["updated"]
    missing = [{"first_name": "Test2", "last_name": "Person1", "title": "Chief"}]
    result = write(crm, missing, WriteMode.UPDATE, ("first_name", "last_name"))
    assert result.reason[0].as_py() == (
        "no Contacts record matches first_name='Test2', last_name='Person1'"
    )


def test_delete_is_soft_and_missing_records_are_rejected(crm: SugarCrmConnector) -> None:
    target = write(crm, [contact(1)], WriteMode.INSERT).target_id[0].as_py()
    result = write(crm, [contact(1), contact(2)], WriteMode.DELETE, ("external_id_c",))
    assert outcomes(result) == ["deleted", "rejected"]
    assert result.target_id[0].as_py() == target
    assert result.reason[1].as_py() == "no Contacts record matches external_id_c='X-2' to delete"
    assert target not in {r["id"] for r in read_all(crm, "Contacts", fields=["id"])}
    kept = read_all(crm, "Contacts", fields=["id", "deleted"], include_deleted=True)
    assert {"id": target, "deleted": True} in kept


def test_a_value_outside_the_options_is_rejected_unless_allowed(
    crm: SugarCrmConnector, connect: Connect, api: str
) -> None:
    result = write(crm, [contact(1, lead_source="Psychic")], WriteMode.INSERT)
    assert outcomes(result) == ["rejected"]
    assert result.reason[0].as_py() == (
        "'Psychic' is not one of the options of 'lead_source': Cold Call, Existing Customer, "
        "Self Generated, Employee, Partner, Public Relations, Direct Mail, Conference, "
        "Trade Show, Web Site, Word of mouth, Email, Campaign, Other"
    )
    lenient = connect(api, allow_unknown_enum_values=True)
    assert outcomes(write(lenient, [contact(1, lead_source="Psychic")], WriteMode.INSERT)) == [
        "created"
    ]


def test_over_long_values_are_rejected_not_truncated(crm: SugarCrmConnector) -> None:
    result = write(crm, [contact(1, last_name="x" * 101)], WriteMode.INSERT)
    assert outcomes(result) == ["rejected"]
    assert result.reason[0].as_py().endswith("is 101 characters, the limit is 100")


def test_typed_values_round_trip(crm: SugarCrmConnector) -> None:
    row = {
        "name": "Big deal & <b>more</b>",
        "amount": Decimal("12345.678900"),
        "date_closed": dt.date(2025, 2, 28),
        "sales_stage": "Prospecting",
        "probability": 40,
    }
    target = write(crm, [row], WriteMode.INSERT, module="Opportunities").target_id[0].as_py()
    back = stored(crm, target, "Opportunities")
    assert {k: back[k] for k in row} == row
    again = write(crm, [{**row, "id": target}], WriteMode.UPDATE, module="Opportunities")
    assert outcomes(again) == ["unchanged"]


def test_read_only_fields_cannot_be_written(crm: SugarCrmConnector) -> None:
    with pytest.raises(ConfigError, match="'date_modified' is maintained by the CRM"):
        write(crm, [{"last_name": "x", "date_modified": None}], WriteMode.INSERT)


def test_match_keys_must_be_columns(crm: SugarCrmConnector) -> None:
    with pytest.raises(ConfigError, match="match key 'email1' is not among the written fields"):
        write(crm, [{"last_name": "x"}], WriteMode.UPDATE, ("email1",))


def test_one_lookup_and_one_write_call_per_batch(
    crm: SugarCrmConnector, sandbox: SugarSandbox, api: str
) -> None:
    write(crm, [contact(n) for n in range(150)], WriteMode.INSERT)
    sandbox.faults.reset()
    rows = [contact(n, title="Changed" if n % 2 else None) for n in range(100, 250)]
    for start in range(0, len(rows), 50):
        result = write(crm, rows[start : start + 50], WriteMode.UPSERT, ("external_id_c",))
        assert len(result) == 50
    counts = sandbox.faults.call_counts()
    # per batch one look-up and one write, plus for the two batches that create records
    # (with an e-mail address) one read-back of the addresses the CRM stored
    assert counts[LOOKUP_CALL[api]] == 3 + 2
    assert counts[SAVE_CALL[api]] == 3
    assert len(read_all(crm, "Contacts", fields=["id"])) == 20 + 250


def test_contacts_duplicate_check_does_not_swallow_new_records() -> None:
    box = SugarSandbox(seed=False, duplicate_check=True, studio_fields=STUDIO_FIELDS)
    try:
        with connector_factory(box.wsgi_app) as make:
            crm = make("v4_1")
            first = write(crm, [contact(1)], WriteMode.INSERT).target_id[0].as_py()
            again = write(crm, [contact(1)], WriteMode.INSERT)
            assert outcomes(again) == ["created"]
            assert again.target_id[0].as_py() != first
            assert len(read_all(crm, "Contacts", fields=["id"])) == 2
    finally:
        box.close()
