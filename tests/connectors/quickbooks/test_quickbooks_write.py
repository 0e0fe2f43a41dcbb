"""The write side of the contract (match → plan → apply) on the sandbox over a real port:
batches, sparse updates on the current SyncToken, deletes and deactivation, requestid replay
when an answer is lost, confirmation in a resumed run, and faults as rejected records."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from quickbooks_helpers import Connect

from crmbridge.connectors.base import ReadRequest
from crmbridge.connectors.quickbooks import QuickBooksConnector
from crmbridge.connectors.quickbooks.lines import canonical
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.core.plan import SOURCE_KEY_COLUMN
from crmbridge.errors import ConfigError, ErrorContext
from crmbridge.runner.writing import TargetWriter
from crmbridge.sandbox.quickbooks import QuickBooksSandbox
from crmbridge.testing.writes import plan_records, write_records


def _batch(qb: QuickBooksConnector, entity: str, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    schema = qb.describe(entity)
    names = list(dict.fromkeys(n for r in rows for n in r))
    fields = [pa.field(n, schema.field(n).arrow_type) for n in names]
    arrays = [
        pa.array([r.get(n) for r in rows], f.type) for n, f in zip(names, fields, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _write(
    qb: QuickBooksConnector,
    entity: str,
    rows: list[dict[str, Any]],
    mode: WriteMode = WriteMode.UPSERT,
    keys: tuple[str, ...] = ("DisplayName",),
    **kw: Any,
) -> WriteResult:
    return write_records(qb, entity, _batch(qb, entity, rows), mode, keys=list(keys), **kw)


def _named(box: QuickBooksSandbox, name: str) -> list[dict[str, Any]]:
    rows = box.execute(
        "SELECT doc FROM objects WHERE entity = 'Customer' AND "
        "json_extract(doc, '$.DisplayName') = ?",
        (name,),
    )
    return [json.loads(r["doc"]) for r in rows]


def _lines(amount: float, item: str = "1", **detail: Any) -> str:
    line = {"Amount": amount, "SalesItemLineDetail": {"ItemRef": {"value": item}, **detail}}
    return json.dumps([line])


def test_upsert_creates_then_updates_sparsely_on_the_current_synctoken(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    first = _write(
        qb, "Customer", [{"DisplayName": "Nova AS", "Notes": "a", "BillAddr_City": "Oslo"}]
    )
    assert first.outcome.to_pylist() == ["created"]
    made = _named(sandbox, "Nova AS")[0]
    assert made["SyncToken"] == "0"
    second = _write(qb, "Customer", [{"DisplayName": "nova as", "Notes": "b"}])
    assert second.outcome.to_pylist() == ["updated"]
    assert second.target_id.to_pylist() == first.target_id.to_pylist()
    now = sandbox.object("Customer", made["Id"])
    assert now is not None
    assert (now["Notes"], now["BillAddr"]["City"], now["SyncToken"]) == ("b", "Oslo", "1")
    third = _write(qb, "Customer", [{"DisplayName": "Nova AS", "Notes": "b"}])
    assert third.outcome.to_pylist() == ["unchanged"]


def test_a_sparse_update_of_part_of_an_address_keeps_the_rest(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    """QuickBooks replaces a nested object of a sparse update whole: the parts not changed
    are sent as they are."""
    row = {"DisplayName": "Addr Co", "BillAddr_Line1": "Storgata 1", "BillAddr_City": "Oslo"}
    _write(qb, "Customer", [row])
    moved = _write(qb, "Customer", [dict(row, BillAddr_City="Bergen")])
    assert moved.outcome.to_pylist() == ["updated"]
    now = _named(sandbox, "Addr Co")[0]
    assert now["BillAddr"] == {"Line1": "Storgata 1", "City": "Bergen"}


def test_a_record_changed_between_plan_and_apply_is_read_again_and_reapplied(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    _write(qb, "Customer", [{"DisplayName": "Moving Target", "Notes": "a"}])
    planned = plan_records(
        qb,
        "Customer",
        _batch(qb, "Customer", [{"DisplayName": "Moving Target", "Notes": "b"}]),
        WriteMode.UPSERT,
        keys=["DisplayName"],
    )
    stored = _named(sandbox, "Moving Target")[0]
    sandbox.api.write(
        "Customer", "", {"Id": stored["Id"], "SyncToken": "0", "sparse": True, "Title": "Dr"}
    )
    outcomes = planned.writer.apply(planned.plan)
    assert outcomes.column("crmbridge_outcome").to_pylist() == ["updated"]
    now = _named(sandbox, "Moving Target")[0]
    assert (now["Notes"], now["Title"], now["SyncToken"]) == ("b", "Dr", "2")


def test_deletes_delete_transactions_and_make_list_entities_inactive(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    _write(qb, "Customer", [{"DisplayName": "Short Lived"}])
    gone = _write(qb, "Customer", [{"DisplayName": "Short Lived"}], WriteMode.DELETE)
    assert gone.outcome.to_pylist() == ["deleted"]
    customer_id = gone.target_id[0].as_py()
    kept = sandbox.object("Customer", customer_id)
    assert kept is not None
    assert kept["Active"] is False  # never deleted in QuickBooks
    invoice = next(
        r
        for b in qb.read(ReadRequest("Invoice", fields=["Id", "DocNumber"]))
        for r in b.to_pylist()
    )
    result = _write(
        qb, "Invoice", [{"DocNumber": invoice["DocNumber"]}], WriteMode.DELETE, keys=("DocNumber",)
    )
    assert result.outcome.to_pylist() == ["deleted"]
    tomb = sandbox.object("Invoice", invoice["Id"])
    assert tomb is not None
    assert tomb["status"] == "Deleted"
    every = [
        r
        for b in qb.read(ReadRequest("Invoice", fields=["Id", "Deleted"], include_deleted=True))
        for r in b.to_pylist()
    ]
    assert {"Id": invoice["Id"], "Deleted": True} in every


def test_creates_go_in_batch_calls_of_the_configured_size(
    connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    qb = connect(batch_size=10)
    assert qb.capabilities().max_batch_size == 10
    sandbox.faults.reset()
    rows = [{"DisplayName": f"Bulk {n:02}"} for n in range(25)]
    result = _write(qb, "Customer", rows, WriteMode.INSERT)
    assert result.outcome.to_pylist() == ["created"] * 25
    assert sandbox.faults.call_counts()["POST /batch"] == 3


def test_an_answer_lost_after_every_retry_is_repeated_by_the_engine_and_applied_once(
    connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    qb = connect(retries=1)
    qb.check()
    sandbox.faults.reset()
    sandbox.faults.lose_answer_next(2)  # the call and its one retry: AmbiguousWriteError
    result = _write(qb, "Customer", [{"DisplayName": "Exactly Once"}], WriteMode.INSERT, keys=())
    assert result.outcome.to_pylist() == ["created"]
    assert len(_named(sandbox, "Exactly Once")) == 1
    assert sandbox.faults.call_counts()["POST /batch"] == 3


def test_a_repeated_call_goes_out_with_the_same_requestids(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    rows = [{"DisplayName": "Repeat A", "Notes": "x"}, {"DisplayName": "Repeat B"}]
    planned = plan_records(
        qb, "Customer", _batch(qb, "Customer", rows), WriteMode.UPSERT, keys=["DisplayName"]
    )
    first = planned.writer.apply(planned.plan)
    known = sandbox.execute("SELECT COUNT(*) AS n FROM requests")[0]["n"]
    again = planned.writer.apply(planned.plan, attempt=2)  # the engine's repeat: replayed
    assert again.column("crmbridge_id").to_pylist() == first.column("crmbridge_id").to_pylist()
    assert sandbox.execute("SELECT COUNT(*) AS n FROM requests")[0]["n"] == known
    assert [len(_named(sandbox, r["DisplayName"])) for r in rows] == [1, 1]


def test_a_resumed_run_confirms_its_creates_by_their_keys(
    qb: QuickBooksConnector, connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    rows = [{"DisplayName": "Resumed A", "Notes": "x"}, {"DisplayName": "Resumed B"}]
    planned = plan_records(
        qb, "Customer", _batch(qb, "Customer", rows), WriteMode.UPSERT, keys=["DisplayName"]
    )
    first = planned.writer.apply(planned.plan)
    # the process died before its answer was kept: a new one repeats the in-flight batch
    resumed = TargetWriter(connect(), planned.writer.spec, ErrorContext(object="Customer"))
    third = resumed.apply(planned.plan, attempt=2)
    assert third.column("crmbridge_outcome").to_pylist() == ["created", "created"]
    assert third.column("crmbridge_reason").to_pylist() == ["already created (confirmed)"] * 2
    assert third.column("crmbridge_id").to_pylist() == first.column("crmbridge_id").to_pylist()
    assert [len(_named(sandbox, r["DisplayName"])) for r in rows] == [1, 1]


def test_a_resumed_create_without_keys_is_not_sent_again(
    qb: QuickBooksConnector, connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    rows = [{"DisplayName": "Keyless"}]
    planned = plan_records(qb, "Customer", _batch(qb, "Customer", rows), WriteMode.INSERT)
    planned.writer.apply(planned.plan)
    resumed = TargetWriter(connect(), planned.writer.spec, ErrorContext(object="Customer"))
    again = resumed.apply(planned.plan, attempt=2)
    assert again.column("crmbridge_outcome").to_pylist() == ["rejected"]
    assert "may exist" in again.column("crmbridge_reason")[0].as_py()
    assert len(_named(sandbox, "Keyless")) == 1


def test_what_quickbooks_refused_is_tried_afresh_by_a_later_run(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    """The same record with the same values gets new requestids in a later run: a refusal
    is not answered again from QuickBooks's memory of the first."""
    existing = _named(sandbox, "Amy's Bird Sanctuary")[0]
    batch = _batch(qb, "Customer", [{"DisplayName": "Amy's Bird Sanctuary", "Notes": "n"}])
    batch = batch.append_column(SOURCE_KEY_COLUMN, pa.array(["amy"], pa.string()))
    refused = write_records(qb, "Customer", batch, WriteMode.INSERT, checks=False)
    assert refused.codes.to_pylist() == ["duplicate_key"]
    sandbox.api.write(
        "Customer",
        "",
        {"Id": existing["Id"], "SyncToken": existing["SyncToken"], "sparse": True,
         "DisplayName": "Amy's Old Bird Sanctuary"},
    )  # fmt: skip
    later = write_records(qb, "Customer", batch, WriteMode.INSERT, checks=False)
    assert later.outcome.to_pylist() == ["created"]


