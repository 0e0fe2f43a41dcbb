"""Writes through the engine's match -> plan -> apply on both APIs, against the sandbox."""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa
import pytest
from sagecrm_helpers import Connect

from crmbridge.connectors.base import MatchRequest, ReadRequest
from crmbridge.connectors.sagecrm import SageCrmConnector
from crmbridge.connectors.sagecrm.writing import CONFIRMED
from crmbridge.core.identity import KeyRule
from crmbridge.core.outcomes import WriteMode, WriteResult
from crmbridge.errors import ConnectionFailedError
from crmbridge.runner.outputs import OUTCOME, REASON, TARGET_ID
from crmbridge.sandbox.sagecrm import SageSandbox
from crmbridge.testing.writes import plan_records, write_records

EUROPE, USA = -1845493753, -1543503866


def batch(crm: SageCrmConnector, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    schema = crm.describe("company")
    names = list(rows[0])
    return pa.RecordBatch.from_arrays(
        [pa.array([r[n] for r in rows], schema.field(n).arrow_type) for n in names], names=names
    )


def write(
    crm: SageCrmConnector, rows: list[dict[str, Any]], mode: WriteMode, **kw: Any
) -> WriteResult:
    keys = kw.pop("keys", ["supplierid"])
    return write_records(crm, "company", batch(crm, rows), mode, keys=keys, **kw)


def suppliers(sandbox: SageSandbox, prefix: str = "W-") -> list[dict[str, Any]]:
    return sandbox.execute(
        "SELECT * FROM Company WHERE comp_supplierid LIKE ? ORDER BY comp_companyid",
        (prefix + "%",),
    )


def rows(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"supplierid": f"W-{i}", "name": f"Supplier {i}", **extra} for i in range(n)]


