"""API-level writes: sObject Collections and Bulk API 2.0 ingest jobs, with faults."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from salesforce_helpers import batch, read_all

from crmbridge.connectors.salesforce import OutcomeUnknownError, SalesforceConnector
from crmbridge.connectors.salesforce.writes import Operation, outcomes
from crmbridge.errors import ConfigError
from crmbridge.sandbox.salesforce import SalesforceSandbox, Settings


def _names(sf: SalesforceConnector, where: str) -> list[str]:
    from crmbridge.core.expressions import parse

    rows = read_all(sf, "Account", fields=["Name"], filter=parse(where, what="filter"))
    return sorted(r["Name"] for r in rows)


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_insert_reports_each_record_in_input_order(sf: SalesforceConnector, bulk: bool) -> None:
    rows = [
        {
            "Name": "W0",
            "Ext_Id__c": "W-0",
            "AnnualRevenue": Decimal("1000"),
            "Description": 'two\nlines, "quoted"',
        },
        {"Name": None, "Ext_Id__c": "W-1", "AnnualRevenue": None, "Description": None},
        {"Name": "W2", "Ext_Id__c": "ACC-00001", "AnnualRevenue": None, "Description": None},
        {"Name": "W3", "Ext_Id__c": "W-3", "AnnualRevenue": Decimal("5"), "Description": None},
    ]
    results = sf.writes().apply("insert", "Account", batch(rows), bulk=bulk)
    assert [r.success for r in results] == [True, False, False, True]
    assert results[1].error is not None
    assert results[1].error.startswith("REQUIRED_FIELD_MISSING")
    assert results[2].error is not None
    assert results[2].error.startswith("DUPLICATE_VALUE")
    ids = {r["Ext_Id__c"]: r["Id"] for r in read_all(sf, "Account", fields=["Id", "Ext_Id__c"])}
    assert results[0].id == ids["W-0"]
    assert results[3].id == ids["W-3"]
    written = read_all(sf, "Account", fields=["Description"], filter=None)
    assert 'two\nlines, "quoted"' in [r["Description"] for r in written]
    assert outcomes(results, Operation.INSERT).outcome.to_pylist() == [
        "created",
        "rejected",
        "rejected",
        "created",
    ]


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_upsert_by_external_id_with_a_parent_by_external_id(
    sf: SalesforceConnector, bulk: bool
) -> None:
    rows = [
        {"Ext_Id__c": "CON-00001", "LastName": "Renamed", "Account.Ext_Id__c": "ACC-00002"},
        {"Ext_Id__c": "CX-NEW", "LastName": "Fresh", "Account.Ext_Id__c": "ACC-00003"},
        {"Ext_Id__c": "CX-BAD", "LastName": "Orphan", "Account.Ext_Id__c": "NO-SUCH"},
    ]
    results = sf.writes().apply(
        "upsert", "Contact", batch(rows), external_id="Ext_Id__c", bulk=bulk
    )
    assert [(r.success, r.created) for r in results] == [
        (True, False),
        (True, True),
        (False, False),
    ]
    assert "Foreign key external ID: NO-SUCH not found" in str(results[2].error)
    assert outcomes(results, Operation.UPSERT).outcome.to_pylist() == [
        "updated",
        "created",
        "rejected",
    ]


@pytest.mark.parametrize("bulk", [False, True], ids=["collections", "bulk"])
def test_update_and_delete_by_id(
    sf: SalesforceConnector, sandbox: SalesforceSandbox, bulk: bool
) -> None:
    first, second = (r["Id"] for r in read_all(sf, "Account", fields=["Id"])[:2])
    missing = "0015g0000000zzzAAA"
    results = sf.writes().apply(
        "update",
        "Account",
        batch(
            [
                {"Id": first, "Phone": "111", "Website": None},
                {"Id": missing, "Phone": "222", "Website": None},
            ]
        ),
        bulk=bulk,
    )
    assert [r.success for r in results] == [True, False]
    assert results[1].id == missing or bulk
    row = sandbox.execute(
        'SELECT "Phone", "Website" FROM sobject_account WHERE "Id" = ?', (first,)
    )[0]
    assert row == {"Phone": "111", "Website": None}  # null clears, in both APIs
    results = sf.writes().apply(
        "delete", "Account", batch([{"Id": second}, {"Id": missing}]), bulk=bulk
    )
    assert [r.success for r in results] == [True, False]
    assert outcomes(results, Operation.DELETE).outcome.to_pylist() == ["deleted", "rejected"]


def test_hard_delete_goes_through_bulk(sf: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    record_id = read_all(sf, "Lead", fields=["Id"])[0]["Id"]
    results = sf.writes().apply("hardDelete", "Lead", batch([{"Id": record_id}]))
    assert results[0].success
    assert record_id not in {
        r["Id"] for r in read_all(sf, "Lead", fields=["Id"], include_deleted=True)
    }
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 1


def test_collections_are_cut_at_200_and_bulk_above_the_threshold(
    connect: object, sandbox: SalesforceSandbox
) -> None:
    sf = connect(bulk_write_threshold=450)  # type: ignore[operator]
    rows = [{"Name": f"Many {i}"} for i in range(450)]
    results = sf.writes().apply("insert", "Account", batch(rows))
    assert all(r.success for r in results)
    assert sandbox.faults.call_counts()["POST composite/sobjects"] == 3
    more = [{"Name": f"More {i}"} for i in range(451)]
    assert all(r.success for r in sf.writes().apply("insert", "Account", batch(more)))
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 1
    assert len(read_all(sf, "Account", fields=["Id"])) == 10 + 450 + 451


def test_bulk_results_are_mapped_back_by_content(sf: SalesforceConnector) -> None:
    # identical rows are interchangeable; the results come back shuffled
    rows = [{"LastName": "Same", "Title": "T"}] * 3 + [
        {"LastName": None, "Title": "x"},
        {"LastName": "Other", "Title": "U"},
    ]
    results = sf.writes().apply("insert", "Contact", batch(rows), bulk=True)
    assert [r.success for r in results] == [True, True, True, False, True]
    assert len({r.id for r in results[:3]}) == 3
    found = {
        r["Id"]: (r["LastName"], r["Title"])
        for r in read_all(sf, "Contact", fields=["Id", "LastName", "Title"])
    }
    assert found[results[4].id] == ("Other", "U")
    assert all(found[r.id] == ("Same", "T") for r in results[:3])


def test_records_of_a_job_that_stopped_are_unprocessed(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    sandbox.settings = Settings(bulk_stop_after=2)
    results = sf.writes().apply(
        "insert", "Account", batch([{"Name": f"S{i}"} for i in range(4)]), bulk=True
    )
    assert [r.processed for r in results] == [True, True, False, False]
    assert "not processed: Bulk job" in str(results[3].error)
    assert "processing stopped after 2 records" in str(results[3].error)


def test_a_lost_collections_answer_is_an_unknown_outcome(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    sandbox.faults.lose_next(1, only="composite/sobjects")
    with pytest.raises(OutcomeUnknownError, match="may or may not have been applied"):
        sf.writes().apply("insert", "Account", batch([{"Name": "Maybe"}]))
    assert _names(sf, "Name = 'Maybe'") == ["Maybe"]  # it was applied
    assert sandbox.faults.call_counts()["POST composite/sobjects"] == 1  # and not sent twice


def test_collections_failures_before_acting_are_retried(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    sandbox.faults.fail_next(1, 503, "", only="composite/sobjects")
    assert sf.writes().apply("insert", "Account", batch([{"Name": "Once"}]))[0].success
    assert _names(sf, "Name = 'Once'") == ["Once"]
    sandbox.faults.fail_next(1, 500, "", only="composite/sobjects")
    with pytest.raises(OutcomeUnknownError):
        sf.writes().apply("insert", "Account", batch([{"Name": "Twice"}]))
    sandbox.faults.drop_next(1, only="composite/sobjects")
    with pytest.raises(OutcomeUnknownError):
        sf.writes().apply("insert", "Account", batch([{"Name": "Dropped"}]))
    assert _names(sf, "Name = 'Dropped'") == []


def test_an_expired_session_during_writes_is_refreshed(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    sandbox.expire_sessions()
    assert sf.writes().apply("insert", "Account", batch([{"Name": "Fresh"}]))[0].success
    assert sf.api.logins == 2
    assert _names(sf, "Name = 'Fresh'") == ["Fresh"]


@pytest.mark.parametrize(
    ("fault", "route"),
    [
        ("drop", "jobs/ingest/{job}/batches"),
        ("lose", "jobs/ingest/{job}/batches"),
        ("drop", "PATCH jobs/ingest/{job}"),
        ("lose", "PATCH jobs/ingest/{job}"),
        ("drop", "GET jobs/ingest/{job}"),
        ("lose", "POST jobs/ingest"),
        ("drop", "successfulResults"),
    ],
)
def test_bulk_ingest_ends_with_a_known_result_despite_faults(
    sf: SalesforceConnector, sandbox: SalesforceSandbox, fault: str, route: str
) -> None:
    getattr(sandbox.faults, f"{fault}_next")(1, only=route)
    rows = [{"Name": f"F{i}", "Ext_Id__c": f"F-{i}"} for i in range(5)]
    results = sf.writes().apply("insert", "Account", batch(rows), bulk=True)
    assert all(r.success for r in results), results
    assert _names(sf, "Name LIKE 'F%'") == [f"F{i}" for i in range(5)]  # each exactly once


def test_all_or_none(sf: SalesforceConnector) -> None:
    rows = [{"Name": "AON-1"}, {"Name": None}]
    results = sf.writes().apply("insert", "Account", batch(rows), all_or_none=True)
    assert [r.success for r in results] == [False, False]
    assert str(results[0].error).startswith("ALL_OR_NONE_OPERATION_ROLLED_BACK")
    assert _names(sf, "Name = 'AON-1'") == []
    with pytest.raises(ConfigError, match="all-or-none"):
        sf.writes().apply("insert", "Account", batch(rows), all_or_none=True, bulk=True)


def test_malformed_requests_are_config_errors(sf: SalesforceConnector) -> None:
    with pytest.raises(ConfigError, match="needs an Id column"):
        sf.writes().apply("update", "Account", batch([{"Name": "x"}]))
    with pytest.raises(ConfigError, match="external id"):
        sf.writes().apply("upsert", "Account", batch([{"Name": "x"}]), external_id="Ext_Id__c")
    with pytest.raises(ConfigError, match="only the Id column"):
        sf.writes().apply("delete", "Account", batch([{"Id": "x", "Name": "y"}]))


def test_datetimes_and_dates_are_written_in_utc(
    sf: SalesforceConnector, sandbox: SalesforceSandbox
) -> None:
    when = dt.datetime(2024, 7, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = [{"LastName": "Born", "Birthdate": dt.date(1990, 2, 3)}]
    assert sf.writes().apply("insert", "Contact", batch(rows), bulk=True)[0].success
    found = sandbox.execute('SELECT "Birthdate" FROM sobject_contact WHERE "LastName" = \'Born\'')
    assert found == [{"Birthdate": "1990-02-03"}]
    from crmbridge.connectors.salesforce.values import csv_cell, json_value

    assert json_value(when) == "2024-07-01T07:30:00.000Z"
    assert csv_cell(None) == "#N/A"
    assert csv_cell(False) == "false"
