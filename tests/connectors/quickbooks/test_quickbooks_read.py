"""Discovery, check, OAuth rotation, reads with paging and pushdown, CDC."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from pydantic import SecretStr
from quickbooks_helpers import Connect, settings_for
from sqlglot import exp

from crmbridge.connectors.base import ROW_COLUMN, ReadRequest, Since
from crmbridge.connectors.quickbooks import QuickBooksConnector
from crmbridge.connectors.quickbooks.operations import Operation
from crmbridge.core.expressions import BatchTransform, parse
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode
from crmbridge.core.schema import FieldType
from crmbridge.errors import ConfigError, ConnectionFailedError
from crmbridge.sandbox.quickbooks import QuickBooksSandbox, RunningServer, seed_counts


def rows(qb: QuickBooksConnector, entity: str, **request: Any) -> list[dict[str, Any]]:
    return [r for b in qb.read(ReadRequest(entity, **request)) for r in b.to_pylist()]


def test_discovery_of_the_entities_and_their_fields(qb: QuickBooksConnector) -> None:
    assert qb.objects() == ["Customer", "Item", "Estimate", "Invoice", "SalesReceipt", "Payment"]
    customer = qb.describe("Customer")
    assert customer.id_field == "Id"
    assert customer.field("DisplayName").length == 500
    assert customer.field("Balance").type is FieldType.DECIMAL
    assert customer.field("MetaData_LastUpdatedTime").type is FieldType.DATETIME
    invoice = qb.describe("Invoice")
    assert invoice.field("CustomerRef_value").required
    assert invoice.field("Line").type is FieldType.TEXT
    with pytest.raises(ConfigError, match="did you mean 'Invoice'"):
        qb.describe("Invoise")
    caps = qb.capabilities()
    assert caps.write_modes == frozenset(WriteMode)
    assert caps.match
    assert caps.max_batch_size == 30
    assert customer.field("DisplayName").key_rule is KeyRule.CASEFOLD


def test_check_reports_the_company_and_sends_minorversion(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    info = qb.check()
    assert info.system == "QuickBooks Online"
    assert info.details["company"] == "Sandbox Company_US_1"
    assert set(sandbox.minor_versions) == {"75"}


def test_the_rotated_refresh_token_is_handed_back_and_the_old_one_is_dead(
    connect: Connect,
    stored_tokens: list[SecretStr],
    sandbox: QuickBooksSandbox,
    server: RunningServer,
) -> None:
    qb = connect()
    old = qb.config.refresh_token
    qb.check()
    assert len(stored_tokens) == 1
    assert stored_tokens[0].get_secret_value() != old.get_secret_value()
    assert qb.settings.refresh_token == stored_tokens[0]  # type: ignore[attr-defined]
    stale = QuickBooksConnector(
        "books", settings_for(sandbox, server.url, refresh_token=old.get_secret_value())
    )
    with stale, pytest.raises(ConnectionFailedError, match="already used") as info:
        stale.check()
    assert old.get_secret_value() not in str(info.value)
    fresh = QuickBooksConnector(
        "books",
        settings_for(sandbox, server.url, refresh_token=stored_tokens[0].get_secret_value()),
    )
    with fresh:
        assert fresh.check().system == "QuickBooks Online"


def test_an_expired_access_token_is_renewed_once(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox, stored_tokens: list[SecretStr]
) -> None:
    qb.check()
    sandbox.faults.expire_tokens()
    assert qb.check().details["realm_id"] == sandbox.realm_id
    assert len(stored_tokens) == 2


def test_read_pages_through_every_record(connect: Connect) -> None:
    qb = connect(page_size=7)
    got = rows(qb, "Invoice", fields=["Id", "TotalAmt", "CustomerRef_value"], batch_size=5)
    assert len(got) == seed_counts(20)["Invoice"]
    assert [r["Id"] for r in got] == sorted((r["Id"] for r in got), key=int)
    assert all(isinstance(r["TotalAmt"], type(got[0]["TotalAmt"])) for r in got)


def test_list_entities_read_active_records_unless_deleted_ones_are_asked(
    qb: QuickBooksConnector,
) -> None:
    active = rows(qb, "Customer", fields=["Id", "Active"])
    everyone = rows(qb, "Customer", fields=["Id", "Active"], include_deleted=True)
    assert all(r["Active"] for r in active)
    assert len(everyone) == 20
    assert len(everyone) - len(active) == 2


PREDICATES = [
    "DisplayName = 'o''brien brothers ltd'",
    "DisplayName = 'O''Brien Brothers Ltd'",
    "DisplayName IN ('Cool Cars', 'Zürich Trading AG', 'nobody')",
    "DisplayName LIKE '%Brothers%'",
    "DisplayName LIKE '%brothers%'",
    "Balance > 100",
    "Balance BETWEEN 100 AND 900",
    "Id = '3' OR Id = '4' OR Id IN ('5')",
    "Active",
    "NOT Active",
    "MetaData_LastUpdatedTime >= TIMESTAMPTZ '2000-01-01 00:00:00.5+00'",
    "MetaData_CreateTime < current_timestamp",
    "PrimaryEmailAddr_Address = 'amy@amysbirdsanctuary.example.com'",
    "FamilyName IN ('Platt', 'Chin') AND Balance >= 0",
]


@pytest.mark.parametrize("text", PREDICATES)
def test_pushed_filters_select_what_local_evaluation_selects(
    qb: QuickBooksConnector, text: str
) -> None:
    predicate = parse(text, what="filter")
    assert qb.can_push_down("Customer", predicate), text
    names = ["Id", "DisplayName", "Balance", "Active", "MetaData_LastUpdatedTime",
             "MetaData_CreateTime", "PrimaryEmailAddr_Address", "FamilyName"]  # fmt: skip
    full = pa.Table.from_pylist(rows(qb, "Customer", fields=names)).combine_chunks()
    batch = full.append_column(ROW_COLUMN, pa.array(range(full.num_rows), pa.int64()))
    with BatchTransform(batch.schema, {"Id": exp.column("Id", quoted=True)}, predicate) as t:
        expected = t.apply(batch.to_batches()[0]).batch.column(0).to_pylist()
    remote = [r["Id"] for r in rows(qb, "Customer", fields=["Id"], filter=predicate)]
    assert sorted(remote) == sorted(expected)


@pytest.mark.parametrize(
    "text",
    [
        "DisplayName <> 'x'",
        "DisplayName > 'M'",
        "DisplayName IS NULL",
        "DisplayName LIKE 'A_B'",
        "Notes = 'x'",
        "Balance > 1 OR Active",
        "Id = '1' OR DisplayName = 'x'",
        "lower(DisplayName) = 'x'",
    ],
)
def test_what_the_query_language_cannot_say_is_not_pushed(
    qb: QuickBooksConnector, text: str
) -> None:
    assert not qb.can_push_down("Customer", parse(text, what="filter"))


def test_pushed_filters_reach_the_server(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    sandbox.faults.reset()
    got = rows(qb, "Invoice", fields=["Id"], filter=parse("CustomerRef_value = '1'", what="filter"))
    assert got
    assert sandbox.faults.call_counts()["GET /query"] == 1


def test_count(qb: QuickBooksConnector) -> None:
    assert qb.count(ReadRequest("Invoice")) == seed_counts(20)["Invoice"]


def _since(moment: dt.datetime) -> Since:
    return Since("MetaData_LastUpdatedTime", moment)


def test_incremental_with_deletions_reads_change_data_capture(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    start = sandbox.clock.now()
    invoice = rows(qb, "Invoice", fields=["Id", "SyncToken"])[0]
    result = qb.operations("Invoice").apply([Operation("delete", id=invoice["Id"])])
    assert result[0].ok
    got = rows(qb, "Invoice", fields=["Id", "Deleted", "TotalAmt"], since=_since(start),
               include_deleted=True)  # fmt: skip
    assert got == [{"Id": invoice["Id"], "Deleted": True, "TotalAmt": None}]
    sandbox.faults.reset()
    pushed = parse(f"MetaData_LastUpdatedTime >= TIMESTAMPTZ '{start.isoformat()}'", what="filter")
    again = rows(qb, "Invoice", fields=["Id", "Deleted"], filter=pushed, include_deleted=True)
    assert again == [{"Id": invoice["Id"], "Deleted": True}]
    assert "GET /cdc" in sandbox.faults.call_counts()


def test_a_gap_longer_than_30_days_asks_for_a_full_read(qb: QuickBooksConnector) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    with pytest.raises(ConfigError, match="full read"):
        rows(qb, "Invoice", since=_since(old), include_deleted=True)
    live = rows(qb, "Invoice", fields=["Id"], since=_since(old))  # no deletions: a query
    assert len(live) == seed_counts(20)["Invoice"]


def test_cdc_pages_past_1000_objects(qb: QuickBooksConnector, sandbox: QuickBooksSandbox) -> None:
    start = sandbox.clock.now()
    ops = qb.operations("Customer")
    for n in range(4):
        sandbox.clock.advance(seconds=2)
        sandbox.throttle.reset()
        assert all(
            r.ok
            for r in ops.apply(
                [Operation("create", {"DisplayName": f"Many {n}-{i}"}) for i in range(300)]
            )
        )
    got = rows(qb, "Customer", fields=["Id", "DisplayName"], since=_since(start),
               include_deleted=True)  # fmt: skip
    assert len(got) == 1200
    assert len({r["Id"] for r in got}) == 1200


def test_a_full_read_with_deletions_adds_the_ones_cdc_still_knows(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    deleted = sandbox.execute("SELECT id FROM objects WHERE entity = 'Invoice' AND deleted = 1")
    assert len(deleted) == 2  # the seed deletes two invoices within the window
    got = rows(qb, "Invoice", fields=["Id", "Deleted"], include_deleted=True)
    assert [r["Id"] for r in got if r["Deleted"]] == [str(r["id"]) for r in deleted]
    assert len(got) == seed_counts(20)["Invoice"] + 2
