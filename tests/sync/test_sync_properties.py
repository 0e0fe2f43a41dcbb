"""Random edits on both sides through repeated syncs: the sync converges.

Each example is a few rounds of edits (create, edit fields, delete, leave or rejoin the
subset, a record entered on both sides by hand) followed by a sync, under a policy that
holds nothing (``a`` or ``b`` wins; a change against a delete revives or deletes). After each
sync: links are 1:1 and name records that exist, every record in its subset is linked, linked
records in their subsets are equal on the synced fields, a conflict is logged exactly for each
field both sides changed to different values since the last sync, and (in rounds that ask
for it; the others edit records the sync just wrote) a second sync writes nothing on either
side. ``CRMBRIDGE_SYNC_EXAMPLES`` sets the number of examples.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.sync.conftest import FIELDS, SyncPair

SUBSETS = {
    "  modified: updated_at\n": "  modified: updated_at\n  filter: \"region = 'north'\"\n"
    "  defaults: {region: north}\n",
    "  object: accounts\n": "  object: accounts\n  filter: \"account_type = 'Supplier'\"\n"
    "  defaults: {account_type: Supplier}\n",
}
B_MODIFIED_LINE = "  modified: date_modified\n"
B_FIELD = dict(FIELDS)
VALUES = st.sampled_from([None, "1", "2", "3"])
SIDE = st.sampled_from(["a", "b"])
PICK = st.integers(0, 50)  # which record (modulo the number there is)

EDITS = st.one_of(
    st.tuples(st.just("add"), SIDE, VALUES, VALUES),
    st.tuples(st.just("twin"), VALUES, VALUES),
    st.tuples(st.just("edit"), SIDE, PICK, st.sampled_from(sorted(FIELDS)), VALUES),
    st.tuples(st.just("delete"), SIDE, PICK),
    st.tuples(st.just("out"), SIDE, PICK),
    st.tuples(st.just("in"), SIDE, PICK),
)
ROUNDS = st.lists(
    st.tuples(st.lists(EDITS, min_size=1, max_size=6), st.booleans()), min_size=1, max_size=4
)


class World:
    """The pair, and the values of each linked pair after the last sync (the test's base)."""

    def __init__(self, pair: SyncPair) -> None:
        self.pair = pair
        self.vat = 0
        self.base: dict[str, dict[str, Any]] = {}

    def fresh_vat(self) -> str:
        self.vat += 1
        return f"DE{self.vat}"

    def apply(self, edit: tuple[Any, ...]) -> None:
        pair = self.pair
        kind = edit[0]
        if kind == "add":
            _, side, phone, notes = edit
            self._add(side, self.fresh_vat(), phone, notes)
        elif kind == "twin":  # entered on both sides by hand: linked, not duplicated
            vat = self.fresh_vat()
            self._add("a", vat, edit[1], None)
            self._add("b", vat, edit[2], None)
        else:
            side, pick = edit[1], edit[2]
            # in an order that does not depend on the ids the sync gives (they vary by folder)
            rows = pair.rows_a() if side == "a" else pair.rows_b()
            key = "vat" if side == "a" else "sic_code"
            ids = sorted(rows, key=lambda i: (rows[i][key] or "", str(i)))
            if not ids:
                return
            record = ids[pick % len(ids)]
            if kind == "edit":
                name = edit[3] if side == "a" else B_FIELD[edit[3]]
                self._edit(side, record, {name: edit[4]})
            elif kind == "delete":
                (pair.delete_a if side == "a" else pair.delete_b)(record)  # type: ignore[operator]
            elif kind == "out":
                self._edit(
                    side,
                    record,
                    {"region": "south"} if side == "a" else {"account_type": "Partner"},
                )
            else:
                self._edit(
                    side,
                    record,
                    {"region": "north"} if side == "a" else {"account_type": "Supplier"},
                )

    def _add(self, side: str, vat: str, phone: str | None, notes: str | None) -> None:
        if side == "a":
            self.pair.add_a(name=f"n{vat}", phone=phone, notes=notes, vat=vat, region="north")
        else:
            self.pair.add_b(
                f"b-{vat}",
                name=f"n{vat}",
                phone_office=phone,
                description=notes,
                sic_code=vat,
                account_type="Supplier",
            )

    def _edit(self, side: str, record: Any, values: dict[str, Any]) -> None:
        (self.pair.edit_a if side == "a" else self.pair.edit_b)(record, **values)

    # -- what the next sync must log ----------------------------------------------------------
    def expected_conflicts(self) -> set[tuple[str, str]]:
        a_rows, b_rows = self.pair.rows_a(), self.pair.rows_b()
        links = self.pair.links()
        expected = set()
        for a_id, b_id in links.items():
            a, b = a_rows.get(int(a_id)), b_rows.get(b_id)
            if a is None or b is None or not (_in(a, "a") and _in(b, "b")):
                continue
            base = self.base.get(a_id, {})
            for a_name, b_name in FIELDS.items():
                old = base.get(a_name)
                av, bv = _norm(a[a_name]), _norm(b[b_name])
                if av != old and bv != old and av != bv:
                    expected.add((a_id, a_name))
        linked_a = set(links)
        linked_b = set(links.values())
        new_b = {
            b["sic_code"]: b for b in b_rows.values() if b["id"] not in linked_b and _in(b, "b")
        }
        for a in a_rows.values():
            b = new_b.get(a["vat"])
            if str(a["id"]) in linked_a or b is None or not _in(a, "a"):
                continue
            for a_name, b_name in FIELDS.items():  # first link: no base; one empty side fills
                av, bv = _norm(a[a_name]), _norm(b[b_name])
                if av is not None and bv is not None and av != bv:
                    expected.add((str(a["id"]), a_name))
        return expected

    # -- after a sync -------------------------------------------------------------------------
    def check(self) -> None:
        a_rows, b_rows = self.pair.rows_a(), self.pair.rows_b()
        links = self.pair.links()
        assert len(set(links.values())) == len(links), "a b record linked twice"
        for a_id, b_id in links.items():
            assert int(a_id) in a_rows, ("a link to a record gone", a_id)
            assert b_id in b_rows, ("a link to a record gone", b_id)
        linked_b = set(links.values())
        # a record whose twin on the other side is outside that side's subset is held
        a_out = {a["vat"] for a in a_rows.values() if not _in(a, "a")}
        b_out = {b["sic_code"] for b in b_rows.values() if not _in(b, "b")}
        for a in a_rows.values():
            if _in(a, "a") and a["vat"] not in b_out:
                assert str(a["id"]) in links, ("a record of a not linked", a)
        for b in b_rows.values():
            if _in(b, "b") and b["sic_code"] not in a_out:
                assert b["id"] in linked_b, ("a record of b not linked", b)
        self.base = {k: v for k, v in self.base.items() if k in links}
        for a_id, b_id in links.items():
            a, b = a_rows[int(a_id)], b_rows[b_id]
            if not (_in(a, "a") and _in(b, "b")):
                continue
            for a_name, b_name in FIELDS.items():
                assert _norm(a[a_name]) == _norm(b[b_name]), (a_id, b_id, a_name, a, b)
            assert b["supplier_id"] == a_id
            self.base[a_id] = {n: _norm(a[n]) for n in FIELDS}


def _in(record: dict[str, Any], side: str) -> bool:
    return record["region"] == "north" if side == "a" else record["account_type"] == "Supplier"


def _norm(value: Any) -> Any:
    return value or None


@settings(
    max_examples=int(os.environ.get("CRMBRIDGE_SYNC_EXAMPLES", "25")),  # ~1 s each
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    rounds=ROUNDS,
    policy=st.sampled_from(["a", "b"]),
    update_vs_delete=st.sampled_from(["revive", "delete"]),
)
def test_random_edits_on_both_sides_converge(
    rounds: list[tuple[list[tuple[Any, ...]], bool]], policy: str, update_vs_delete: str
) -> None:
    run_rounds(rounds, policy, update_vs_delete)


@settings(
    max_examples=int(os.environ.get("CRMBRIDGE_SYNC_EXAMPLES", "15")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(rounds=ROUNDS, policy=st.sampled_from(["a", "b"]))
def test_random_edits_converge_when_both_sides_are_read_by_changes(
    rounds: list[tuple[list[tuple[Any, ...]], bool]], policy: str
) -> None:
    """Side b read by its modified time too (a read of changes sees no hard delete: the
    edits delete nothing)."""
    run_rounds(rounds, policy, "revive", changes_only=True)


def run_rounds(
    rounds: list[tuple[list[tuple[Any, ...]], bool]],
    policy: str,
    update_vs_delete: str,
    *,
    changes_only: bool = False,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        pair = SyncPair(path, f"sqlite:///{path}/a.sqlite", f"sqlite:///{path}/b.sqlite")
        try:
            pair.write_profile(
                f"conflicts: {{policy: {policy}, update_vs_delete: {update_vs_delete}}}\n"
                "deletes: {a_to_b: hard, b_to_a: hard}\n",
                replace={
                    **SUBSETS,
                    **(
                        {"  object: accounts\n": SUBSETS["  object: accounts\n"] + B_MODIFIED_LINE}
                        if changes_only
                        else {}
                    ),
                },
            )
            world = World(pair)
            for edits, quiet in rounds:
                for edit in edits:
                    if not (changes_only and edit[0] == "delete"):
                        world.apply(edit)
                expected = world.expected_conflicts()
                done = pair.sync()
                logged = pair.state.sync.conflicts(pair.key)
                fields = [c for c in logged if c.field != "$record"]  # update vs delete
                this_run = {(c.a_id, c.field) for c in fields if c.run_id == done.run_id}
                assert this_run == expected, ("conflicts", this_run, expected)
                assert all(c.status == "closed" for c in logged)
                assert {c.decision for c in fields} <= {policy}
                world.check()
                if not quiet:
                    continue  # the next round edits records the sync just wrote
                again = pair.sync()
                writes = {
                    k: n
                    for k, n in again.counts.items()
                    if k.startswith(("a_to_b", "b_to_a")) and n
                }
                assert writes == {}, ("the next sync wrote", writes)
                world.check()
        finally:
            pair.close()
