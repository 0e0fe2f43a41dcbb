"""A sync between two SQL tables: the first sync, links, creates both ways, a quiet second
sync, conflicts and their resolution, policies and one-way fields."""

from __future__ import annotations

import pytest
from tests.sync.conftest import B_MODIFIED, SyncPair, counts

from crmbridge.errors import ConfigError
from crmbridge.state import RunStatus
from crmbridge.sync import NeedsAcceptanceError


def seed(pair: SyncPair) -> None:
    pair.add_a(name="Acme", phone="111", vat="DE1")
    pair.add_a(name="Globex", phone="222", vat="DE2")
    pair.add_a(name="Initech", phone="333", vat="DE3")
    pair.add_b("x1", name="Acme", phone_office="111", sic_code="DE1")
    pair.add_b("x2", name="Globex", phone_office="222", sic_code="DE2")
    pair.add_b("x9", name="Umbrella", phone_office="777", sic_code="DE9")


def test_the_first_sync_waits_for_its_link_plan_to_be_accepted(pair: SyncPair) -> None:
    seed(pair)
    plan = pair.sync(dry_run=True, accept=False)
    assert plan.status is RunStatus.DRY_RUN
    assert sorted((x["a_id"], x["b_id"]) for x in plan.report.links) == [("1", "x1"), ("2", "x2")]
    counts(plan, a_to_b__created=1, b_to_a__created=1)
    with pytest.raises(NeedsAcceptanceError, match="--accept-links"):
        pair.sync(accept=False)
    assert pair.links() == {}
    assert len(pair.rows_b()) == 3  # nothing written
    done = pair.sync(accept=True)
    counts(done, a_to_b__created=1, b_to_a__created=1, a_to_b__updated=3)
    pair.assert_in_step()
    assert pair.a_row(4)["name"] == "Umbrella"  # created in a from b


def test_a_second_sync_with_nothing_changed_writes_nothing(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    again = pair.sync()
    writes = {k: v for k, v in again.counts.items() if k.startswith(("a_to_b", "b_to_a")) and v}
    assert writes == {}
    assert again.report.lines == []
    assert again.reads["a"].startswith("changes since")


def test_a_change_on_one_side_reaches_the_other_and_does_not_come_back(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="+49 111")
    pair.edit_b("x2", name="Globex Corporation")
    done = pair.sync()
    counts(done, a_to_b__updated=1, b_to_a__updated=1)
    assert pair.b_row("x1")["phone_office"] == "+49 111"
    assert pair.a_row(2)["name"] == "Globex Corporation"
    echo = pair.sync()  # what the sync wrote is no change: no flip-flop
    assert echo.report.lines == []
    pair.assert_in_step()


def test_different_fields_changed_on_both_sides_is_no_conflict(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="999")
    pair.edit_b("x1", name="ACME Ltd")
    done = pair.sync()
    assert done.report.conflicts == []
    assert (pair.a_row(1)["name"], pair.b_row("x1")["phone_office"]) == ("ACME Ltd", "999")


def test_a_conflict_is_held_listed_and_resolved_by_hand(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="100", notes="from a")
    pair.edit_b("x1", phone_office="200")
    held = pair.sync()
    (conflict,) = pair.state.sync.conflicts(pair.key, status="open")
    assert (conflict.field, conflict.a_value, conflict.b_value) == ("phone", "100", "200")
    assert conflict.base == ["111", "111"]
    assert pair.b_row("x1")["description"] == "from a"  # the rest of the record synced
    assert (pair.a_row(1)["phone"], pair.b_row("x1")["phone_office"]) == ("100", "200")
    assert held.report.conflicts[0]["decision"] == "held"
    pair.sync()  # still held, logged once
    assert len(pair.state.sync.conflicts(pair.key)) == 1
    pair.state.sync.resolve(conflict.id, {"take": "b"})
    pair.sync()
    assert pair.a_row(1)["phone"] == "200"
    assert pair.state.sync.conflict(conflict.id).status == "closed"
    pair.assert_in_step()


def test_a_conflict_resolved_with_a_value_writes_it_to_both_sides(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="100")
    pair.edit_b("x1", phone_office="200")
    pair.sync()
    (conflict,) = pair.state.sync.conflicts(pair.key, status="open")
    pair.state.sync.resolve(conflict.id, {"take": "value", "value": "300"})
    pair.sync()
    assert (pair.a_row(1)["phone"], pair.b_row("x1")["phone_office"]) == ("300", "300")
    assert pair.sync().report.lines == []


@pytest.mark.parametrize(("policy", "expected"), [("a", "100"), ("b", "200"), ("newest", "200")])
def test_conflict_policies_decide_and_log(pair: SyncPair, policy: str, expected: str) -> None:
    pair.write_profile(f"conflicts: {{policy: {policy}}}\n", replace=B_MODIFIED)
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="100")
    pair.edit_b("x1", phone_office="200")  # later: newest is b
    pair.sync()
    assert (pair.a_row(1)["phone"], pair.b_row("x1")["phone_office"]) == (expected, expected)
    (conflict,) = pair.state.sync.conflicts(pair.key)
    assert (conflict.decision, conflict.status) == ((expected == "100" and "a") or "b", "closed")
    assert conflict.policy == policy


