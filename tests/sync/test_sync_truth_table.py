"""The truth table of a sync: (what happened on a, what happened on b) × policy → the result.

One linked pair (a 1 ↔ b x1, phone ``111`` on both sides) is edited on each side, then synced;
each row names the edits, the settings, and what must follow: each side's phone (``None``: the
record is gone, ``"flag"``: a's record is flagged deleted), whether the pair is still linked,
and the conflict logged (decision, status). Then the next sync must write nothing.

Edits: ``-`` nothing, a text: the phone changed to it, ``del`` the record deleted, ``flag``
a's deleted flag set, ``out`` the record left its subset (``out:999``: and its phone changed).
Rows named ``new`` start from one record on one side (or on both, same VAT), never synced.
The documentation of each result is in :mod:`crmbridge.sync.merge` and
:mod:`crmbridge.profiles.sync_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tests.sync.conftest import B_MODIFIED, SyncPair

SUBSETS = {
    "  modified: updated_at\n": "  modified: updated_at\n  filter: \"region = 'north'\"\n"
    "  deleted_flag: is_deleted\n  defaults: {region: north}\n",
    "  object: accounts\n": "  object: accounts\n  filter: \"account_type = 'Supplier'\"\n"
    "  defaults: {account_type: Supplier}\n",
}
GONE = None


@dataclass(frozen=True)
class Row:
    name: str
    a: str  # the edit on a (see the module docstring)
    b: str
    want_a: str | None  # a's phone after the sync; None: no record; "flag": flagged deleted
    want_b: str | None
    settings: str = ""  # profile lines added
    direction: str = "both"
    linked: bool = True
    conflict: tuple[str, str] | None = None  # (decision, status) of the one conflict logged
    b_first: bool = False  # b's edit is made before a's (a's is the newest)
    newest: bool = False  # b has a modified field (policy newest compares the times)


def on_delete(a_to_b: str = "", b_to_a: str = "", clash: str = "") -> str:
    """Profile lines: the delete policies and conflicts.update_vs_delete."""
    policies = ", ".join(f"{k}: {v}" for k, v in (("a_to_b", a_to_b), ("b_to_a", b_to_a)) if v)
    lines = f"deletes: {{{policies}}}\n"
    return lines + (f"conflicts: {{update_vs_delete: {clash}}}\n" if clash else "")


def policy(name: str, fields: str = "") -> str:
    return f"conflicts: {{policy: {name}{', fields: {' + fields + '}' if fields else ''}}}\n"


NEVER_A, NEVER_B = "inserts: {b_to_a: never}\n", "inserts: {a_to_b: never}\n"
CLOSED_A, CLOSED_B, HELD = ("a", "closed"), ("b", "closed"), ("held", "open")

# fmt: off
ROWS = [
    # -- one field, both records in their subsets -------------------------------------------
    Row("unchanged", "-", "-", "111", "111"),
    Row("a changed", "222", "-", "222", "222"),
    Row("b changed", "-", "333", "333", "333"),
    Row("both changed to the same value", "444", "444", "444", "444"),
    Row("conflict, a wins", "222", "333", "222", "222", policy("a"), conflict=CLOSED_A),
    Row("conflict, b wins", "222", "333", "333", "333", policy("b"), conflict=CLOSED_B),
    Row("conflict, newest: b", "222", "333", "333", "333", policy("newest"),
        conflict=CLOSED_B, newest=True),
    Row("conflict, newest: a", "222", "333", "222", "222", policy("newest"),
        conflict=CLOSED_A, newest=True, b_first=True),
    Row("conflict, newest without times", "222", "333", "222", "333", policy("newest"),
        conflict=HELD),
    Row("conflict, manual", "222", "333", "222", "333", policy("manual"), conflict=HELD),
    Row("conflict, manual by default", "222", "333", "222", "333", conflict=HELD),
    Row("conflict, per-field override", "222", "333", "222", "222",
        policy("manual", "phone: a"), conflict=CLOSED_A),
    Row("conflict, the pair's own policy", "222", "333", "333", "333",
        policy("a", "phone: a"), direction="both, policy: b", conflict=CLOSED_B),
    # -- directions ---------------------------------------------------------------------------
    Row("a_to_b: a changed", "222", "-", "222", "222", direction="a_to_b"),
    Row("a_to_b: b changed stays in b", "-", "333", "111", "333", direction="a_to_b"),
    Row("a_to_b: both changed, a owns it", "222", "333", "222", "222", direction="a_to_b"),
    Row("a_to_b: same value", "444", "444", "444", "444", direction="a_to_b"),
    Row("b_to_a: b changed", "-", "333", "333", "333", direction="b_to_a"),
    Row("b_to_a: a changed stays in a", "222", "-", "222", "111", direction="b_to_a"),
    Row("b_to_a: both changed, b owns it", "222", "333", "333", "333", direction="b_to_a"),
    Row("none: a changed", "222", "-", "222", "111", direction="none"),
    Row("none: b changed", "-", "333", "111", "333", direction="none"),
    Row("none: both changed", "222", "333", "222", "333", direction="none"),
    # -- deletes ------------------------------------------------------------------------------
    Row("a deleted, hard", "del", "-", GONE, GONE, on_delete("hard"), linked=False),
    Row("a deleted, soft (b has no flag)", "del", "-", GONE, GONE, on_delete("soft"),
        linked=False),
    Row("a deleted, ignore", "del", "-", GONE, "111", on_delete("ignore")),
    Row("a deleted, unlink", "del", "-", GONE, "111", on_delete("unlink") + NEVER_A,
        linked=False),
    Row("a flagged deleted, hard", "flag", "-", "flag", GONE, on_delete("hard"), linked=False),
    Row("b deleted, soft sets a's flag", "-", "del", "flag", GONE, on_delete(b_to_a="soft"),
        linked=False),
    Row("b deleted, hard", "-", "del", GONE, GONE, on_delete(b_to_a="hard"), linked=False),
    Row("b deleted, ignore", "-", "del", "111", GONE, on_delete(b_to_a="ignore")),
    Row("b deleted, unlink", "-", "del", "111", GONE, on_delete(b_to_a="unlink") + NEVER_B,
        linked=False),
    Row("both deleted", "del", "del", GONE, GONE, on_delete("hard", "hard"), linked=False),
    Row("a deleted, b changed: revive", "del", "333", "333", "333",
        on_delete("hard", clash="revive"), conflict=CLOSED_B),
    Row("a deleted, b changed: delete", "del", "333", GONE, GONE,
        on_delete("hard", clash="delete"), linked=False, conflict=CLOSED_A),
    Row("a deleted, b changed: hold", "del", "333", GONE, "333",
        on_delete("hard", clash="hold"), conflict=HELD),
    Row("b deleted, a changed: revive", "222", "del", "222", "222",
        on_delete(b_to_a="hard", clash="revive"), conflict=CLOSED_A),
    Row("b deleted, a changed: hold", "222", "del", "222", GONE,
        on_delete(b_to_a="hard", clash="hold"), conflict=HELD),
    Row("a deleted, b changed, ignore", "del", "333", GONE, "333", on_delete("ignore")),
    # -- subsets ------------------------------------------------------------------------------
    Row("a left its subset", "out", "-", "111", "111", on_delete("hard")),
    Row("a left its subset changed, b changed", "out:222", "333", "222", "333",
        on_delete("hard")),
    Row("b left its subset", "-", "out", "111", "111", on_delete(b_to_a="hard")),
    Row("b left its subset, a changed", "222", "out", "222", "111", on_delete(b_to_a="hard")),
    Row("a left its subset, b deleted", "out", "del", "111", GONE, on_delete(b_to_a="hard"),
        linked=False),
    # -- records never synced -----------------------------------------------------------------
    Row("new on a", "new:555", "", "555", "555"),
    Row("new on a, never", "new:555", "", "555", GONE, NEVER_B, linked=False),
    Row("new on b", "", "new:666", "666", "666"),
    Row("new on b, never", "", "new:666", GONE, "666", NEVER_A, linked=False),
    Row("new on both, same values", "new:555", "new:555", "555", "555"),
    Row("new on both, one empty", "new:", "new:666", "666", "666"),
    Row("new on both, different: a wins", "new:555", "new:666", "555", "555", policy("a"),
        conflict=CLOSED_A),
    Row("new on both, different: manual", "new:555", "new:666", "555", "666", conflict=HELD),
    Row("new on a outside its subset", "new-out:555", "", "555", GONE, linked=False),
]
# fmt: on


def _edit(pair: SyncPair, side: str, edit: str) -> None:
    if edit == "-":
        return
    if side == "a":
        if edit == "del":
            pair.delete_a(1)
        elif edit == "flag":
            pair.edit_a(1, is_deleted=True)
        elif edit.startswith("out"):
            more = {"phone": edit[4:]} if ":" in edit else {}
            pair.edit_a(1, region="south", **more)
        else:
            pair.edit_a(1, phone=edit)
    elif edit == "del":
        pair.delete_b("x1")
    elif edit.startswith("out"):
        pair.edit_b("x1", account_type="Partner")
    else:
        pair.edit_b("x1", phone_office=edit)


def _new(pair: SyncPair, row: Row) -> None:
    if row.a:
        phone = row.a.split(":")[1] or None
        region = "south" if row.a.startswith("new-out") else "north"
        pair.add_a(name="Acme", phone=phone, vat="DE1", region=region)
    if row.b:
        phone = row.b.split(":")[1] or None
        pair.add_b("x1", name="Acme", phone_office=phone, sic_code="DE1", account_type="Supplier")


def _phones(pair: SyncPair) -> tuple[str | None, str | None]:
    a_rows = list(pair.rows_a().values())
    b_rows = list(pair.rows_b().values())
    assert len(a_rows) <= 1, a_rows  # never a duplicate
    assert len(b_rows) <= 1, b_rows
    a = a_rows[0] if a_rows else None
    b = b_rows[0] if b_rows else None
    a_phone = None if a is None else "flag" if a["is_deleted"] else a["phone"]
    return a_phone, None if b is None else b["phone_office"]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_truth_table(pair: SyncPair, row: Row) -> None:
    replace = dict(SUBSETS)
    if row.newest:
        replace["  object: accounts\n"] = replace["  object: accounts\n"].replace(
            *next(iter(B_MODIFIED.items()))
        )
    if row.direction != "both":
        replace["{a: phone, b: phone_office}"] = (
            f"{{a: phone, b: phone_office, direction: {row.direction}}}"
        )
    pair.write_profile(row.settings, replace=replace)
    if row.a.startswith("new") or row.b.startswith("new"):
        _new(pair, row)
    else:
        pair.add_a(name="Acme", phone="111", vat="DE1", region="north")
        pair.add_b("x1", name="Acme", phone_office="111", sic_code="DE1", account_type="Supplier")
        pair.sync()
        assert pair.links() == {"1": "x1"}
        for side in ("b", "a") if row.b_first else ("a", "b"):
            _edit(pair, side, getattr(row, side))

    pair.sync()

    assert _phones(pair) == (row.want_a, row.want_b)
    assert bool(pair.links()) is row.linked
    logged = [(c.decision, c.status) for c in pair.state.sync.conflicts(pair.key)]
    assert logged == ([row.conflict] if row.conflict else [])
    again = pair.sync()
    writes = {k: n for k, n in again.counts.items() if k.startswith(("a_to_b", "b_to_a")) and n}
    assert writes == {}, "the next sync writes nothing"
    assert len(pair.state.sync.conflicts(pair.key)) == len(logged), "nothing logged twice"
