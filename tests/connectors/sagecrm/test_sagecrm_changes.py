"""API-level writes on both families: one result per operation, record limit, unknown outcomes."""

from __future__ import annotations

import pytest
from sagecrm_helpers import Connect, read_all

from crmbridge.connectors.sagecrm import (
    Create,
    Delete,
    OpResult,
    OutcomeUnknownError,
    SageCrmConnector,
    Update,
)
from crmbridge.core.expressions import parse
from crmbridge.errors import ConfigError
from crmbridge.sandbox.sagecrm import SageSandbox


def stored(sandbox: SageSandbox, company_id: int) -> dict[str, object]:
    return sandbox.execute("SELECT * FROM Company WHERE comp_companyid = ?", (company_id,))[0]


def test_create_update_delete_answer_one_result_each(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    results = crm.apply_operations(
        "company",
        [
            Create({"name": "Alpha Ltd", "type": "Customer"}),
            Create({"name": "Beta Ltd", "type": "Bogus"}),
            Update(1, {"website": "acme.ie"}),
            Update(999, {"website": "x"}),
            Delete(2),
        ],
    )
    assert results[0].ok
    assert results[0].id is not None
    assert stored(sandbox, results[0].id)["comp_name"] == "Alpha Ltd"
    assert not results[1].ok
    assert "selection list" in (results[1].reason or "")
    assert results[2] == OpResult(True, id=1)
    assert not results[3].ok
    assert "999" in (results[3].reason or "")
    assert results[4] == OpResult(True, id=2)
    assert stored(sandbox, 1)["comp_website"] == "acme.ie"
    assert stored(sandbox, 2)["comp_deleted"] == 1
    names = sandbox.execute("SELECT comp_name FROM Company WHERE comp_name LIKE 'Beta%'")
    assert names == []


def test_soap_batches_within_the_record_limit(connect: Connect, sandbox: SageSandbox) -> None:
    crm = connect("soap", max_records=2)
    crm.describe("company")
    sandbox.faults.reset()
    results = crm.apply_operations("company", [Create({"name": f"Batch {n}"}) for n in range(5)])
    assert all(r.ok for r in results)
    assert sandbox.faults.call_counts()["soap:add"] == 3


def test_a_refused_record_is_left_out_and_the_rest_sent_again(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap")
    crm.describe("company")
    sandbox.faults.reset()
    ops = [Create({"name": "One"}), Create({"name": "T" * 61}), Create({"name": "Three"})]
    results = crm.apply_operations("company", ops)
    assert [r.ok for r in results] == [True, False, True]
    assert "truncated" in (results[1].reason or "")
    assert sandbox.faults.call_counts()["soap:add"] == 2


def test_children_are_written_as_nested_records_over_soap(connect: Connect) -> None:
    crm = connect("soap")
    result = crm.apply_operations(
        "company",
        [
            Create(
                {
                    "name": "Nested Ltd",
                    "address.city": "Galway",
                    "phone.business": "555 1",
                    "email.business": "hi@nested.ie",
                }
            )
        ],
    )[0]
    assert result.ok
    where = parse(f"companyid = {result.id}", what="filter")
    row = read_all(
        crm, "company", fields=["address.city", "phone.business", "email.business"], filter=where
    )[0]
    assert row == {
        "address.city": "Galway",
        "phone.business": "555 1",
        "email.business": "hi@nested.ie",
    }


def test_rest_refuses_child_fields(connect: Connect) -> None:
    crm = connect("rest")
    crm.meta("company")
    soap_meta = connect("soap").meta("company")
    crm._meta["company"] = soap_meta  # as if REST described children too
    with pytest.raises(ConfigError, match="over SOAP only"):
        crm.apply_operations("company", [Create({"name": "x", "address.city": "Cork"})])


def test_an_unknown_field_is_a_config_error(crm: SageCrmConnector) -> None:
    with pytest.raises(ConfigError, match="did you mean 'name'"):
        crm.apply_operations("company", [Create({"nmae": "x"})])


def test_a_lost_answer_is_an_outcome_unknown_error(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    crm.describe("company")
    sandbox.faults.lose_answer_next(1)
    with pytest.raises(OutcomeUnknownError, match="may or may not have been applied") as info:
        crm.apply_operations("company", [Update(1, {"website": "a.ie"}), Create({"name": "Lost"})])
    assert info.value.unknown == (0,)
    assert info.value.done == [None, None]
    assert stored(sandbox, 1)["comp_website"] == "a.ie"  # it was applied


def test_a_503_before_the_write_is_retried(
    connect: Connect, sandbox: SageSandbox, api: str
) -> None:
    crm = connect(api, sleep=lambda s: None)
    crm.describe("company")
    sandbox.faults.fail_next(1, status=503)
    result = crm.apply_operations("company", [Create({"name": "After 503"})])[0]
    assert result.ok
    assert len(sandbox.execute("SELECT 1 FROM Company WHERE comp_name = 'After 503'")) == 1


def test_dates_are_written_in_the_servers_zone(
    connect: Connect, sandbox: SageSandbox, api: str
) -> None:
    import datetime as dt

    crm = connect(api)
    moment = dt.datetime(2024, 7, 1, 12, 0, tzinfo=dt.UTC)
    result = crm.apply_operations(
        "opportunity", [Create({"description": "Dated", "targetclose": moment})]
    )[0]
    row = sandbox.execute(
        "SELECT oppo_targetclose FROM Opportunity WHERE oppo_opportunityid = ?", (result.id,)
    )
    assert row[0]["oppo_targetclose"] == "2024-07-01 13:00:00"
