"""The API-level writes: batches, sparse updates with SyncTokens, deletes, deactivation,
requestid replay and faults, against the sandbox over a real port."""

from __future__ import annotations

import pytest
from quickbooks_helpers import Connect

from crmbridge.connectors.quickbooks import QuickBooksConnector
from crmbridge.connectors.quickbooks.operations import Operation
from crmbridge.errors import ConnectionFailedError, RetryableError
from crmbridge.sandbox.quickbooks import QuickBooksSandbox


def _count(box: QuickBooksSandbox, name: str) -> int:
    rows = box.execute(
        "SELECT COUNT(*) AS n FROM objects WHERE json_extract(doc, '$.DisplayName') = ?", (name,)
    )
    return int(rows[0]["n"])


def test_creates_go_in_batches_of_the_configured_size(
    connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    qb = connect(batch_size=4)
    sandbox.faults.reset()
    ops = [
        Operation("create", {"DisplayName": f"New {n}", "BillAddr_City": "Oslo"}) for n in range(10)
    ]
    results = qb.operations("Customer").apply(ops)
    assert all(r.ok for r in results)
    assert [r.object["BillAddr"]["City"] for r in results if r.object] == ["Oslo"] * 10
    assert sandbox.faults.call_counts()["POST /batch"] == 3


def test_item_faults_are_per_operation_and_the_batch_goes_on(qb: QuickBooksConnector) -> None:
    results = qb.operations("Customer").apply(
        [
            Operation("create", {"DisplayName": "Dup"}),
            Operation("create", {"DisplayName": "dup"}),
            Operation("update", {"Notes": "x"}, id="99999"),
            Operation("create", {"DisplayName": "x" * 600}),
            Operation("create", {"Balance": 3}),
            Operation("create", {"DisplayName": "Fine"}),
        ]
    )
    assert [r.ok for r in results] == [True, False, False, False, False, True]
    assert results[1].code == "6240"
    assert results[1].reason is not None
    assert results[1].reason.startswith("duplicate name")
    assert results[2].code == "610"
    assert results[3].code == "2050"
    assert results[4].reason == "'Balance' is read-only"


def test_a_stale_synctoken_is_read_again_reapplied_and_retried(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    made = qb.operations("Customer").apply([Operation("create", {"DisplayName": "Stale"})])[0]
    assert made.id is not None
    # someone else changes it meanwhile: our SyncToken "0" is stale now
    other = qb.operations("Customer").apply(
        [Operation("update", {"Notes": "theirs"}, id=made.id, sync_token="0")]
    )[0]
    assert other.sync_token == "1"
    ours = qb.operations("Customer").apply(
        [Operation("update", {"GivenName": "Ours"}, id=made.id, sync_token="0")]
    )[0]
    assert ours.ok
    assert ours.attempts == 2
    assert ours.sync_token == "2"
    current = sandbox.object("Customer", made.id)
    assert current is not None
    assert (current["Notes"], current["GivenName"]) == ("theirs", "Ours")  # sparse: both kept


def test_stale_retries_give_up_after_the_limit(
    connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    qb = connect(stale_retries=0)
    made = qb.operations("Customer").apply([Operation("create", {"DisplayName": "Busy"})])[0]
    assert made.id is not None
    qb.operations("Customer").apply([Operation("update", {"Notes": "a"}, id=made.id)])
    result = qb.operations("Customer").apply(
        [Operation("update", {"Notes": "b"}, id=made.id, sync_token="0")]
    )[0]
    assert (result.ok, result.code) == (False, "5010")


def test_deletes_of_transactions_and_deactivation_of_list_entities(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    invoice = sandbox.execute(
        "SELECT id FROM objects WHERE entity = 'Invoice' AND deleted = 0 LIMIT 1"
    )[0]["id"]
    deleted = qb.operations("Invoice").apply([Operation("delete", id=str(invoice))])[0]
    assert deleted.ok
    assert deleted.object == {"domain": "QBO", "status": "Deleted", "Id": str(invoice)}
    again = qb.operations("Invoice").apply([Operation("delete", id=str(invoice))])[0]
    assert (again.ok, again.code) == (False, "610")
    refused = qb.operations("Invoice").apply([Operation("deactivate", id=str(invoice))])[0]
    assert not refused.ok
    made = qb.operations("Customer").apply([Operation("create", {"DisplayName": "Leaving"})])[0]
    assert made.id is not None
    gone = qb.operations("Customer").apply([Operation("delete", id=made.id)])[0]
    assert gone.ok
    assert gone.object is not None
    assert (gone.object["Active"], gone.object["DisplayName"]) == (False, "Leaving (deleted)")
    assert sandbox.object("Customer", made.id) is not None  # never deleted


def test_a_lost_answer_is_retried_with_the_same_requestid_and_applied_once(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    qb.check()  # logged in: the lost answer is the batch's, not the token endpoint's
    sandbox.faults.reset()
    sandbox.faults.lose_answer_next(1)
    results = qb.operations("Customer").apply(
        [Operation("create", {"DisplayName": "Exactly Once"})]
    )
    assert results[0].ok
    assert _count(sandbox, "Exactly Once") == 1
    assert sandbox.faults.call_counts()["POST /batch"] == 2


def test_dropped_connections_5xx_and_throttling_are_retried(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    qb.check()
    sandbox.faults.drop_next(1)
    assert qb.operations("Customer").apply([Operation("create", {"DisplayName": "D1"})])[0].ok
    sandbox.faults.fail_next(2, status=503)
    assert qb.operations("Customer").apply([Operation("create", {"DisplayName": "D2"})])[0].ok
    sandbox.faults.throttle_next(2)
    assert qb.operations("Customer").apply([Operation("create", {"DisplayName": "D3"})])[0].ok
    assert [_count(sandbox, n) for n in ("D1", "D2", "D3")] == [1, 1, 1]


def test_a_call_that_keeps_failing_is_a_retryable_error(
    connect: Connect, sandbox: QuickBooksSandbox
) -> None:
    qb = connect(retries=2)
    sandbox.faults.fail_next(5, status=500)
    with pytest.raises(RetryableError, match="gave up after 3 attempts"):
        qb.operations("Customer").apply([Operation("create", {"DisplayName": "Never"})])
    assert _count(sandbox, "Never") == 0


def test_the_client_keeps_to_the_rate_limit(connect: Connect, sandbox: QuickBooksSandbox) -> None:
    waits: list[float] = []
    qb = connect(requests_per_minute=3)
    qb.transport.limits._sleep = waits.append  # type: ignore[assignment]
    qb.transport.limits._monotonic = lambda: 100.0 + len(waits) * 30  # type: ignore[assignment]
    for _ in range(5):
        qb.check()
    assert waits  # the fourth call waited for the minute to move on
    assert "POST /oauth2/v1/tokens/bearer" in sandbox.faults.call_counts()


def test_connections_to_one_company_share_its_limits(connect: Connect) -> None:
    first, second = connect(requests_per_minute=3), connect(requests_per_minute=3)
    assert first.transport.limits is second.transport.limits
    waits: list[float] = []
    limits = first.transport.limits
    limits._sleep = waits.append  # type: ignore[assignment]
    limits._monotonic = lambda: 500.0 + len(waits) * 30  # type: ignore[assignment]
    for _ in range(2):
        first.check()
        assert not waits
        second.check()
    assert waits  # the fourth call of the two connections waited for the minute to move on
    assert connect(requests_per_minute=4).transport.limits is not limits


def test_a_token_answer_lost_on_the_way_is_a_dead_refresh_token(
    qb: QuickBooksConnector, sandbox: QuickBooksSandbox
) -> None:
    """The refresh rotated on the server but the new token never arrived: the connection
    must be authorised again (the docs say so); the message says it, without the token."""
    sandbox.faults.lose_answer_next(1)
    with pytest.raises(ConnectionFailedError, match="connect the app to the company again"):
        qb.check()
