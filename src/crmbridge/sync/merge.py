"""The field-level three-way merge of linked pairs, as one SQL query over the workspace.

For each synced field the **base** is the pair of values (a's, b's) after the last sync (the
link's ``base``, canonical texts). A side *changed* the field when its value now differs from
its base value. Per field of a pair whose records are both in their subsets:

=============================  ===========================================================
changed on                     decision (``d<i>``)
=============================  ===========================================================
neither                        ``still``: nothing; the base stays
a only                         ``to_b``: b gets a's value (through ``a_to_b``)
b only                         ``to_a``: a gets b's value (through ``b_to_a``)
both, to the same value        ``same``: nothing to write; the base moves on
both, differently              a **conflict**: policy ``a`` → ``cf_b`` (b gets a's value),
                               ``b`` → ``cf_a``, ``newest`` → by the records' modified times
                               (a tie or no times: held), ``manual`` → ``held``: neither
                               side is written, the base stays, the conflict is listed
=============================  ===========================================================

A field that goes one way only (``a_to_b``) is owned by a: a change on a is written to b
(also when b changed it too: no conflict), a change on b alone is left alone (``keep``).
A pair linked this run has no base: values that differ count as changed on both sides
(a conflict decided by the policy), except that a value on one side and nothing on the other
fills the empty side. A value too long for the other side under ``too_long: hold`` is
``long``: held like a conflict. A conflict a person resolved (``crmbridge conflicts
resolve``) decides its field the next time: ``to_b`` / ``to_a`` / ``value``. An open conflict
whose field is decided otherwise than held (both sides made equal by hand, one side changed
back to its base) is closed; one held again with other values is replaced by the new one.

The *pair* is merged when both records are in their subsets; otherwise its kind says what
happened: ``a_del`` / ``b_del`` (one record deleted), ``forget`` (both deleted, or deleted
and outside the subset: the link goes), ``out`` (a record left its subset: the pair rests),
``gone`` (a delete that ``deletes: ignore`` left in place). A record outside its subset is
never written: when its partner is deleted the link goes and the record stays as it is.

A record changed on one side (any synced field differs from its base) and deleted on the other
is a conflict of the field ``$record``, decided by ``conflicts.update_vs_delete`` and logged
whichever way: ``revive`` (decision: the changed side) writes the record back under a new id,
linked with the values written as its base; ``delete`` (decision: the deleted side) carries
the delete out by the delete policy; ``hold`` lists it, open, until resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmbridge.profiles.sync_model import Direction, Policy, SyncProfile, TooLong

#: the decisions that write to a side, and those that log a conflict
TO_B = ("to_b", "cf_b")
TO_A = ("to_a", "cf_a")
CONFLICTS = ("cf_a", "cf_b", "held", "long")
#: the decisions that leave a field's conflict open
HELD = ("held", "long")
#: the base key that marks a pair whose deleted side was left alone (``deletes: ignore``)
GONE_KEY = "$gone"
_GONE_PATH = """'$."$gone"'"""
#: the field name of a record-level conflict (changed on one side, deleted on the other)
RECORD_FIELD = "$record"


@dataclass(frozen=True)
class FieldRule:
    """How field pair ``i`` merges."""

    i: int
    a: str
    b: str
    direction: Direction
    policy: Policy
    hold_long: bool  # too long for the other side: hold as a conflict (else reject/cut)

    @property
    def to_b(self) -> bool:
        return self.direction in (Direction.BOTH, Direction.A_TO_B)

    @property
    def to_a(self) -> bool:
        return self.direction in (Direction.BOTH, Direction.B_TO_A)


def rules_of(profile: SyncProfile) -> list[FieldRule]:
    default_long = profile.conflicts.too_long
    return [
        FieldRule(
            i,
            pair.a,
            pair.b,
            pair.direction,
            pair.policy or profile.conflicts.fields.get(pair.a) or profile.conflicts.policy,
            (pair.too_long or default_long) is TooLong.HOLD,
        )
        for i, pair in enumerate(profile.fields)
    ]


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _path(name: str, part: int) -> str:
    key = name.replace("\\", "\\\\").replace('"', '\\"')
    return _text(f'$."{key}"[{part}]')


def merge_sql(rules: list[FieldRule], link_fields: int, where: str = "") -> str:
    """The query: one row per link of the workspace (those of ``where``, a condition on
    ``l.a_id``) with its kind and, per field, the decision, the old and the new base, both
    values and what is written."""
    select = [
        "l.a_id AS a_id",
        "l.b_id AS b_id",
        "l.kind AS link_kind",
        "l.score AS score",
        "l.base AS base",
        "a.st AS a_st",
        "b.st AS b_st",
        "a.mod AS a_mod",
        "b.mod AS b_mod",
        "a.si AS a_si",
        "b.si AS b_si",
        "r.take AS record_take",
        "r.conflict_id AS record_res",
        f"json_extract_string(l.base, {_GONE_PATH}) AS gone",
        *(f"{s}.lw{j} AS {s}lw{j}" for j in range(link_fields) for s in ("a", "b")),
    ]
    a_changed, b_changed = [], []
    for rule in rules:
        i = rule.i
        base_a = f"json_extract_string(l.base, {_path(rule.a, 0)})"
        base_b = f"json_extract_string(l.base, {_path(rule.a, 1)})"
        a_ch = f"(l.base IS NULL OR a.c{i} IS DISTINCT FROM {base_a})"
        b_ch = f"(l.base IS NULL OR b.c{i} IS DISTINCT FROM {base_b})"
        same_ab = f"(b.c{i} IS NOT DISTINCT FROM a.t{i})"
        same_ba = f"(a.c{i} IS NOT DISTINCT FROM b.t{i})"
        same = same_ab if rule.to_b else same_ba
        take = f"f{i}.take"
        decide = _conflict(rule)
        if rule.direction is Direction.NONE:
            decision = "'still'"
        else:
            decision = (
                "CASE "
                + (
                    f"WHEN {take} = 'a' THEN CASE WHEN {same_ab} THEN 'same' ELSE 'to_b' END "
                    if rule.to_b
                    else ""
                )
                + (
                    f"WHEN {take} = 'b' THEN CASE WHEN {same_ba} THEN 'same' ELSE 'to_a' END "
                    if rule.to_a
                    else ""
                )
                + f"WHEN {take} = 'value' THEN 'value' "
                f"WHEN {same} THEN 'same' "
                f"WHEN NOT {a_ch} AND NOT {b_ch} THEN 'still' "
                f"WHEN l.base IS NULL AND b.c{i} IS NULL AND {_sql_bool(rule.to_b)} THEN 'to_b' "
                f"WHEN l.base IS NULL AND a.c{i} IS NULL AND {_sql_bool(rule.to_a)} THEN 'to_a' "
                f"WHEN {a_ch} AND NOT {b_ch} THEN {_on(rule.to_b, 'to_b')} "
                f"WHEN {b_ch} AND NOT {a_ch} THEN {_on(rule.to_a, 'to_a')} "
                f"ELSE {decide} END"
            )
        if rule.hold_long:
            raw = decision
            decision = (
                f"CASE WHEN ({raw}) IN ('to_b', 'cf_b') AND a.x{i} IS NOT NULL THEN 'long' "
                f"WHEN ({raw}) IN ('to_a', 'cf_a') AND b.x{i} IS NOT NULL THEN 'long' "
                f"ELSE ({raw}) END"
            )
        select += [
            f"{decision} AS d{i}",
            f"{base_a} AS ba{i}",
            f"{base_b} AS bb{i}",
            f"a.c{i} AS ac{i}",
            f"b.c{i} AS bc{i}",
            f"a.t{i} AS at{i}",
            f"b.t{i} AS bt{i}",
            f"a.w{i} AS aw{i}",
            f"b.w{i} AS bw{i}",
            f"a.x{i} AS ax{i}",
            f"b.x{i} AS bx{i}",
            f"{take} AS take{i}",
            f"f{i}.value AS value{i}",
            f"f{i}.conflict_id AS res{i}",
        ]
        if rule.direction is not Direction.NONE:
            a_changed.append(f"(l.base IS NOT NULL AND a.c{i} IS DISTINCT FROM {base_a})")
            b_changed.append(f"(l.base IS NOT NULL AND b.c{i} IS DISTINCT FROM {base_b})")
    select.append(f"({' OR '.join(a_changed) or 'FALSE'}) AS a_changed")
    select.append(f"({' OR '.join(b_changed) or 'FALSE'}) AS b_changed")
    joins = [
        "FROM links l",
        "LEFT JOIN a_rows a ON a.id = l.a_id",
        "LEFT JOIN b_rows b ON b.id = l.b_id",
        f"LEFT JOIN resolutions r ON r.a_id = l.a_id AND r.field = {_text(RECORD_FIELD)}",
    ]
    for rule in rules:
        joins.append(
            f"LEFT JOIN resolutions f{rule.i} ON f{rule.i}.a_id = l.a_id "
            f"AND f{rule.i}.field = {_text(rule.a)}"
        )
    kind = (
        "CASE "
        "WHEN gone IS NOT NULL AND (a_st = 'del' OR b_st = 'del' OR a_st IS NULL OR b_st IS NULL) "
        "AND NOT (gone = 'a' AND b_st = 'in') AND NOT (gone = 'b' AND a_st = 'in') THEN 'forget' "
        "WHEN gone IS NOT NULL THEN 'gone' "
        "WHEN a_st = 'del' AND b_st = 'del' THEN 'forget' "
        "WHEN a_st = 'del' AND b_st = 'in' THEN 'a_del' "
        "WHEN b_st = 'del' AND a_st = 'in' THEN 'b_del' "
        "WHEN a_st = 'del' OR b_st = 'del' THEN 'forget' "
        "WHEN a_st = 'in' AND b_st = 'in' THEN 'merge' "
        "ELSE 'out' END"
    )
    inner = "SELECT " + ",\n  ".join(select) + "\n" + "\n".join(joins)
    if where:
        inner += f"\nWHERE {where}"
    bases, parts = [], []
    for rule in rules:
        i = rule.i
        bases.append(
            f"CASE WHEN d{i} IN ('same', 'keep', 'to_b', 'cf_b') THEN ac{i} "
            f"WHEN d{i} IN ('to_a', 'cf_a') THEN bt{i} WHEN d{i} = 'value' THEN NULL "
            f"ELSE ba{i} END AS na{i}"
        )
        bases.append(
            f"CASE WHEN d{i} IN ('same', 'keep', 'to_a', 'cf_a') THEN bc{i} "
            f"WHEN d{i} IN ('to_b', 'cf_b') THEN at{i} WHEN d{i} = 'value' THEN NULL "
            f"ELSE bb{i} END AS nb{i}"
        )
        parts.append(f"{_text(rule.a)}, json_array(na{i}, nb{i})")
    middle = f"SELECT {kind} AS pair_kind, m.*, {', '.join(bases)} FROM ({inner}) m"
    new_base = f"json_object({', '.join(parts)})::VARCHAR" if parts else "'{}'"
    return f"SELECT n.*, {new_base} AS new_base FROM ({middle}) n ORDER BY n.a_id"


def create_base_sql(rules: list[FieldRule], side: str) -> str:
    """The base of a link made by creating a record of ``side``'s row on the other side: the
    row's values, and what the other side gets (null where the pair does not go that way)."""
    parts = []
    for rule in rules:
        i = rule.i
        goes = rule.to_b if side == "a" else rule.to_a
        theirs = f"r.t{i}" if goes else "NULL"
        pair = f"json_array(r.c{i}, {theirs})" if side == "a" else f"json_array({theirs}, r.c{i})"
        parts.append(f"{_text(rule.a)}, {pair}")
    return f"json_object({', '.join(parts)})::VARCHAR" if parts else "'{}'"


def _sql_bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def _on(enabled: bool, decision: str) -> str:
    return f"'{decision}'" if enabled else "'keep'"


def _conflict(rule: FieldRule) -> str:
    """The decision of a field both sides changed to different values."""
    if not rule.to_a:
        return "'to_b'"  # owned by a
    if not rule.to_b:
        return "'to_a'"
    if rule.policy is Policy.A:
        return "'cf_b'"
    if rule.policy is Policy.B:
        return "'cf_a'"
    if rule.policy is Policy.NEWEST:
        return "CASE WHEN a.mod > b.mod THEN 'cf_b' WHEN b.mod > a.mod THEN 'cf_a' ELSE 'held' END"
    return "'held'"


RESOLUTIONS_DDL = (
    "CREATE TABLE resolutions (a_id VARCHAR, field VARCHAR, take VARCHAR, value VARCHAR, "
    "conflict_id BIGINT)"
)

__all__ = [
    "CONFLICTS",
    "GONE_KEY",
    "HELD",
    "RECORD_FIELD",
    "RESOLUTIONS_DDL",
    "TO_A",
    "TO_B",
    "FieldRule",
    "create_base_sql",
    "merge_sql",
    "rules_of",
]
