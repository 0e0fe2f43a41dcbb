"""Repeated writes: an answer lost after Salesforce applied the call, a resumed run. The engine
repeats the operations (attempt > 1); nothing is created twice and every outcome is exact."""

from __future__ import annotations

from typing import Any

import pytest
from salesforce_helpers import Connect, count, typed

from crmbridge.connectors.salesforce import SalesforceConnector
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.errors import AmbiguousWriteError, ConfigError
from crmbridge.sandbox.salesforce import SalesforceSandbox, Settings
from crmbridge.testing.writes import write_records

KEY_FIELD = "Crmbridge_Key__c"


def _leads(n: int, prefix: str = "R") -> list[dict[str, Any]]:
    return [
        {"Web_Id__c": f"{prefix}-{i}", "LastName": f"Rep-{prefix}{i}", "Company": "Co",
         "Email": f"{prefix.lower()}{i}@x.example"}
        for i in range(n)
    ]  # fmt: skip


def _write(
    sf: SalesforceConnector, rows: list[dict[str, Any]], mode: WriteMode, keys: list[str], **kw: Any
) -> WriteResult:
    return write_records(sf, "Lead", typed(sf, "Lead", rows), mode, keys=keys, **kw)


def _stored(sandbox: SalesforceSandbox, prefix: str) -> int:
    return count(sandbox, "sobject_lead", '"LastName" LIKE ? AND "IsDeleted" = 0', f"Rep-{prefix}%")


@pytest.mark.parametrize(
    ("keys", "settings"),
    [
        (["Web_Id__c"], {}),  # an external id: the repeated create is an upsert
        (["Email"], {}),  # another key: found again by it
        ([], {"operation_key_field": KEY_FIELD}),  # no key: the operation key finds it
    ],
    ids=["external-id", "email", "operation-key"],
)
@pytest.mark.parametrize("fault", ["lose", "fail"])
def test_a_collections_call_whose_answer_is_lost_is_confirmed(
    connect: Connect,
    sandbox: SalesforceSandbox,
    keys: list[str],
    settings: dict[str, Any],
    fault: str,
) -> None:
    sf = connect(**settings)
    if fault == "lose":  # applied, then the connection closed without an answer
        sandbox.faults.lose_next(1, only="composite/sobjects")
    else:  # HTTP 500: Salesforce may or may not have applied it (here: not)
        sandbox.faults.fail_next(1, 500, "", only="composite/sobjects")
    mode = WriteMode.UPSERT if keys else WriteMode.INSERT
    result = _write(sf, _leads(30), mode, keys)
    assert result.outcome.to_pylist() == ["created"] * 30
    assert _stored(sandbox, "R") == 30
    assert len(set(result.target_id.to_pylist())) == 30
    confirmed = [r for r in result.reason.to_pylist() if r]
    assert confirmed == (["already created (confirmed)"] * 30 if fault == "lose" else [])


@pytest.mark.parametrize("settings", [{}, {"operation_key_field": KEY_FIELD}])
def test_the_calls_before_and_after_the_lost_one_keep_their_answers(
    connect: Connect, sandbox: SalesforceSandbox, settings: dict[str, Any]
) -> None:
    sf = connect(**settings)
    sandbox.faults.lose_next(1, only="composite/sobjects", after=1)  # the second of 3 calls
    result = _write(sf, _leads(450), WriteMode.INSERT, [])  # no keys: 3 calls of 200
    outcomes = result.outcome.to_pylist()
    assert _stored(sandbox, "R") == 450, "each record once"
    if settings:  # the operation key tells what the lost call did
        assert outcomes == ["created"] * 450
    else:  # the lost call's creates cannot be told from new ones: never sent twice
        assert outcomes == ["created"] * 200 + ["rejected"] * 200 + ["created"] * 50
        assert "may exist" in str(result.reason[200].as_py())
    calls = sum(n for k, n in sandbox.faults.call_counts().items() if "composite/sobjects" in k)
    assert calls == (4 if settings else 3)  # the lost one again only when it can be confirmed


