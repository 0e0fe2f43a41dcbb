"""The merge reads the links page by page (bounded memory): the pages cover every link once,
and a sync merged in tiny pages gives the same result as in one."""

from __future__ import annotations

import pyarrow as pa
import pytest
from tests.sync.conftest import SyncPair, counts

from crmbridge.profiles.loader import load_sync
from crmbridge.sync import SyncOptions, run_sync
from crmbridge.sync import run as sync_run
from crmbridge.sync.workspace import LINKS_SCHEMA, Workspace


def test_the_pages_cover_every_link_once() -> None:
    ids = ["a", "b'quote", "c", "d", "e", "f", "g"]
    with Workspace() as ws:
        rows = [
            {"a_id": i, "b_id": f"x{i}", "base": None, "kind": "old", "score": None} for i in ids
        ]
        ws.add_links(pa.Table.from_pylist(rows, schema=LINKS_SCHEMA))
        for size in (1, 2, 3, 7, 100):
            seen: list[str] = []
            pages = list(sync_run._link_pages(ws, size))
            for where in pages:
                seen += ws.column(f"SELECT l.a_id FROM links l WHERE {where} ORDER BY l.a_id")
            assert seen == sorted(ids), size
            assert len(pages) == len(ids) // size + 1


def test_a_sync_merged_in_pages_of_two_converges(
    pair: SyncPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_run, "MERGE_PAGE", 2)
    for n in range(1, 8):
        pair.add_a(name=f"Company {n}", phone=str(n), vat=f"DE{n}")
        pair.add_b(f"x{n}", name=f"Company {n}", phone_office=str(n), sic_code=f"DE{n}")
    pair.sync()
    for n in (1, 4, 7):
        pair.edit_a(n, phone=f"{n}{n}")
    pair.edit_b("x2", name="Company Two")
    done = pair.sync()
    counts(done, a_to_b__updated=3, b_to_a__updated=1)
    assert pair.sync().report.lines == []
    pair.assert_in_step()


def test_a_failure_of_the_scratch_database_fails_the_run_with_the_reason(
    pair: SyncPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    pair.add_a(name="Acme", phone="1", vat="DE1")
    pair.sync()

    def broken(*args: object) -> str:
        return "SELECT no_such_column FROM links"

    monkeypatch.setattr(sync_run, "merge_sql", broken)
    loaded = load_sync(pair.profile_path)
    summary = run_sync(loaded, connections=None, state=pair.state, options=SyncOptions())
    assert summary.exit_code == 3
    assert summary.error is not None
    assert "the sync's scratch database failed" in summary.error
    assert "no_such_column" in summary.error