def test_newest_holds_when_the_times_cannot_tell(pair: SyncPair) -> None:
    pair.write_profile("conflicts: {policy: newest}\n")  # b has no modified field
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="100")
    pair.edit_b("x1", phone_office="200")
    pair.sync()
    (conflict,) = pair.state.sync.conflicts(pair.key)
    assert (conflict.decision, conflict.status) == ("held", "open")


def test_a_one_way_field_is_owned_by_its_side(pair: SyncPair) -> None:
    pair.write_profile(
        replace={"{a: notes, b: description}": "{a: notes, b: description, direction: a_to_b}"}
    )
    seed(pair)
    pair.sync()
    pair.edit_b("x1", description="typed in the CRM")
    pair.sync()
    assert pair.a_row(1)["notes"] is None  # b's edit stays in b
    pair.edit_a(1, notes="from a")
    pair.edit_b("x1", description="again in the CRM")
    done = pair.sync()
    assert done.report.conflicts == []
    assert pair.b_row("x1")["description"] == "from a"  # a owns it


def test_an_unknown_field_is_one_clear_error(pair: SyncPair) -> None:
    pair.write_profile(replace={"{a: phone, b: phone_office}": "{a: phone, b: phone_ofice}"})
    with pytest.raises(ConfigError, match="phone_office"):
        pair.sync()


def test_an_open_conflict_changed_again_is_replaced_not_doubled(pair: SyncPair) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="100")
    pair.edit_b("x1", phone_office="200")
    pair.sync()
    pair.edit_a(1, phone="150")  # still in conflict, with another value
    pair.sync()
    (conflict,) = pair.state.sync.conflicts(pair.key, status="open")
    assert (conflict.a_value, conflict.b_value) == ("150", "200")


def test_an_open_conflict_settled_by_hand_is_closed_and_cannot_be_resolved_later(
    pair: SyncPair,
) -> None:
    seed(pair)
    pair.sync()
    pair.edit_a(1, phone="100")
    pair.edit_b("x1", phone_office="200")
    pair.sync()
    (conflict,) = pair.state.sync.conflicts(pair.key, status="open")
    pair.edit_b("x1", phone_office="100")  # a person makes both sides equal
    pair.sync()
    assert pair.state.sync.conflicts(pair.key, status="open") == []
    pair.edit_b("x1", phone_office="300")  # a later change on b
    with pytest.raises(ConfigError, match="not open"):
        pair.state.sync.resolve(conflict.id, {"take": "a"})  # would write a's old value back
    pair.sync()
    assert pair.a_row(1)["phone"] == "300"