def test_throttling_and_5xx_during_a_write_are_retried(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    qb.check()
    sandbox.faults.throttle_next(2)
    assert _write(qb, "Customer", [{"DisplayName": "T1"}]).outcome.to_pylist() == ["created"]
    sandbox.faults.fail_next(2, status=503)
    assert _write(qb, "Customer", [{"DisplayName": "T2"}]).outcome.to_pylist() == ["created"]
    assert [len(_named(sandbox, n)) for n in ("T1", "T2")] == [1, 1]


def test_faults_are_rejected_records_and_the_batch_goes_on(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    existing = _named(sandbox, "Amy's Bird Sanctuary")[0]
    result = _write(
        qb,
        "Customer",
        [
            {"DisplayName": "AMY'S BIRD SANCTUARY"},  # 6240: names are unique
            {"DisplayName": "Fresh Name"},
            {"DisplayName": "Too Long", "Title": "x" * 17},
        ],
        WriteMode.INSERT,
        keys=(),
        checks=False,
    )
    assert result.outcome.to_pylist() == ["rejected", "created", "rejected"]
    assert result.codes.to_pylist() == ["duplicate_key", None, "invalid_value"]
    reason = result.reason[0].as_py()
    assert reason.startswith("duplicate name")
    assert f"Id={existing['Id']}" in reason
    docs = _write(
        qb,
        "Invoice",
        [
            {"DocNumber": "X-1", "CustomerRef_value": "99999", "Line": _lines(10)},
            {"DocNumber": "X-2", "CustomerRef_value": existing["Id"], "Line": _lines(10, "9")},
            {"DocNumber": "X-3", "CustomerRef_value": existing["Id"], "Line": "not json"},
        ],
        WriteMode.INSERT,
        keys=("DocNumber",),
    )
    assert docs.outcome.to_pylist() == ["rejected"] * 3
    assert docs.codes.to_pylist() == ["reference", "reference", "invalid_value"]
    assert "CustomerRef" in docs.reason[0].as_py()


def test_an_update_of_a_record_gone_since_the_plan_is_rejected(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    _write(qb, "Customer", [{"DisplayName": "Vanishing"}])
    planned = plan_records(
        qb,
        "Customer",
        _batch(qb, "Customer", [{"DisplayName": "Vanishing", "Notes": "n"}]),
        WriteMode.UPDATE,
        keys=["DisplayName"],
    )
    stored = _named(sandbox, "Vanishing")[0]
    sandbox.api.write(
        "Customer", "", {"Id": stored["Id"], "SyncToken": "0", "sparse": True, "Active": False}
    )
    outcomes = planned.writer.apply(planned.plan)
    assert outcomes.column("crmbridge_code").to_pylist() == ["not_found"]
    assert "gone" in outcomes.column("crmbridge_reason")[0].as_py()


def test_read_only_fields_and_keys_queries_cannot_filter_are_profile_errors(
    qb: QuickBooksConnector,
) -> None:
    with pytest.raises(ConfigError, match="kept by QuickBooks"):
        _write(qb, "Customer", [{"DisplayName": "A", "Balance": Decimal("1.00")}], checks=False)
    with pytest.raises(ConfigError, match="cannot filter on it"):
        _write(qb, "Customer", [{"Notes": "A"}], keys=("Notes",))


# -- Line items ------------------------------------------------------------------------------
def test_documents_are_written_with_their_lines_and_read_back(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    customer = _named(sandbox, "Amy's Bird Sanctuary")[0]["Id"]
    two = json.dumps(
        [
            {"Amount": 150.0, "Description": "Design", "SalesItemLineDetail": {
                "ItemRef": {"value": "2"}, "Qty": 2, "UnitPrice": 75}},
            {"Amount": 20.0, "SalesItemLineDetail": {"ItemRef": {"value": "4"}}},
        ]
    )  # fmt: skip
    rows = [
        {"DocNumber": "SR-1", "CustomerRef_value": customer, "Line": two},
        {"DocNumber": "SR-2", "CustomerRef_value": customer, "Line": _lines(99.5)},
        {"DocNumber": "SR-3", "CustomerRef_value": customer, "Line": _lines(5, "404")},
    ]
    result = _write(qb, "SalesReceipt", rows, keys=("DocNumber",))
    assert result.outcome.to_pylist() == ["created", "created", "rejected"]
    assert result.codes.to_pylist()[2] == "reference"
    stored = sandbox.object("SalesReceipt", result.target_id[0].as_py())
    assert stored is not None
    assert stored["TotalAmt"] == 170.0
    assert [x["DetailType"] for x in stored["Line"]] == [
        "SalesItemLineDetail", "SalesItemLineDetail", "SubTotalLineDetail"
    ]  # fmt: skip
    read = {
        r["DocNumber"]: r
        for b in qb.read(ReadRequest("SalesReceipt", fields=["DocNumber", "Line", "TotalAmt"]))
        for r in b.to_pylist()
    }
    assert read["SR-1"]["TotalAmt"] == Decimal("170.00")
    assert canonical(read["SR-1"]["Line"]) == canonical(two)
    same = _write(qb, "SalesReceipt", rows[:2], keys=("DocNumber",))
    assert same.outcome.to_pylist() == ["unchanged", "unchanged"]
    changed = _write(qb, "SalesReceipt", [dict(rows[1], Line=_lines(120))], keys=("DocNumber",))
    assert changed.outcome.to_pylist() == ["updated"]
    now = sandbox.object("SalesReceipt", result.target_id[1].as_py())
    assert now is not None
    assert (now["TotalAmt"], now["SyncToken"]) == (120.0, "1")


def test_lines_may_come_as_a_list_of_structs(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    customer = _named(sandbox, "Amy's Bird Sanctuary")[0]["Id"]
    lines = [
        {"Amount": 30.0, "Description": None, "SalesItemLineDetail": {"ItemRef": {"value": "1"}}},
        {
            "Amount": 12.5,
            "Description": "rocks",
            "SalesItemLineDetail": {"ItemRef": {"value": "6"}},
        },
    ]
    ops = pa.RecordBatch.from_pylist(
        [{"DocNumber": "E-1", "CustomerRef_value": customer, "Line": lines}]
    )
    result = write_records(qb, "Estimate", ops, WriteMode.INSERT, keys=["DocNumber"], checks=False)
    assert result.outcome.to_pylist() == ["created"]
    stored = sandbox.object("Estimate", result.target_id[0].as_py())
    assert stored is not None
    assert stored["TotalAmt"] == 42.5
    assert "Description" not in stored["Line"][0]
