"""Deletes by policy, update versus delete, records leaving the subset, deleted flags."""

from __future__ import annotations

import pytest
from tests.sync.conftest import B_MODIFIED, SyncPair, counts


def linked(pair: SyncPair, extra: str = "", replace: dict[str, str] | None = None) -> None:
    pair.write_profile(extra, replace=replace)
    pair.add_a(name="Acme", phone="111", vat="DE1", region="north")
    pair.add_a(name="Globex", phone="222", vat="DE2", region="north")
    pair.add_b("x1", name="Acme", phone_office="111", sic_code="DE1")
    pair.add_b("x2", name="Globex", phone_office="222", sic_code="DE2")
    pair.sync()
    assert pair.links() == {"1": "x1", "2": "x2"}


def test_by_default_a_delete_is_not_propagated_and_the_pair_rests(pair: SyncPair) -> None:
    linked(pair)
    pair.delete_a(1)
    pair.sync(full=True)
    assert "x1" in pair.rows_b()
    assert "1" in pair.links()  # kept, marked: not looked at again
    pair.edit_b("x1", phone_office="999")
    done = pair.sync(full=True)
    assert done.report.lines == []
    assert 1 not in pair.rows_a()  # not revived


def test_a_hard_delete_is_propagated_and_the_link_goes(pair: SyncPair) -> None:
    linked(pair, "deletes: {a_to_b: hard, b_to_a: hard}\n")
    pair.delete_a(1)
    pair.delete_b("x2")
    done = pair.sync(full=True)
    counts(done, a_to_b__deleted=1, b_to_a__deleted=1)
    assert pair.rows_a() == {}
    assert pair.rows_b() == {}
    assert pair.links() == {}


def test_an_incremental_read_sees_no_deletes_a_full_one_does(pair: SyncPair) -> None:
    linked(pair, "deletes: {a_to_b: hard}\n", replace=B_MODIFIED)
    pair.delete_a(1)
    pair.add_a(name="Hooli", phone="444", vat="DE4")  # both sides are read by changes
    pair.sync()
    assert "x1" in pair.rows_b()  # nothing read says so: x1 was not read again
    pair.sync(full=True)
    assert "x1" not in pair.rows_b()


def test_a_linked_record_looked_up_and_not_found_is_deleted(pair: SyncPair) -> None:
    linked(pair, "deletes: {a_to_b: hard}\n", replace=B_MODIFIED)
    pair.delete_a(2)
    pair.edit_b("x2", name="Globex")  # b is read by changes: x2 comes back, unchanged
    pair.sync()  # x2's partner is looked up by id in a: gone
    assert "x2" not in pair.rows_b()


def test_a_soft_delete_sets_the_deleted_flag_and_a_flag_reads_as_a_delete(pair: SyncPair) -> None:
    linked(
        pair,
        "deletes: {b_to_a: soft, a_to_b: hard}\n",
        replace={
            "  modified: updated_at\n": "  modified: updated_at\n  deleted_flag: is_deleted\n"
        },
    )
    pair.delete_b("x1")
    pair.sync(full=True)
    assert pair.a_row(1)["is_deleted"] is True  # kept, flagged
    assert "1" not in pair.links()
    pair.edit_a(2, is_deleted=True)  # a flagged delete on a is a delete
    pair.sync()
    assert "x2" not in pair.rows_b()


@pytest.mark.parametrize("policy", ["revive", "delete", "hold"])
def test_a_change_against_a_delete_follows_update_vs_delete(pair: SyncPair, policy: str) -> None:
    linked(pair, f"deletes: {{a_to_b: hard}}\nconflicts: {{update_vs_delete: {policy}}}\n")
    pair.delete_a(1)
    pair.edit_b("x1", phone_office="999")
    pair.sync(full=True)
    if policy == "revive":
        revived = [r for r in pair.rows_a().values() if r["vat"] == "DE1"]
        assert [r["phone"] for r in revived] == ["999"]
        assert pair.links()[str(revived[0]["id"])] == "x1"
        pair.assert_in_step()
    elif policy == "delete":
        assert "x1" not in pair.rows_b()
    else:
        assert "x1" in pair.rows_b()
        (conflict,) = pair.state.sync.conflicts(pair.key, status="open")
        assert (conflict.field, conflict.a_value) == ("$record", "(deleted)")
        pair.state.sync.resolve(conflict.id, {"take": "a"})  # the delete wins
        pair.sync(full=True)
        assert "x1" not in pair.rows_b()


def test_a_record_leaving_the_subset_is_no_delete(pair: SyncPair) -> None:
    linked(
        pair,
        "deletes: {a_to_b: hard}\n",
        replace={"  object: suppliers\n": "  object: suppliers\n  filter: \"region = 'north'\"\n"},
    )
    pair.edit_a(1, region="south", phone="555")
    pair.sync(full=True)
    assert "x1" in pair.rows_b()
    assert pair.b_row("x1")["phone_office"] == "111"  # the pair rests while it is outside
    pair.edit_a(1, region="north")
    pair.sync(full=True)
    assert pair.b_row("x1")["phone_office"] == "555"


def test_an_unlink_policy_forgets_the_pair(pair: SyncPair) -> None:
    linked(pair, "deletes: {a_to_b: unlink}\ninserts: {b_to_a: never}\n")
    pair.delete_a(1)
    pair.sync(full=True)
    assert "1" not in pair.links()
    assert "x1" in pair.rows_b()


def test_a_revived_record_edited_before_the_next_sync_is_no_conflict(pair: SyncPair) -> None:
    linked(pair, "deletes: {a_to_b: hard}\nconflicts: {update_vs_delete: revive}\n")
    pair.delete_a(1)
    pair.edit_b("x1", phone_office="999")
    pair.sync(full=True)  # a's record written back from x1
    pair.edit_b("x1", phone_office="888")  # then edited again, before any other sync
    pair.sync()
    assert pair.state.sync.conflicts(pair.key, status="open") == []
    pair.assert_in_step()
    revived = [r for r in pair.rows_a().values() if r["vat"] == "DE1"]
    assert [r["phone"] for r in revived] == ["888"]


@pytest.mark.parametrize(("policy", "decision"), [("revive", "b"), ("delete", "a")])
def test_a_change_against_a_delete_is_logged_whatever_decides_it(
    pair: SyncPair, policy: str, decision: str
) -> None:
    linked(pair, f"deletes: {{a_to_b: hard}}\nconflicts: {{update_vs_delete: {policy}}}\n")
    pair.delete_a(1)
    pair.edit_b("x1", phone_office="999")
    pair.sync(full=True)
    (conflict,) = pair.state.sync.conflicts(pair.key)
    assert (conflict.field, conflict.policy) == ("$record", "update_vs_delete")
    assert (conflict.decision, conflict.status) == (decision, "closed")
