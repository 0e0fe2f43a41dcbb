"""apply: creates, updates and deletes written the way a run writes them (testing.writes),
through sObject Collections and Bulk API 2.0 on the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from salesforce_helpers import Connect, count, read_all, typed

from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.errors import ConfigError
from crmbridge.runner.outputs import CODE, OUTCOME, REASON
from crmbridge.sandbox.salesforce import SalesforceSandbox
from crmbridge.testing.writes import plan_records, write_records


def _write(
    sf: SalesforceConnector,
    object: str,
    rows: list[dict[str, Any]],
    mode: WriteMode,
    keys: list[str],
    **kw: Any,
) -> WriteResult:
    return write_records(sf, object, typed(sf, object, rows), mode, keys=keys, **kw)


def _account(sandbox: SalesforceSandbox, ext: str) -> dict[str, Any]:
    [row] = sandbox.execute(
        'SELECT * FROM sobject_account WHERE "Ext_Id__c" = ? AND "IsDeleted" = 0', (ext,)
    )
    return row


def test_an_upsert_by_external_id_creates_updates_and_leaves_unchanged(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    rows = [
        {"Ext_Id__c": "ACC-00001", "Name": 'Acme & Sons "Q"', "Phone": "+1 555"},
        {"Ext_Id__c": "NEW-1", "Name": "New One", "Phone": None},
        {"Ext_Id__c": "ACC-00002", "Name": "O'Brien Brothers Ltd", "Phone": None},
    ]
    sandbox.execute('UPDATE sobject_account SET "Phone" = NULL WHERE "Ext_Id__c" = \'ACC-00002\'')
    first = _write(sf, "Account", rows, WriteMode.UPSERT, ["Ext_Id__c"])
    assert first.outcome.to_pylist() == ["updated", "created", "unchanged"]
    assert first.target_id[0].as_py() == _account(sandbox, "ACC-00001")["Id"]
    assert first.target_id[1].as_py() == _account(sandbox, "NEW-1")["Id"]
    counts = sandbox.faults.call_counts()
    assert counts["PATCH composite/sobjects/{object}/{field}"] == 1  # the create: an upsert
    assert counts["PATCH composite/sobjects"] == 1  # the update: by Id
    again = _write(sf, "Account", rows, WriteMode.UPSERT, ["Ext_Id__c"])
    assert again.outcome.to_pylist() == ["unchanged"] * 3
    assert count(sandbox, "sobject_account", '"Ext_Id__c" = ?', "NEW-1") == 1


def test_update_mode_never_inserts(sf: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    rows = [{"Ext_Id__c": "ACC-00003", "Phone": "1"}, {"Ext_Id__c": "NOPE", "Phone": "2"}]
    result = _write(sf, "Account", rows, WriteMode.UPDATE, ["Ext_Id__c"])
    assert result.outcome.to_pylist() == ["updated", "rejected"]
    assert result.codes.to_pylist()[1] == "not_found"
    assert count(sandbox, "sobject_account", '"Ext_Id__c" = ?', "NOPE") == 0
    assert "PATCH composite/sobjects/{object}/{field}" not in sandbox.faults.call_counts()


def test_a_null_clears_a_field(sf: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    rows = [{"Ext_Id__c": "ACC-00004", "Phone": None}]
    result = _write(sf, "Account", rows, WriteMode.UPDATE, ["Ext_Id__c"])
    assert result.outcome.to_pylist() == ["updated"]
    assert _account(sandbox, "ACC-00004")["Phone"] is None


def test_only_the_changed_fields_are_sent(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    rows = [{"Ext_Id__c": "ACC-00005", "Phone": "7", "Website": "a.example"}]
    _write(sf, "Account", rows, WriteMode.UPSERT, ["Ext_Id__c"])
    planned = plan_records(
        sf,
        "Account",
        typed(sf, "Account", [{"Ext_Id__c": "ACC-00005", "Phone": "8", "Website": "a.example"}]),
        WriteMode.UPSERT,
        keys=["Ext_Id__c"],
    )
    sandbox.execute('UPDATE sobject_account SET "Website" = ? WHERE "Ext_Id__c" = ?',
                    ("b.example", "ACC-00005"))  # fmt: skip
    outcomes = planned.writer.apply(planned.plan)
    assert outcomes.column(OUTCOME).to_pylist() == ["updated"]
    stored = _account(sandbox, "ACC-00005")
    assert (stored["Phone"], stored["Website"]) == ("8", "b.example")


def test_creates_leave_out_nulls_so_salesforce_fills_in_its_defaults(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    rows = [{"Web_Id__c": "W-1", "LastName": "Lee", "Company": "Co", "Status": None}]
    assert _write(sf, "Lead", rows, WriteMode.INSERT, ["Web_Id__c"]).outcome.to_pylist() == [
        "created"
    ]
    [lead] = sandbox.execute('SELECT "Status" FROM sobject_lead WHERE "Web_Id__c" = \'W-1\'')
    assert lead["Status"] == "Open - Not Contacted"


def test_references_are_set_and_cleared_through_the_related_external_id(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    def contact() -> dict[str, Any]:
        [row] = sandbox.execute("SELECT * FROM sobject_contact WHERE \"Ext_Id__c\" = 'R-1'")
        return row

    rows = [{"Ext_Id__c": "R-1", "LastName": "Ref", "Account.Ext_Id__c": "ACC-00002"}]
    keys = ["Ext_Id__c"]
    assert _write(sf, "Contact", rows, WriteMode.UPSERT, keys).outcome.to_pylist() == ["created"]
    assert contact()["AccountId"] == _account(sandbox, "ACC-00002")["Id"]
    again = _write(sf, "Contact", rows, WriteMode.UPSERT, keys)
    assert again.outcome.to_pylist() == ["unchanged"]
    rows[0]["Account.Ext_Id__c"] = "ACC-00003"
    assert _write(sf, "Contact", rows, WriteMode.UPSERT, keys).outcome.to_pylist() == ["updated"]
    assert contact()["AccountId"] == _account(sandbox, "ACC-00003")["Id"]
    rows[0]["Account.Ext_Id__c"] = None
    assert _write(sf, "Contact", rows, WriteMode.UPSERT, keys).outcome.to_pylist() == ["updated"]
    assert contact()["AccountId"] is None
    rows[0]["Account.Ext_Id__c"] = "NO-SUCH"
    bad = _write(sf, "Contact", rows, WriteMode.UPSERT, keys)
    assert (bad.outcome[0].as_py(), bad.codes[0].as_py()) == ("rejected", "reference")
    assert "Foreign key external ID: NO-SUCH not found" in str(bad.reason[0].as_py())


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_refusals_are_rejections_with_their_codes(connect: Connect, bulk: bool) -> None:
    sf = connect(bulk_write_threshold=0 if bulk else 2000)
    rows = [
        {"Name": "Dup", "Ext_Id__c": "ACC-00001"},  # the external id is unique
        {"Name": "Long " + "x" * 300, "Ext_Id__c": None},
        {"Name": "Fine", "Ext_Id__c": None},
    ]
    result = _write(sf, "Account", rows, WriteMode.INSERT, ["Name"], checks=False)
    assert result.outcome.to_pylist() == ["rejected", "rejected", "created"]
    assert result.codes.to_pylist()[:2] == ["duplicate_key", "invalid_value"]
    assert str(result.reason[0].as_py()).startswith("DUPLICATE_VALUE")
    assert str(result.reason[1].as_py()).startswith("STRING_TOO_LONG")


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_a_record_deleted_since_the_plan_is_not_found(
    connect: Connect, sandbox: SalesforceSandbox, bulk: bool
) -> None:
    sf = connect(bulk_write_threshold=0 if bulk else 2000)
    for mode, ext in ((WriteMode.UPDATE, "ACC-00006"), (WriteMode.DELETE, "ACC-00007")):
        rows = [{"Ext_Id__c": ext, "Phone": "5"}]
        planned = plan_records(sf, "Account", typed(sf, "Account", rows), mode,
                               keys=["Ext_Id__c"])  # fmt: skip
        sandbox.execute('UPDATE sobject_account SET "IsDeleted" = 1 WHERE "Ext_Id__c" = ?', (ext,))
        outcomes = planned.writer.apply(planned.plan)
        assert outcomes.column(OUTCOME).to_pylist() == ["rejected"]
        assert outcomes.column(CODE).to_pylist() == ["not_found"]
        assert "deleted since the plan" in outcomes.column(REASON)[0].as_py()


def test_above_the_threshold_every_kind_goes_through_bulk(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(bulk_write_threshold=5)
    rows = [{"Ext_Id__c": f"B-{i}", "Name": f"B {i}", "Phone": None} for i in range(12)]
    keys = ["Ext_Id__c"]
    assert (
        _write(sf, "Account", rows, WriteMode.UPSERT, keys).outcome.to_pylist() == ["created"] * 12
    )
    changed = [dict(r, Phone=str(i)) for i, r in enumerate(rows)]
    assert (
        _write(sf, "Account", changed, WriteMode.UPSERT, keys).outcome.to_pylist()
        == ["updated"] * 12
    )
    gone = _write(sf, "Account", [{"Ext_Id__c": r["Ext_Id__c"]} for r in rows],
                  WriteMode.DELETE, keys)  # fmt: skip
    assert gone.outcome.to_pylist() == ["deleted"] * 12
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 3
    assert "PATCH composite/sobjects" not in sandbox.faults.call_counts()
    assert count(sandbox, "sobject_account", '"Ext_Id__c" LIKE \'B-%\' AND "IsDeleted" = 1') == 12


def test_hard_delete_skips_the_recycle_bin(connect: Connect, sandbox: SalesforceSandbox) -> None:
    sf = connect(hard_delete=True)
    rows = [{"Ext_Id__c": "ACC-00008"}, {"Ext_Id__c": "GONE"}]
    result = _write(sf, "Account", rows, WriteMode.DELETE, ["Ext_Id__c"])
    assert result.outcome.to_pylist() == ["deleted", "rejected"]
    assert count(sandbox, "sobject_account", '"Ext_Id__c" = ?', "ACC-00008") == 0
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 1


def test_what_salesforce_maintains_cannot_be_written(sf: SalesforceConnector) -> None:
    rows = [{"Ext_Id__c": "ACC-00001", "SystemModstamp": None}]
    with pytest.raises(ConfigError, match="'SystemModstamp' is maintained by Salesforce"):
        _write(sf, "Account", rows, WriteMode.UPSERT, ["Ext_Id__c"], checks=False)


def test_a_record_cannot_be_created_with_an_id(sf: SalesforceConnector) -> None:
    rows = [{"Id": "0015g00000000zzAAA", "Name": "Mine"}]
    result = _write(sf, "Account", rows, WriteMode.UPSERT, ["Id"], checks=False)
    assert result.outcome.to_pylist() == ["rejected"]
    assert "Salesforce makes record ids" in str(result.reason[0].as_py())
    assert read_all(sf, "Account", fields=["Name"], filter=None)  # nothing else happened


def test_an_update_by_id_in_any_form(sf: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    record_id = "0015g000000000AAAQ"
    rows = [{"Id": record_id[:15].lower() + "aaq", "Phone": "15"}]
    result = _write(sf, "Account", rows, WriteMode.UPDATE, ["Id"], checks=False)
    assert result.outcome.to_pylist() == ["updated"]
    assert result.target_id.to_pylist() == [record_id]
    [row] = sandbox.execute('SELECT "Phone" FROM sobject_account WHERE "Id" = ?', (record_id,))
    assert row["Phone"] == "15"


def test_a_key_repeated_in_a_batch_creates_then_updates_one_record(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    rows = [
        {"Email": "twice@x.example", "LastName": "First", "Company": "Co"},
        {"Email": "TWICE@x.example ", "LastName": "Second", "Company": "Co"},
    ]
    result = _write(sf, "Lead", rows, WriteMode.UPSERT, ["Email"])
    assert result.outcome.to_pylist() == ["created", "updated"]
    assert result.target_id[0].as_py() == result.target_id[1].as_py()
    found = sandbox.execute('SELECT "LastName" FROM sobject_lead WHERE "Email" LIKE \'twice@%\'')
    assert found == [{"LastName": "Second"}]


def test_a_dry_run_plans_what_the_real_run_does_with_ids_and_references(
    sf: SalesforceConnector,
) -> None:
    keys = ["Ext_Id__c"]
    # a 15-character account id is the same reference as the 18-character one stored
    same = [{"Ext_Id__c": "CON-00001", "LastName": "Jensen", "AccountId": "0015g0000000001"}]
    assert _write(sf, "Contact", same, WriteMode.UPSERT, keys).outcome.to_pylist() == ["unchanged"]
    by_id = [{"Ext_Id__c": "D-1", "LastName": "Dry", "AccountId": "0015g0000000003aaa"}]
    by_ext = [
        {"Ext_Id__c": "CON-00002", "LastName": "García", "Account.Ext_Id__c": "ACC-00002"},
        {"Ext_Id__c": "D-2", "LastName": "Run", "Account.Ext_Id__c": "ACC-00004"},
    ]
    for rows, expected in ((by_id, ["created"]), (by_ext, ["updated", "created"])):
        dry = _write(sf, "Contact", rows, WriteMode.UPSERT, keys, dry_run=True)
        real = _write(sf, "Contact", rows, WriteMode.UPSERT, keys)
        assert dry.outcome.to_pylist() == real.outcome.to_pylist() == expected
        again = _write(sf, "Contact", rows, WriteMode.UPSERT, keys)
        assert again.outcome.to_pylist() == ["unchanged"] * len(rows)