def test_upsert_creates_updates_and_leaves_unchanged_one_outcome_and_id_each(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    first = write(crm, rows(3), WriteMode.UPSERT)
    assert first.outcome.to_pylist() == ["created"] * 3
    ids = first.target_id.to_pylist()
    assert [str(r["comp_companyid"]) for r in suppliers(sandbox)] == ids
    changed = [dict(r) for r in rows(3)]
    changed[1]["name"] = "Renamed"
    second = write(crm, changed, WriteMode.UPSERT)
    assert second.outcome.to_pylist() == ["unchanged", "updated", "unchanged"]
    assert second.target_id.to_pylist() == ids
    assert suppliers(sandbox)[1]["comp_name"] == "Renamed"


def test_update_sends_only_the_changed_fields_and_a_null_clears(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    write(crm, rows(1, website="www.w.example"), WriteMode.INSERT)
    before = suppliers(sandbox)[0]
    result = write(crm, rows(1, website=None), WriteMode.UPDATE)
    assert result.outcome.to_pylist() == ["updated"]
    after = suppliers(sandbox)[0]
    assert after["comp_website"] is None
    assert after["comp_name"] == before["comp_name"]


def test_delete_is_soft(crm: SageCrmConnector, sandbox: SageSandbox) -> None:
    write(crm, rows(2), WriteMode.INSERT)
    result = write(crm, rows(2)[:1], WriteMode.DELETE)
    assert result.outcome.to_pylist() == ["deleted"]
    stored = suppliers(sandbox)
    assert [r["comp_deleted"] for r in stored] == [1, None]
    assert write(crm, rows(1), WriteMode.DELETE).outcome.to_pylist() == ["rejected"]


def test_soap_writes_are_batched_within_the_record_limit(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap", max_records=5)
    assert crm.capabilities().max_batch_size == 5
    crm.describe("company")
    sandbox.faults.reset()
    result = write(crm, rows(12), WriteMode.INSERT, keys=[])
    assert result.outcome.to_pylist() == ["created"] * 12
    assert sandbox.faults.call_counts()["soap:add"] == 3


def test_a_refused_record_is_rejected_with_the_servers_reason_the_others_written(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    records = rows(3)
    records[1]["type"] = "Bogus"  # not in the drop-down list
    for r in records:
        r.setdefault("type", "Supplier")
    result = write(crm, records, WriteMode.INSERT, checks=False)
    assert result.outcome.to_pylist() == ["created", "rejected", "created"]
    assert "not in its selection list" in str(result.reason[1].as_py())
    assert result.codes is not None
    assert result.codes[1].as_py() == "invalid_value"
    assert [r["comp_supplierid"] for r in suppliers(sandbox)] == ["W-0", "W-2"]


def test_drop_down_codes_are_compared_as_the_crm_stores_them(crm: SageCrmConnector) -> None:
    # (a profile sends such values with allow_unlisted_values; the checks would refuse them)
    first = write(crm, rows(1, type="supplier"), WriteMode.INSERT, checks=False)
    assert first.outcome.to_pylist() == ["created"]  # stored as "Supplier"
    again = write(crm, rows(1, type="SUPPLIER"), WriteMode.UPSERT, checks=False)
    assert again.outcome.to_pylist() == ["unchanged"]


def test_a_missing_right_is_a_rejected_record_with_the_servers_reason(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    write(crm, rows(2), WriteMode.INSERT)
    sandbox.configure(denied=frozenset({("admin", "company", "delete")}))
    result = write(crm, rows(2), WriteMode.DELETE)
    assert result.outcome.to_pylist() == ["rejected", "rejected"]
    assert "has no right to delete company records" in str(result.reason[0].as_py())
    assert result.codes is not None
    assert result.codes[0].as_py() == "refused"
    assert [r["comp_deleted"] for r in suppliers(sandbox)] == [None, None]


def test_territory_and_owner_defaults_of_the_connection(
    connect: Connect, api: str, sandbox: SageSandbox
) -> None:
    crm = connect(api, territory=EUROPE, owner=2)
    records = [
        {"supplierid": "W-0", "name": "Defaults", "secterr": None},
        {"supplierid": "W-1", "name": "Own territory", "secterr": USA},
    ]
    write(crm, records, WriteMode.INSERT)
    stored = suppliers(sandbox)
    assert [r["comp_secterr"] for r in stored] == [EUROPE, USA]
    assert [r["comp_primaryuserid"] for r in stored] == [2, 2]
    plain = connect(api, username="admin")  # no defaults: the CRM's (the user's territory)
    write(plain, [{"supplierid": "W-2", "name": "CRM default"}], WriteMode.INSERT)
    assert suppliers(sandbox)[2]["comp_secterr"] == -2147483640
    assert suppliers(sandbox)[2]["comp_primaryuserid"] is None


def test_a_lost_answer_never_creates_twice(crm: SageCrmConnector, sandbox: SageSandbox) -> None:
    planned = plan_records(
        crm, "company", batch(crm, rows(3)), WriteMode.UPSERT, keys=["supplierid"]
    )
    sandbox.faults.lose_answer_next(1)  # the first write is applied, its answer lost
    done = planned.writer.apply(planned.plan)
    assert done.column(OUTCOME).to_pylist() == ["created"] * 3
    assert [r["comp_supplierid"] for r in suppliers(sandbox)] == ["W-0", "W-1", "W-2"]
    assert CONFIRMED in done.column(REASON).to_pylist()
    assert done.column(TARGET_ID).to_pylist() == [
        str(r["comp_companyid"]) for r in suppliers(sandbox)
    ]


def test_a_lost_answer_of_a_keyless_insert_is_not_sent_again(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap", max_records=5)
    crm.describe("company")
    planned = plan_records(crm, "company", batch(crm, rows(7)), WriteMode.INSERT)
    sandbox.faults.lose_answer_next(1)
    done = planned.writer.apply(planned.plan)
    outcomes = done.column(OUTCOME).to_pylist()
    assert outcomes == ["rejected"] * 5 + ["created"] * 2  # the second call was never lost
    assert "may exist" in str(done.column(REASON)[0].as_py())
    assert len(suppliers(sandbox)) == 7  # the lost call's records exist once


def test_a_resumed_run_confirms_what_the_interrupted_one_applied(
    connect: Connect, api: str, sandbox: SageSandbox
) -> None:
    crm = connect(api)
    planned = plan_records(
        crm, "company", batch(crm, rows(3)), WriteMode.UPSERT, keys=["supplierid"]
    )
    first = planned.writer.apply(planned.plan)
    planned.writer.target = connect(api)  # a new process: it knows nothing of the first
    again = planned.writer.apply(planned.plan, attempt=2)  # as a resumed run does
    assert again.column(OUTCOME).to_pylist() == ["created"] * 3
    assert again.column(TARGET_ID).to_pylist() == first.column(TARGET_ID).to_pylist()
    assert set(again.column(REASON).to_pylist()) == {CONFIRMED}
    assert len(suppliers(sandbox)) == 3


def test_a_repeated_delete_confirms_a_record_already_gone(
    connect: Connect, api: str, sandbox: SageSandbox
) -> None:
    crm = connect(api)
    write(crm, rows(1), WriteMode.INSERT)
    planned = plan_records(
        crm, "company", batch(crm, rows(1)), WriteMode.DELETE, keys=["supplierid"]
    )
    planned.writer.apply(planned.plan)
    planned.writer.target = connect(api)
    again = planned.writer.apply(planned.plan, attempt=2)
    assert again.column(OUTCOME).to_pylist() == ["deleted"]


def test_a_session_taken_over_during_a_write_logs_on_again_once(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap")
    crm.describe("company")
    sandbox.faults.take_over_next(1)
    result = write(crm, rows(2), WriteMode.INSERT, keys=[])
    assert result.outcome.to_pylist() == ["created", "created"]
    assert sandbox.faults.call_counts()["soap:logon"] == 2
    assert len(suppliers(sandbox)) == 2


@pytest.mark.parametrize("taken_over", [False, True])
def test_two_connectors_of_one_user_writing_at_once_share_one_session(
    connect: Connect, sandbox: SageSandbox, taken_over: bool
) -> None:
    first, second = connect("soap"), connect("soap")
    first.describe("company")
    second.describe("company")
    if taken_over:  # both find the session ended: one of them logs on again, once
        sandbox.faults.take_over_next(1)
    errors: list[BaseException] = []

    def run(crm: SageCrmConnector, start: int) -> None:
        try:
            records = [{"name": f"Parallel {start + i}"} for i in range(10)]
            write_records(crm, "company", batch(crm, records), WriteMode.INSERT)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [
        threading.Thread(target=run, args=(c, n * 10)) for n, c in enumerate((first, second))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sandbox.faults.call_counts()["soap:logon"] == (2 if taken_over else 1)
    assert len(sandbox.sessions.live_users()) == 1
    made = sandbox.execute("SELECT COUNT(*) AS n FROM Company WHERE comp_name LIKE 'Parallel %'")
    assert made[0]["n"] == 20


def test_match_is_one_query_per_page_of_keys_and_a_superset(
    connect: Connect, api: str, sandbox: SageSandbox
) -> None:
    crm = connect(api)
    write(crm, rows(3), WriteMode.INSERT)
    values = pa.RecordBatch.from_arrays([pa.array(["w-0", "W-2", "W-9"])], names=["supplierid"])
    sandbox.faults.reset()
    found = crm.match(
        MatchRequest("company", ["supplierid"], values, rules={"supplierid": KeyRule.EXACT})
    )
    assert sorted(found.column("supplierid").to_pylist()) == ["W-0", "W-2"]  # without case
    assert all(found.column("_crmbridge_version").to_pylist())
    calls = sandbox.faults.call_counts()
    # over SOAP untyped records of the key columns only (queryrecord), not typed ones with
    # their nested children
    assert calls == ({"soap:queryrecord": 1} if api == "soap" else {"rest:GET company": 1})


@pytest.mark.parametrize("field", ["createddate", "updateddate", "deleted", "companyid"])
def test_fields_the_crm_sets_cannot_be_written(crm: SageCrmConnector, field: str) -> None:
    from crmbridge.errors import ConfigError

    schema = crm.describe("company")
    record = {"supplierid": "W-0", "name": "x", field: None}
    data = pa.RecordBatch.from_arrays(
        [pa.array([v], schema.field(n).arrow_type) for n, v in record.items()], names=list(record)
    )
    if field == "companyid":  # the id is how an update names its record: never a value
        result = write_records(crm, "company", data, WriteMode.INSERT, keys=["supplierid"])
        assert result.outcome.to_pylist() == ["created"]
        return
    with pytest.raises(ConfigError, match="set by the CRM"):
        write_records(crm, "company", data, WriteMode.INSERT, keys=["supplierid"], checks=False)


def test_a_write_the_crm_did_not_act_on_is_sent_again_as_the_first_time(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap", retries=0)
    planned = plan_records(crm, "company", batch(crm, rows(3)), WriteMode.INSERT)
    sandbox.faults.fail_next(1, status=503)  # busy: the add is refused before it is applied
    done = planned.writer.apply(planned.plan)
    assert done.column(OUTCOME).to_pylist() == ["created"] * 3
    assert len(suppliers(sandbox)) == 3


def test_a_refused_password_at_a_new_logon_is_not_tried_again(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap")
    crm.describe("company")
    sandbox.execute("UPDATE Users SET user_password = 'changed' WHERE user_logon = 'admin'")
    sandbox.faults.take_over_next(1)
    with pytest.raises(ConnectionFailedError, match="refused the logon"):
        crm.check()
    with pytest.raises(ConnectionFailedError, match="refused the logon"):
        crm.check()
    assert sandbox.sessions.failures("admin") == 1  # one bad password, never a second


def test_a_read_and_writes_of_one_user_interleaved_lose_nothing(
    connect: Connect, sandbox: SageSandbox
) -> None:
    """Sage CRM -> Sage CRM with one user: every write closes the read's cursor (any other call
    of the session does); the read goes on after the last id each time, however often."""
    sandbox.configure(max_records=2)  # 10 pages: 9 cursors closed by writes
    source, target = connect("soap", max_records=2), connect("soap", max_records=2)
    source.describe("company")
    sandbox.faults.reset()
    seen: list[int] = []
    for part in source.read(ReadRequest("company", fields=["companyid", "name"], batch_size=2)):
        seen += part.column("companyid").to_pylist()
        updates = [{"companyid": i, "website": f"www.{i}.example"} for i in seen[-2:]]
        write_records(
            target, "company", batch(target, updates), WriteMode.UPDATE, keys=["companyid"]
        )
    assert seen == list(range(1, 21))
    assert sandbox.faults.call_counts()["soap:query"] > source.config.retries + 1
    websites = sandbox.execute("SELECT comp_website FROM Company WHERE comp_deleted IS NULL")
    assert all(str(w["comp_website"]).endswith(".example") for w in websites)


def test_an_upsert_by_id_does_not_create_a_record_with_another_id(
    crm: SageCrmConnector, sandbox: SageSandbox
) -> None:
    records = [{"companyid": 1, "name": "Renamed One"}, {"companyid": 9999, "name": "Nobody"}]
    result = write_records(
        crm, "company", batch(crm, records), WriteMode.UPSERT, keys=["companyid"]
    )
    assert result.outcome.to_pylist() == ["updated", "rejected"]
    assert "Sage CRM gives record ids" in str(result.reason[1].as_py())
    assert sandbox.execute("SELECT comp_companyid FROM Company WHERE comp_name = 'Nobody'") == []


def test_text_keys_compare_as_the_crm_does_without_case(
    connect: Connect, sandbox: SageSandbox
) -> None:
    crm = connect("soap")
    schema = crm.describe("company")
    assert schema.field("supplierid").key_rule is KeyRule.CASEFOLD
    assert schema.field("email.business").key_rule is KeyRule.EMAIL
    assert schema.field("companyid").key_rule is KeyRule.EXACT
    write(crm, rows(1), WriteMode.INSERT)
    again = write(crm, [{"supplierid": " w-0 ", "name": "Supplier 0 renamed"}], WriteMode.UPSERT)
    assert again.outcome.to_pylist() == ["updated"]  # the same company, not a second one
    assert [r["comp_name"] for r in suppliers(sandbox)] == ["Supplier 0 renamed"]
