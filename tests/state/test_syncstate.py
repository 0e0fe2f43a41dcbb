"""The links and the conflict log of two-way syncs, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from crmbridge.errors import ConfigError
from crmbridge.state import StateStore
from crmbridge.state.syncstate import Link


def test_links_are_saved_found_by_either_side_and_replaced(db_url: str) -> None:
    with StateStore(db_url) as store:
        sync = store.sync
        sync.save_links(
            "s",
            [Link("a1", "b1", '{"name":["Acme","Acme"]}'), Link("a2", "b2", "{}")],
            run_id=1,
        )
        sync.save_links("other", [Link("a1", "b9", "{}")], run_id=1)
        assert {link.b_id for link in sync.links("s", a_ids=["a1"], b_ids=["b2"])} == {"b1", "b2"}
        sync.save_links("s", [Link("a1", "b1", '{"name":["Acme Ltd","Acme Ltd"]}', "v2")], run_id=2)
        (link,) = sync.links("s", a_ids=["a1"])
        assert link.base == '{"name":["Acme Ltd","Acme Ltd"]}'
        assert link.a_version == "v2"
        assert sync.count_links("s") == 2
        assert [len(batch) for batch in sync.all_links("s", batch=1)] == [1, 1]
        sync.remove_links("s", ["a2"])
        assert sync.count_links("s") == 1
        assert sync.count_links("other") == 1


def test_a_record_is_linked_to_one_record_of_the_other_side_only(db_url: str) -> None:
    with StateStore(db_url) as store:
        store.sync.save_links("s", [Link("a1", "b1", "{}")], run_id=1)
        with pytest.raises(ConfigError, match="linked to two records"):
            store.sync.save_links("s", [Link("a2", "b1", "{}")], run_id=2)
        assert store.sync.count_links("s") == 1


def test_conflicts_are_logged_once_resolved_and_closed(db_url: str) -> None:
    with StateStore(db_url) as store:
        sync = store.sync
        held = {
            "a_id": "a1",
            "b_id": "b1",
            "field": "phone",
            "base": ["1", "1"],
            "a_value": "2",
            "b_value": "3",
            "policy": "manual",
            "decision": "held",
            "status": "open",
        }
        decided = {**held, "field": "name", "policy": "a", "decision": "a", "status": "closed"}
        sync.log_conflicts("s", [held, decided], run_id=1)
        sync.log_conflicts("s", [held], run_id=2)  # still the same clash: not logged again
        assert [c.field for c in sync.conflicts("s")] == ["phone", "name"]
        (open_one,) = sync.conflicts("s", status="open")
        assert (open_one.a_value, open_one.b_value, open_one.base) == ("2", "3", ["1", "1"])
        sync.resolve(open_one.id, "4")
        with pytest.raises(ConfigError, match="not open"):
            sync.resolve(open_one.id, "5")
        (resolved,) = sync.resolved("s")
        assert resolved.resolution == "4"
        assert resolved.resolved_at is not None
        sync.close([resolved.id])
        assert sync.resolved("s") == []
        assert sync.conflict(open_one.id).status == "closed"
        with pytest.raises(ConfigError, match="no conflict"):
            sync.conflict(999)
