"""Reads: SOQL through REST with nextRecordsUrl paging, queryAll, incremental by SystemModstamp
in keyset order, cursor expiry, and Bulk API 2.0 query jobs above the threshold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
from salesforce_helpers import Connect, add_accounts, read_all

from crmbridge.connectors.base import ReadRequest, Since
from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.sandbox.salesforce import SalesforceSandbox

UTC = dt.UTC


def test_read_returns_typed_columns_in_order(sf: SalesforceConnector) -> None:
    names = ["Name", "AnnualRevenue", "SystemModstamp", "IsDeleted", "NumberOfEmployees"]
    batches = list(sf.read(ReadRequest("Account", fields=names)))
    schema = sf.describe("Account")
    for batch in batches:
        assert batch.schema.names == names
        for name in names:
            assert batch.schema.field(name).type == schema.field(name).arrow_type
    rows = [r for b in batches for r in b.to_pylist()]
    assert len(rows) == 10
    assert rows[0]["Name"] == 'Acme & Sons "Q"'
    assert rows[1]["AnnualRevenue"] == Decimal("37000000")
    assert rows[0]["SystemModstamp"] == dt.datetime(2024, 1, 2, 9, 0, tzinfo=UTC)


def test_every_default_field_when_none_are_named(sf: SalesforceConnector) -> None:
    batch = next(iter(sf.read(ReadRequest("Opportunity"))))
    assert batch.schema.names == sf.describe("Opportunity").default_field_names
    row = batch.to_pylist()[0]
    assert isinstance(row["CloseDate"], dt.date)
    assert isinstance(row["Amount"], Decimal)


def test_pages_follow_next_records_url(connect: Connect, sandbox: SalesforceSandbox) -> None:
    add_accounts(sandbox, 450)
    sf = connect(page_size=200)
    rows = read_all(sf, "Account", fields=["Id"], batch_size=1000)
    assert len(rows) == 460
    assert [r["Id"] for r in rows] == sorted(r["Id"] for r in rows)  # ordered by Id
    assert sandbox.faults.call_counts()["GET query/{locator}"] == 2
    assert sf.last_reader is not None
    assert sf.last_reader.used == "rest"


def test_batches_respect_the_batch_size(connect: Connect, sandbox: SalesforceSandbox) -> None:
    add_accounts(sandbox, 30)
    sizes = [
        b.num_rows for b in connect().read(ReadRequest("Account", fields=["Id"], batch_size=7))
    ]
    assert max(sizes) <= 7
    assert sum(sizes) == 40


def test_an_empty_result_is_one_empty_batch(sf: SalesforceConnector) -> None:
    from crmbridge.core.expressions import parse

    f = parse("Name = 'nobody at all'", what="filter")
    batches = list(sf.read(ReadRequest("Account", fields=["Id", "Name"], filter=f)))
    assert [b.num_rows for b in batches] == [0]
    assert batches[0].schema.names == ["Id", "Name"]


def test_query_all_reads_deleted_rows(sf: SalesforceConnector, sandbox: SalesforceSandbox) -> None:
    first = read_all(sf, "Account", fields=["Id"])[0]["Id"]
    sandbox.execute('UPDATE sobject_account SET "IsDeleted" = 1 WHERE "Id" = ?', (first,))
    live = read_all(sf, "Account", fields=["Id"])
    every = read_all(sf, "Account", fields=["Id", "IsDeleted"], include_deleted=True)
    assert first not in {r["Id"] for r in live}
    assert {r["Id"]: r["IsDeleted"] for r in every}[first] is True
    assert sandbox.faults.call_counts()["GET queryAll"] == 1


def test_incremental_read_by_systemmodstamp_in_keyset_order(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    add_accounts(sandbox, 5, stamp="2024-05-01T00:00:00.000Z", prefix="Late")
    add_accounts(sandbox, 0)
    sandbox.execute(
        "UPDATE sobject_account SET \"SystemModstamp\" = '2024-04-01T00:00:00.000Z' "
        "WHERE \"Name\" = 'Late 4'"
    )
    sf = connect()
    since = Since("SystemModstamp", dt.datetime(2024, 4, 1, 0, 0, 0, 500000, tzinfo=UTC))
    rows = read_all(sf, "Account", fields=["Name", "SystemModstamp", "Id"], since=since)
    assert [r["Name"] for r in rows] == ["Late 0", "Late 1", "Late 2", "Late 3"]
    stamps = [(r["SystemModstamp"], r["Id"]) for r in rows]
    assert stamps == sorted(stamps)
    since = Since("SystemModstamp", dt.datetime(2024, 4, 1, tzinfo=UTC))
    assert len(read_all(sf, "Account", fields=["Id"], since=since)) == 5


def test_incremental_read_orders_by_the_given_key(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    add_accounts(sandbox, 3, stamp="2024-05-01T00:00:00.000Z")
    sandbox.execute('UPDATE sobject_account SET "Ext_Id__c" = "Name"')
    since = Since("SystemModstamp", dt.datetime(2024, 5, 1, tzinfo=UTC), key="Ext_Id__c")
    sf = connect(page_size=200)
    rows = read_all(sf, "Account", fields=["Ext_Id__c"], since=since)
    assert [r["Ext_Id__c"] for r in rows] == ["Bulk 0", "Bulk 1", "Bulk 2"]
    assert sf.last_reader is not None
    assert sf.last_reader.plan.order == ["SystemModstamp", "Ext_Id__c", "Id"]


def test_an_expired_cursor_resumes_after_the_last_record(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    add_accounts(sandbox, 450)
    sf = connect(page_size=200)
    seen: list[str] = []
    for batch in sf.read(ReadRequest("Account", fields=["Id"], batch_size=200)):
        seen += batch.column("Id").to_pylist()
        sandbox.expire_query_locators()
    assert len(seen) == 460
    assert len(set(seen)) == 460
    assert sf.last_reader is not None
    assert sf.last_reader.resumed == 2


def test_an_expired_incremental_cursor_resumes_by_stamp_and_id(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    add_accounts(sandbox, 450)
    sf = connect(page_size=200)
    since = Since("SystemModstamp", dt.datetime(2024, 1, 1, tzinfo=UTC))
    seen: list[str] = []
    for batch in sf.read(ReadRequest("Account", fields=["Id"], since=since, batch_size=200)):
        seen += batch.column("Id").to_pylist()
        sandbox.expire_query_locators()
    assert len(seen) == 460
    assert len(set(seen)) == 460


def test_big_reads_use_a_bulk_query_job(connect: Connect, sandbox: SalesforceSandbox) -> None:
    add_accounts(sandbox, 450)
    sf = connect(page_size=200, bulk_query_threshold=300, bulk_page_size=100)
    names = ["Id", "Name", "AnnualRevenue", "SystemModstamp", "IsDeleted"]
    rows = read_all(sf, "Account", fields=names, batch_size=1000)
    assert sf.last_reader is not None
    assert sf.last_reader.used == "bulk"
    assert len(rows) == 460
    assert len({r["Id"] for r in rows}) == 460
    rest = {r["Id"]: r for r in read_all(connect(), "Account", fields=names)}
    assert {r["Id"]: r for r in rows} == rest  # the same values either way
    counts = sandbox.faults.call_counts()
    assert counts["POST jobs/query"] == 1
    assert counts["GET jobs/query/{job}/results"] == 5


def test_bulk_query_reads_deleted_rows_and_filters(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    from crmbridge.core.expressions import parse

    add_accounts(sandbox, 400)
    sandbox.execute('UPDATE sobject_account SET "IsDeleted" = 1 WHERE "Name" LIKE \'Bulk 1%\'')
    sf = connect(page_size=200, bulk_query_threshold=100)
    rows = read_all(sf, "Account", fields=["Id", "IsDeleted"], include_deleted=True)
    assert len(rows) == 410
    assert sum(r["IsDeleted"] for r in rows) == 111
    f = parse("Name LIKE 'bulk 1%'", what="filter")  # SOQL matches, the re-check drops them
    assert read_all(sf, "Account", fields=["Id"], filter=f, include_deleted=True) == []


def test_bulk_query_survives_faults(connect: Connect, sandbox: SalesforceSandbox) -> None:
    add_accounts(sandbox, 400)
    sf = connect(page_size=200, bulk_query_threshold=100, bulk_page_size=150)
    sandbox.faults.drop_next(1, only="results")
    assert len(read_all(sf, "Account", fields=["Id"])) == 410
    sandbox.faults.fail_next(1, 500, "", only="jobs/query")
    assert len(read_all(sf, "Account", fields=["Id"])) == 410


def test_count(sf: SalesforceConnector) -> None:
    assert sf.count(ReadRequest("Contact")) == 20
    assert sf.count(ReadRequest("Account", include_deleted=True)) == 10


def test_decimals_keep_the_field_scale(sf: SalesforceConnector) -> None:
    amounts = pa.concat_arrays(
        [b.column(0) for b in sf.read(ReadRequest("Opportunity", fields=["Amount"]))]
    )
    assert amounts.type == pa.decimal128(16, 2)


def test_the_read_order_is_promised_only_for_a_rest_query(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(bulk_query_threshold=300, page_size=200)
    assert sf.read_order(ReadRequest("Account", fields=["Name"])) == ("Id",)
    since = Since("SystemModstamp", dt.datetime(2024, 1, 1, tzinfo=UTC), key="Ext_Id__c")
    incremental = ReadRequest("Account", fields=["Name"], since=since)
    assert sf.read_order(incremental) == ("SystemModstamp", "Ext_Id__c", "Id")
    add_accounts(sandbox, 450)
    assert sf.read_order(ReadRequest("Account", fields=["Id"])) == ("Id",)  # promised before
    other = connect(bulk_query_threshold=300, page_size=200)
    assert other.read_order(ReadRequest("Account", fields=["Id"])) is None  # a Bulk job
    # the promised read stays a query in Id order, however many records there are now
    rows = read_all(sf, "Account", fields=["Id"], batch_size=1000)
    assert sf.last_reader is not None
    assert sf.last_reader.used == "rest"
    assert [r["Id"] for r in rows] == sorted(r["Id"] for r in rows)
    read_all(other, "Account", fields=["Id"], batch_size=1000)
    assert other.last_reader is not None
    assert other.last_reader.used == "bulk"


def test_a_resumed_read_goes_on_after_the_last_record_processed(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    add_accounts(sandbox, 5, stamp="2024-05-01T00:00:00.000Z", prefix="Late")
    sf = connect()
    everything = read_all(sf, "Account", fields=["Id", "Name"])
    last = everything[6]["Id"]
    rest = read_all(sf, "Account", fields=["Id", "Name"], after=(last,))
    assert rest == everything[7:]
    since = Since("SystemModstamp", dt.datetime(2024, 1, 1, tzinfo=UTC))
    request = ReadRequest("Account", fields=["Id", "SystemModstamp"], since=since)
    order = sf.read_order(request)
    assert order == ("SystemModstamp", "Id")
    ordered = read_all(sf, "Account", fields=["Id", "SystemModstamp"], since=since)
    at = ordered[9]
    after = read_all(
        sf, "Account", fields=["Id", "SystemModstamp"], since=since,
        after=(at["SystemModstamp"], at["Id"]),
    )  # fmt: skip
    assert after == ordered[10:]
