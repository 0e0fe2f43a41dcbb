"""Reading: paging, stable order, parallel pages, decoding, incremental and deleted records."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from sugarcrm_helpers import Connect, add_accounts, batch_of, connector_factory, read_all

from crmbridge.connectors.base import ReadRequest, Since
from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.core.outcomes import WriteMode
from crmbridge.errors import ConfigError
from crmbridge.sandbox.sugarcrm import SugarSandbox
from crmbridge.testing.writes import write_records

UTC = dt.UTC
LIST_CALL = {"v4_1": "v4_1:get_entry_list", "v10": "v10:POST /Accounts/filter"}


def list_calls(box: SugarSandbox, api: str) -> int:
    return box.faults.call_counts().get(LIST_CALL[api], 0)


@pytest.mark.parametrize(("records", "page_size", "calls"), [(6, 3, 2), (6, 6, 1), (7, 3, 3)])
def test_paging_stops_at_the_last_record_without_an_extra_call(
    connect_empty: Connect, empty_sandbox: SugarSandbox, records: int, page_size: int, calls: int
) -> None:
    ids = add_accounts(empty_sandbox, records)
    crm = connect_empty("v4_1", page_size=page_size, concurrency=1)
    empty_sandbox.faults.reset()
    assert [r["id"] for r in read_all(crm, "Accounts", fields=["id"])] == ids
    assert list_calls(empty_sandbox, "v4_1") == calls


def test_an_empty_module_gives_one_empty_typed_batch(connect_empty: Connect, api: str) -> None:
    crm = connect_empty(api)
    batches = list(crm.read(ReadRequest("Accounts", fields=["id", "date_modified"])))
    assert len(batches) == 1
    assert batches[0].num_rows == 0
    assert batches[0].schema.types == [pa.string(), pa.timestamp("us", tz="UTC")]


def test_an_offset_past_the_end_answers_an_empty_last_page(crm: SugarCrmConnector) -> None:
    meta = crm.meta("Accounts")
    where = crm.api.where(meta, None)
    page = crm.api.list_page(meta, where, ["id"], 20, order=("id",), offset=10_000)
    assert page.records == []
    assert not page.more


@pytest.mark.parametrize("concurrency", [1, 3])
def test_records_sharing_one_second_are_read_once_each_in_id_order(
    connect_empty: Connect, empty_sandbox: SugarSandbox, api: str, concurrency: int
) -> None:
    later = add_accounts(empty_sandbox, 5, modified="2024-03-02 08:00:00", prefix="Late")
    same = add_accounts(empty_sandbox, 23, modified="2024-03-01 12:00:00", prefix="Same")
    crm = connect_empty(api, page_size=4, concurrency=concurrency)
    got = [r["id"] for r in read_all(crm, "Accounts", fields=["id"])]
    assert got == sorted(same + later)


def test_v4_1_pages_are_fetched_in_parallel_one_session_each_and_yielded_in_order(
    empty_sandbox: SugarSandbox,
) -> None:
    """The sandbox serves the calls of one session one after another (PHP's session lock):
    parallel pages need a session each, logged in only when the read needs them."""
    ids = add_accounts(empty_sandbox, 40)
    empty_sandbox.faults.latency = 0.02
    with connector_factory(empty_sandbox.wsgi_app) as make:
        crm = make("v4_1", page_size=4, concurrency=4)
        got = [r["id"] for r in read_all(crm, "Accounts", fields=["id"])]
        assert crm.api.sessions.opened == 4  # type: ignore[attr-defined]
    assert got == ids
    assert empty_sandbox.faults.peak_parallel_calls > 1, "pages were served one at a time"
    assert empty_sandbox.faults.call_counts()["v4_1:login"] == 4


def test_a_run_making_one_call_at_a_time_logs_in_once(empty_sandbox: SugarSandbox) -> None:
    add_accounts(empty_sandbox, 12)
    with connector_factory(empty_sandbox.wsgi_app) as make:
        crm = make("v4_1", page_size=20, concurrency=4)
        assert len(read_all(crm, "Accounts", fields=["id"])) == 12  # one page
        crm.describe("Contacts")
    assert empty_sandbox.faults.call_counts()["v4_1:login"] == 1


def test_v10_reads_pages_one_after_another(empty_sandbox: SugarSandbox) -> None:
    """One token per user and platform, serialised by the server: concurrency gains
    nothing, so v10 does not fetch pages in parallel."""
    ids = add_accounts(empty_sandbox, 20)
    with connector_factory(empty_sandbox.wsgi_app) as make:
        crm = make("v10", page_size=4, concurrency=4)
        assert [r["id"] for r in read_all(crm, "Accounts", fields=["id"])] == ids
    assert empty_sandbox.faults.peak_parallel_calls == 1
    assert "v10:POST /Accounts/filter/count" not in empty_sandbox.faults.call_counts()


def test_batches_respect_the_batch_size(crm: SugarCrmConnector) -> None:
    batches = list(crm.read(ReadRequest("Contacts", fields=["id"], batch_size=7)))
    assert all(1 <= b.num_rows <= 7 for b in batches)
    assert sum(b.num_rows for b in batches) == 20  # seed: two contacts per account


def test_values_are_decoded_and_typed(crm: SugarCrmConnector, sandbox: SugarSandbox) -> None:
    sandbox.execute(
        "UPDATE accounts SET name = ?, description = ? WHERE id = (SELECT min(id) FROM accounts)",
        ('Acme & Sons "Q"', "<b>bold</b> & 'quoted' AT&amp;T"),
    )
    rows = read_all(crm, "Accounts", fields=["name", "description", "deleted", "date_modified"])
    acme = next(r for r in rows if r["name"].startswith("Acme & Sons"))
    assert acme["name"] == 'Acme & Sons "Q"'
    assert acme["description"] == "<b>bold</b> & 'quoted' AT&amp;T"
    assert acme["deleted"] is False
    assert acme["date_modified"].tzinfo is not None


def test_v10_datetimes_in_the_users_zone_are_read_as_utc(connect: Connect) -> None:
    v4 = read_all(connect("v4_1"), "Contacts", fields=["id", "date_modified", "date_entered"])
    v10 = connect("v10")
    raw = v10.api.list_page(v10.meta("Contacts"), [], ["date_modified"], 1, order=("id",))
    raw = raw.records[0]
    assert not raw["date_modified"].endswith("+00:00"), "the sandbox admin is not on UTC"
    rows = read_all(v10, "Contacts", fields=["id", "date_modified", "date_entered"])
    assert sorted(rows, key=lambda r: r["id"]) == sorted(v4, key=lambda r: r["id"])


def test_both_apis_read_the_same_values(connect: Connect) -> None:
    v4_1, v10_ = connect("v4_1"), connect("v10")
    for module in ("Accounts", "Contacts", "Leads", "Opportunities", "Notes"):
        fields = v4_1.describe(module).field_names  # v10 has a few more (sync_key)
        v4 = read_all(v4_1, module, fields=fields)
        v10 = read_all(v10_, module, fields=fields)
        assert sorted(v4, key=lambda r: r["id"]) == sorted(v10, key=lambda r: r["id"]), module


def test_incremental_reads_refetch_the_cursor_second_and_never_miss(
    connect_empty: Connect, empty_sandbox: SugarSandbox, api: str
) -> None:
    add_accounts(empty_sandbox, 3, modified="2024-03-01 11:59:59", prefix="Old")
    edge = add_accounts(empty_sandbox, 2, modified="2024-03-01 12:00:00", prefix="Edge")
    new = add_accounts(empty_sandbox, 2, modified="2024-03-01 12:00:01", prefix="New")
    crm = connect_empty(api)
    cursor = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    since = Since("date_modified", cursor)
    got = [r["id"] for r in read_all(crm, "Accounts", fields=["id"], since=since)]
    assert got == edge + new
    as_text = Since("date_modified", "2024-03-01 12:00:00")
    assert [r["id"] for r in read_all(crm, "Accounts", fields=["id"], since=as_text)] == got


def test_include_deleted_returns_deleted_records_too(crm: SugarCrmConnector) -> None:
    victim = read_all(crm, "Accounts", fields=["id"])[0]["id"]
    batch = batch_of(crm, "Accounts", [{"id": victim}])
    assert write_records(crm, "Accounts", batch, WriteMode.DELETE).counts()["deleted"] == 1
    live = {r["id"] for r in read_all(crm, "Accounts", fields=["id"])}
    every = read_all(crm, "Accounts", fields=["id", "deleted"], include_deleted=True)
    assert victim not in live
    assert {r["id"] for r in every} == live | {victim}
    assert [r["deleted"] for r in every if r["id"] == victim] == [True]


def test_count_matches_what_a_read_yields(crm: SugarCrmConnector) -> None:
    request = ReadRequest("Contacts", fields=["id"])
    assert crm.count(request) == len(read_all(crm, "Contacts", fields=["id"]))


def test_unknown_fields_are_a_config_error_with_a_suggestion(crm: SugarCrmConnector) -> None:
    with pytest.raises(ConfigError, match="unknown field 'emial1'; did you mean 'email1'"):
        read_all(crm, "Contacts", fields=["id", "emial1"])


def test_a_server_that_caps_the_page_size_is_paged_correctly(api: str) -> None:
    box = SugarSandbox(seed=False, max_list_limit=5)
    try:
        ids = add_accounts(box, 23)
        with connector_factory(box.wsgi_app) as make:
            crm = make(api, page_size=10, concurrency=3)
            assert [r["id"] for r in read_all(crm, "Accounts", fields=["id"])] == ids
    finally:
        box.close()
