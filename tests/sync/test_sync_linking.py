"""Pairing records not linked yet: stored ids, link keys under rules, the other side's match,
fuzzy proposals, and what is held instead of duplicated."""

from __future__ import annotations

from tests.sync.conftest import SyncPair

VAT_LINK = "link: {a: [vat], b: [sic_code],"
SUPPLIERS_ONLY = "  object: accounts\n  filter: \"account_type = 'Supplier'\"\n"


def test_link_keys_compare_under_their_rule(pair: SyncPair) -> None:
    pair.write_profile(replace={"b: [sic_code]": "b: [sic_code], rules: {vat: casefold}"})
    pair.add_a(name="Acme", vat="de 1 ".strip())
    pair.add_b("x1", name="Acme", sic_code="DE 1")
    pair.sync()
    assert pair.links() == {"1": "x1"}


def test_a_stored_id_links_before_any_key(pair: SyncPair) -> None:
    pair.add_a(name="Acme", vat="DE1")
    pair.add_b("x1", name="Acme", sic_code="OTHER", supplier_id="1")
    pair.sync()
    assert pair.links() == {"1": "x1"}
    assert len(pair.rows_b()) == 1


def test_a_record_created_on_one_side_and_typed_on_the_other_is_linked_not_doubled(
    pair: SyncPair,
) -> None:
    pair.add_a(name="Acme", vat="DE1")
    pair.add_b("x1", name="Acme", sic_code="DE1")
    pair.sync()
    pair.add_a(name="Hooli", vat="DE7")  # entered in both systems between two syncs
    pair.add_b("x7", name="Hooli Inc", sic_code="DE7")
    pair.sync()
    assert pair.links() == {"1": "x1", "2": "x7"}
    assert len(pair.rows_b()) == 2


def test_a_key_found_several_times_is_held_not_linked_nor_created(pair: SyncPair) -> None:
    pair.add_a(name="Acme", vat="DE1")
    pair.add_b("x1", name="Acme", sic_code="DE1")
    pair.add_b("x2", name="Acme (old)", sic_code="DE1")
    done = pair.sync()
    assert pair.links() == {}
    assert len(pair.rows_b()) == 2
    assert len(pair.rows_a()) == 1
    (held,) = [h for h in done.report.holds if h["side"] == "a"]
    assert "2 records of b" in held["reason"]


def test_a_match_outside_the_other_sides_filter_is_held(pair: SyncPair) -> None:
    pair.write_profile(
        replace={
            "  object: accounts\n": "  object: accounts\n  filter: \"account_type = 'Supplier'\"\n"
        }
    )
    pair.add_a(name="Acme", vat="DE1")
    pair.add_b("x1", name="Acme", sic_code="DE1", account_type="Customer")
    done = pair.sync()
    assert pair.links() == {}
    assert len(pair.rows_b()) == 1  # no duplicate made
    assert "outside b's filter" in done.report.holds[0]["reason"]


def test_fuzzy_pairs_are_proposed_and_made_only_when_accepted(pair: SyncPair) -> None:
    pair.write_profile(
        replace={"link: {a: [vat], b: [sic_code],": "link: {a: [name], b: [name], fuzzy: 80,"}
    )
    pair.add_a(name="Acme Corporation", vat="DE1")
    pair.add_b("x1", name="ACME Corporatoin", sic_code="DE1")
    plan = pair.sync(dry_run=True, accept=False)
    reasons = [h["reason"] for h in plan.report.holds]
    assert any("proposed link to b record x1" in r for r in reasons), reasons
    assert not plan.report.lines  # nothing created for a proposal
    pair.sync(accept=True)
    assert pair.links() == {"1": "x1"}


def test_fuzzy_proposals_above_accept_above_are_made_without_asking(pair: SyncPair) -> None:
    pair.write_profile(
        replace={VAT_LINK: "link: {a: [name], b: [name], fuzzy: 70, accept_above: 90,"}
    )
    pair.add_a(name="Acme")
    pair.add_b("x0", name="Zeta")
    pair.sync()  # the first sync: accepted
    pair.add_a(name="Initech Systems")
    pair.add_b("x1", name="Initech System")
    pair.add_a(name="Globex")
    pair.add_b("x2", name="Globax")
    pair.sync(accept=False)
    links = pair.links()
    assert links.get("3") == "x1"  # 96: made
    assert "4" not in links  # 83: proposed only, neither linked nor created
    assert len(pair.rows_b()) == 4


def test_a_held_record_is_looked_at_again_when_what_held_it_goes(pair: SyncPair) -> None:
    pair.write_profile(
        replace={"  object: accounts\n": SUPPLIERS_ONLY + "  modified: date_modified\n"}
    )
    pair.add_a(name="Acme", vat="DE1")
    pair.add_b("x1", name="Acme", sic_code="DE1", account_type="Partner")  # outside b's filter
    pair.sync()
    assert pair.links() == {}  # held: x1 has its key but is outside b's filter
    pair.add_a(name="Globex", vat="DE2")  # a's read of changes moves past Acme
    pair.sync()
    pair.delete_b("x1")  # what held Acme goes; nothing of Acme changed
    pair.sync()
    assert pair.b_of(1)["name"] == "Acme"  # created in b now