def test_a_bulk_job_whose_close_answer_is_lost_ends_known(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(bulk_write_threshold=10)
    sandbox.faults.lose_next(1, only="PATCH jobs/ingest/{job}")
    result = _write(sf, _leads(25), WriteMode.UPSERT, ["Web_Id__c"])
    assert result.outcome.to_pylist() == ["created"] * 25
    assert _stored(sandbox, "R") == 25
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 1


@pytest.mark.parametrize(
    ("keys", "settings"),
    [(["Web_Id__c"], {}), (["Email"], {}), ([], {"operation_key_field": KEY_FIELD})],
    ids=["external-id", "email", "operation-key"],
)
def test_a_bulk_job_whose_results_cannot_be_read_is_repeated_and_confirmed(
    connect: Connect, sandbox: SalesforceSandbox, keys: list[str], settings: dict[str, Any]
) -> None:
    sf = connect(bulk_write_threshold=10, retries=1, **settings)
    sandbox.faults.drop_next(2, only="successfulResults")  # the job ran; we cannot see how
    mode = WriteMode.UPSERT if keys else WriteMode.INSERT
    result = _write(sf, _leads(25), mode, keys)
    assert result.outcome.to_pylist() == ["created"] * 25
    assert set(result.reason.to_pylist()) == {"already created (confirmed)"}
    assert _stored(sandbox, "R") == 25


def test_a_bulk_job_that_outlives_the_timeout_is_an_unknown_outcome(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(bulk_write_threshold=10, bulk_timeout=0.05)
    sandbox.settings = Settings(bulk_polls=1_000_000)  # never done in time
    with pytest.raises(AmbiguousWriteError, match="may or may not have been applied"):
        _write(sf, _leads(25), WriteMode.UPSERT, ["Web_Id__c"])
    assert sandbox.faults.call_counts()["POST jobs/ingest"] == 4  # the engine tried 4 times
    assert _stored(sandbox, "R") == 0


@pytest.mark.parametrize("settings", [{}, {"operation_key_field": KEY_FIELD}])
def test_a_resumed_run_confirms_what_the_interrupted_one_applied(
    connect: Connect, sandbox: SalesforceSandbox, settings: dict[str, Any]
) -> None:
    first = connect(**settings)
    rows = _leads(5)
    assert _write(first, rows, WriteMode.UPSERT, ["Email"]).outcome.to_pylist() == ["created"] * 5
    again = connect(**settings)  # another process: it knows nothing of the first attempt
    planned = rows + _leads(2, prefix="S")
    result = _write(again, planned, WriteMode.UPSERT, ["Email"], attempt=2)
    assert result.outcome.to_pylist() == ["unchanged"] * 5 + ["created"] * 2
    assert _stored(sandbox, "R") == 5
    assert _stored(sandbox, "S") == 2


def test_repeated_deletes_and_updates_are_confirmed(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect()
    rows = _leads(4)
    _write(sf, rows, WriteMode.INSERT, ["Web_Id__c"])
    sandbox.faults.lose_next(1, only="composite/sobjects")
    gone = _write(sf, [{"Web_Id__c": r["Web_Id__c"]} for r in rows], WriteMode.DELETE,
                  ["Web_Id__c"])  # fmt: skip
    assert gone.outcome.to_pylist() == ["deleted"] * 4
    assert count(sandbox, "sobject_lead", '"LastName" LIKE \'Rep-R%\' AND "IsDeleted" = 1') == 4
    more = _leads(3, prefix="U")
    _write(sf, more, WriteMode.INSERT, ["Web_Id__c"])
    sandbox.faults.lose_next(1, only="composite/sobjects")
    changed = [dict(r, Company="New Co") for r in more]
    done = _write(sf, changed, WriteMode.UPDATE, ["Web_Id__c"])
    assert done.outcome.to_pylist() == ["updated"] * 3
    assert count(sandbox, "sobject_lead", "\"Company\" = 'New Co'") == 3


def test_with_operation_keys_a_record_created_and_changed_in_one_batch_is_one_record(
    connect: Connect, sandbox: SalesforceSandbox
) -> None:
    sf = connect(operation_key_field=KEY_FIELD)
    [lead] = _leads(1)
    rows = [dict(lead, LastName="Rep-one"), dict(lead, LastName="Rep-two")]
    result = _write(sf, rows, WriteMode.UPSERT, ["Web_Id__c"])
    assert result.outcome.to_pylist() == ["created", "updated"]
    assert result.target_id[0].as_py() == result.target_id[1].as_py()
    [stored] = sandbox.execute(
        f'SELECT "LastName", "{KEY_FIELD}" AS k FROM sobject_lead WHERE "Web_Id__c" = \'R-0\''
    )
    assert stored["LastName"] == "Rep-two"
    assert len(stored["k"]) == 36


def test_an_operation_key_field_must_be_an_external_id(connect: Connect) -> None:
    wrong = connect(operation_key_field="Title")
    with pytest.raises(ConfigError, match="operation_key_field 'Title' must be"):
        _write(wrong, _leads(1), WriteMode.INSERT, [])
