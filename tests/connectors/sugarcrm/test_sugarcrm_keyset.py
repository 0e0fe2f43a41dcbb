"""Keyset paging: reads that stay exact while other clients change the records being read.

Every page after the first asks for the records after the last one read, in the read's
order (``id``; incremental reads ``date_modified, id``). With offsets, a record edited
during a read in ``date_modified`` order moves to the end and shifts another one onto a page
already read: that one was never read. These tests edit, create and delete records through
a second client between the pages of a read, over a real port.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sugarcrm_helpers import Connect, add_accounts, connector_factory, read_all
from tests.runner.conftest import home, state, store, write_profile  # noqa: F401

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.base import ReadRequest, Since
from crmbridge.connectors.sugarcrm import SugarCrmConnector
from crmbridge.connectors.sugarcrm.api import Op
from crmbridge.errors import RemoteError
from crmbridge.runner import run_profile
from crmbridge.sandbox.sugarcrm import RunningServer, SugarSandbox
from crmbridge.state import StateStore

UTC = dt.UTC
OLD = dt.datetime(2024, 1, 1, tzinfo=UTC)
PAGE = 5


@pytest.fixture
def box() -> Iterator[SugarSandbox]:
    sandbox = SugarSandbox(seed=False)
    yield sandbox
    sandbox.close()


@pytest.fixture
def served(box: SugarSandbox) -> Iterator[RunningServer]:
    with box.serve() as server:
        yield server


@pytest.fixture
def over_http(served: RunningServer) -> Iterator[Connect]:
    with connector_factory(url=served.url) as make:
        yield make


def _spread(box: SugarSandbox, count: int, *, uuids: bool = False) -> list[str]:
    """``count`` Accounts, three to a second (so seconds are shared across pages), in id
    order; ``uuids``: with ids as Sugar makes them."""
    ids: list[str] = []
    for n in range(count):
        moment = f"2024-03-01 12:00:{n // 3:02d}"
        ids += add_accounts(box, 1, modified=moment, prefix=f"Acc{n:03d}")
    if uuids:
        made = sorted(str(uuid.UUID(int=random.Random(n).getrandbits(128))) for n in range(count))
        for old, new in zip(ids, made, strict=True):
            box.execute("UPDATE accounts SET id = ? WHERE id = ?", (new, old))
        ids = made
    return ids


def _read_while(
    crm: SugarCrmConnector, request: ReadRequest, meanwhile: dict[int, Any]
) -> list[dict[str, Any]]:
    """The rows of ``request``; after batch ``n`` (pages: batch_size = page_size) is
    received, ``meanwhile[n]()`` runs."""
    rows: list[dict[str, Any]] = []
    for n, batch in enumerate(crm.read(request)):
        rows += batch.to_pylist()
        if n in meanwhile:
            meanwhile[n]()
    return rows


def test_an_incremental_read_misses_nothing_while_records_are_edited(
    box: SugarSandbox, over_http: Connect, api: str
) -> None:
    ids = _spread(box, 30)
    reader, other = over_http(api, page_size=PAGE, concurrency=1), over_http("v4_1")
    edited = ids[1:3]  # on the first page: with offsets, they push two others back
    created = "new-0001"

    def edit() -> None:
        other.api.save("Accounts", [Op("update", i, {"name": f"edited {i}"}) for i in edited])
        other.api.save("Accounts", [Op("create", created, {"name": "created meanwhile"})])

    request = ReadRequest(
        "Accounts",
        fields=["id", "name", "date_modified"],
        since=Since("date_modified", OLD, "id"),
        batch_size=PAGE,
    )
    rows = _read_while(reader, request, {0: edit})
    got = [r["id"] for r in rows]
    assert set(got) == {*ids, created}, "records were lost"
    versions = Counter((r["id"], r["date_modified"]) for r in rows)
    assert max(versions.values()) == 1, "a record was read twice in the same version"
    # the edited ones are read again at their new place, after everything else
    assert got[-3:] == sorted([*edited, created])
    assert [r["name"] for r in rows[-3:] if r["id"] in edited] == [f"edited {i}" for i in edited]
    assert got[:-3] == ids
    modified = [(r["date_modified"], r["id"]) for r in rows]
    assert modified == sorted(modified), "not in (date_modified, id) order"


@pytest.mark.parametrize(("concurrency", "uuids"), [(1, False), (3, False), (4, True)])
def test_a_full_read_reads_each_record_once_while_others_change(
    box: SugarSandbox, over_http: Connect, api: str, concurrency: int, uuids: bool
) -> None:
    """In ``id`` order an edit moves nothing: every record is read exactly once, also in
    parallel ranges (v4_1; split at offsets, or by the ids' first digits when they are
    UUIDs); records deleted meanwhile shift nothing."""
    ids = _spread(box, 40, uuids=uuids)
    box.faults.latency = 0.02  # long enough for the calls of the ranges to overlap
    reader = over_http(api, page_size=PAGE, concurrency=concurrency)
    other = over_http("v4_1")

    def change(first: int) -> None:
        edits = [Op("update", i, {"name": "edited"}) for i in ids[first:40:7]]
        other.api.save("Accounts", edits)
        other.api.save("Accounts", [Op("delete", ids[first + 1]), Op("delete", ids[38 - first])])
        other.api.save("Accounts", [Op("create", f"000-{first}", {"name": "before all"})])

    request = ReadRequest("Accounts", fields=["id", "name"], batch_size=PAGE)
    rows = _read_while(reader, request, {0: lambda: change(0), 2: lambda: change(2)})
    deleted = {ids[1], ids[38], ids[3], ids[36]}
    got = [r["id"] for r in rows]
    assert len(got) == len(set(got)), "a record was read twice"
    assert set(ids) - deleted <= set(got), "records were lost"
    assert got == sorted(got)
    if api == "v4_1" and concurrency > 1:
        assert box.faults.peak_parallel_calls > 1, "the ranges were not read at once"


@pytest.mark.parametrize("uuids", [True, False])
def test_v4_1_splits_ranges_of_uuids_by_their_digits_and_other_ids_by_probing(
    box: SugarSandbox, over_http: Connect, uuids: bool
) -> None:
    ids = _spread(box, 60, uuids=uuids)
    crm = over_http("v4_1", page_size=5, concurrency=4)
    calls = _spy(crm)
    assert [r["id"] for r in read_all(crm, "Accounts", fields=["id"])] == ids
    probes = [c for c in calls if c["max_results"] == 1]
    assert len(probes) == (0 if uuids else 3)
    if uuids:  # the ranges meet at equal steps of the leading digits after the first page
        low = int(ids[4][:4], 16)
        for n in (1, 2, 3):
            point = f"{low + n * (0x10000 - low) // 4:04x}"
            assert sum(f"accounts.id < '{point}'" in c["query"] for c in calls) >= 1
            assert sum(f"accounts.id >= '{point}'" in c["query"] for c in calls) >= 1
    # the first page of each range asks for the ids after the read's first page
    after_first = f"accounts.id > '{ids[4]}'"
    assert sum(after_first in c["query"] for c in calls if c["max_results"] > 1) == 4


def _spy(crm: SugarCrmConnector) -> list[dict[str, Any]]:
    """The parameters of every v4_1 ``get_entry_list`` call ``crm`` makes from now on."""
    calls: list[dict[str, Any]] = []
    call = crm.api.call  # type: ignore[attr-defined]

    def spy(method: str, params: dict[str, Any], **kw: Any) -> Any:
        if method == "get_entry_list":
            calls.append(params)
        return call(method, params, **kw)

    crm.api.call = spy  # type: ignore[attr-defined]
    return calls


def test_records_sharing_one_second_cross_page_boundaries_in_id_order(
    connect_empty: Connect, empty_sandbox: SugarSandbox, api: str
) -> None:
    later = add_accounts(empty_sandbox, 5, modified="2024-03-02 08:00:00", prefix="Late")
    same = add_accounts(empty_sandbox, 23, modified="2024-03-01 12:00:00", prefix="Same")
    crm = connect_empty(api, page_size=4, concurrency=1)
    since = Since("date_modified", OLD, "id")
    got = [r["id"] for r in read_all(crm, "Accounts", fields=["id"], since=since)]
    assert got == sorted(same) + sorted(later)
    # resuming after a record in the middle of the shared second
    after = (dt.datetime(2024, 3, 1, 12, tzinfo=UTC), sorted(same)[9])
    rest = [r["id"] for r in read_all(crm, "Accounts", fields=["id"], since=since, after=after)]
    assert rest == sorted(same)[10:] + sorted(later)


def test_the_read_order_is_declared(crm: SugarCrmConnector) -> None:
    assert crm.read_order(ReadRequest("Accounts")) == ("id",)
    since = Since("date_modified", OLD, "id")
    assert crm.read_order(ReadRequest("Accounts", since=since)) == ("date_modified", "id")


def test_a_resumed_full_read_goes_on_after_the_last_record(
    connect_empty: Connect, empty_sandbox: SugarSandbox, api: str
) -> None:
    ids = add_accounts(empty_sandbox, 12)
    crm = connect_empty(api, page_size=5)
    rows = read_all(crm, "Accounts", fields=["name"], after=(ids[6],))
    assert [r["name"] for r in rows] == [f"Acc {n}" for n in range(7, 12)]


def test_pages_ask_for_the_records_after_the_last_one_read(
    connect_empty: Connect, empty_sandbox: SugarSandbox
) -> None:
    """The v4_1 query of a later page: the cursor, then the keyset, literals quoted."""
    add_accounts(empty_sandbox, 4, modified="2024-03-01 12:00:00", prefix="O'Brien")
    crm = connect_empty("v4_1", page_size=3)
    calls = _spy(crm)
    since = Since("date_modified", dt.datetime(2024, 3, 1, 12, tzinfo=UTC), "id")
    assert len(read_all(crm, "Accounts", fields=["id"], since=since)) == 4
    assert [c["query"] for c in calls] == [
        "accounts.date_modified >= '2024-03-01 12:00:00'",
        "(accounts.date_modified >= '2024-03-01 12:00:00' AND "
        "(accounts.date_modified > '2024-03-01 12:00:00' OR "
        "(accounts.date_modified = '2024-03-01 12:00:00' AND "
        "accounts.id > 'o''brien-0002')))",
    ]


# -- the overlap window and deletes ---------------------------------------------------------
def test_the_overlap_window_reads_late_commits_again_and_skips_what_was_seen(
    tmp_path: Path,
    box: SugarSandbox,
    served: RunningServer,
    store: ConnectionStore,  # noqa: F811
    state: StateStore,  # noqa: F811
    api: str,
) -> None:
    """Run 1 reads everything; a record committed late with a ``date_modified`` inside the
    overlap window, and a record edited since, are read by run 2; the records of the window
    that run 1 processed are read again by the server and left out by the run."""
    _spread(box, 9)  # 12:00:00 .. 12:00:02
    store.add(
        "crm", "sugarcrm", {"url": served.url, "username": "admin", "password": "admin", "api": api}
    )
    (tmp_path / "out").mkdir()
    profile = """
        source:
          connection: crm
          object: Accounts
          fields: [id, name, date_modified]
          incremental: {field: date_modified, key: id, overlap_seconds: 1}
        target: {connection: {type: jsonl, path: out}, object: changes.jsonl}
        mapping: {id: id, name: name}
        """

    def run() -> tuple[dict[str, int], list[str]]:
        summary = run_profile(write_profile(tmp_path, profile), connections=store, state=state)
        return {k: v for k, v in summary.counts.items() if v}, summary.pushed_filter

    assert run()[0] == {"created": 9}
    add_accounts(box, 1, modified="2024-03-01 12:00:01", prefix="Late")  # within the window
    add_accounts(box, 1, modified="2024-03-01 11:59:59", prefix="Older")  # before it: not read
    counts, pushed = run()
    assert pushed == ["\"date_modified\" >= CAST('2024-03-01T12:00:01+00:00' AS TIMESTAMPTZ)"]
    assert counts == {"created": 1, "filtered": 6}  # the 6 records of 12:00:01 and :02 seen
    lines = (tmp_path / "out/changes.jsonl").read_text().splitlines()
    assert lines == ['{"id":"late-0000","name":"Late 0"}']


def test_deletes_come_as_records_flagged_deleted_in_an_incremental_read(
    box: SugarSandbox, over_http: Connect, api: str
) -> None:
    """Sugar's delete is a soft delete that moves ``date_modified``: with include_deleted an
    incremental read returns the record with ``deleted`` true, at its new place."""
    ids = _spread(box, 12)
    reader, other = over_http(api, page_size=PAGE, concurrency=1), over_http("v4_1")

    def delete() -> None:
        other.api.save("Accounts", [Op("delete", ids[0]), Op("delete", ids[11])])

    since = Since("date_modified", OLD, "id")
    request = ReadRequest(
        "Accounts",
        fields=["id", "deleted"],
        since=since,
        include_deleted=True,
        batch_size=PAGE,
    )
    rows = _read_while(reader, request, {0: delete})
    assert [r["id"] for r in rows] == [*ids[:11], *sorted([ids[0], ids[11]])]
    assert [r["deleted"] for r in rows[-2:]] == [True, True]
    assert not any(r["deleted"] for r in rows[:-2])
    later = [r["id"] for r in read_all(reader, "Accounts", fields=["id"], since=since)]
    assert later == ids[1:11], "without include_deleted, deleted records are left out"


def test_an_id_with_a_backslash_is_never_pasted_into_a_v4_1_query(
    connect_empty: Connect, empty_sandbox: SugarSandbox
) -> None:
    add_accounts(empty_sandbox, 4)
    empty_sandbox.execute("UPDATE accounts SET id = 'acc-0001\\x' WHERE id = 'acc-0001'")
    with pytest.raises(RemoteError, match=r"its id holds a backslash"):
        read_all(connect_empty("v4_1", page_size=2, concurrency=1), "Accounts", fields=["id"])
    v10 = read_all(connect_empty("v10", page_size=2), "Accounts", fields=["id"])
    assert len(v10) == 4
