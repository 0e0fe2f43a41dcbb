"""The plan of a sync: per batch of pairs, what each side gets, which links are made or
dropped, and which conflicts are logged. A dry run shows it; a real run carries out exactly
it (:mod:`crmbridge.sync.execute`); the ledger keeps it while it is in flight.

A batch's operations on a side come in two phases: **creates** first (on both sides), then
**changes** (updates and deletes), since an update may need the id of a record just created
(the ``store_in`` field of a record created on the other side). Each operation knows the link
it belongs to and the fields it carries, so a write the target refuses leaves exactly those
fields' base as it was: the next sync tries them again.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crmbridge.connectors.base import CreateIdentity
from crmbridge.core.plan import OP_NAMESPACE, Action
from crmbridge.profiles.sync_model import DeletePolicy, InsertPolicy, SyncProfile
from crmbridge.sync.merge import CONFLICTS, HELD, RECORD_FIELD, TO_A, TO_B, FieldRule
from crmbridge.sync.sides import SideSetup

SIDES = ("a", "b")


@dataclass
class Op:
    """One operation on one side."""

    action: str  # Action value: create, update, delete, reject
    #: the record acted on (update, delete); for a create: None
    id: str | None
    #: the other side's record it comes from (the operation key derives from it)
    source: str
    #: field -> value to write (JSON-able, see :func:`encode`)
    values: dict[str, Any]
    #: the index of the link (in :attr:`SyncBatch.links`) this operation belongs to
    link: int | None
    #: a's field names whose base this operation moves (kept as they were if it fails)
    fields: list[str] = field(default_factory=list)
    #: field -> the value now (canonical text), for "old → new"
    before: dict[str, Any] = field(default_factory=dict)
    why: str = ""
    reason: str | None = None  # a rejected operation: why
    #: field -> (side, index of a create there) whose new record's id the field gets
    created: dict[str, list[Any]] = field(default_factory=dict)
    #: the a id of the link that goes when this operation succeeds (a propagated delete)
    unlink: str | None = None
    #: the id a create gives its record (when the sync chooses it)
    id_given: str | None = None
    #: a rejected operation's code (RejectCode value; default: invalid_value)
    code: str | None = None


@dataclass
class LinkChange:
    """A link to save after the batch's writes (new, or its base moved)."""

    a_id: str | None
    b_id: str | None
    base: str  # JSON text
    kind: str  # old, key, stored, fuzzy, created
    #: for a record created this batch: the index of its create op on that side
    a_create: int | None = None
    b_create: int | None = None
    #: the a id of a link this one replaces (a record revived under a new id)
    replaces: str | None = None
    #: a's field -> base before this run ([a, b]), for failed writes
    old: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class SyncBatch:
    """What one batch of pairs does (see the module docstring)."""

    creates: dict[str, list[Op]] = field(default_factory=lambda: {s: [] for s in SIDES})
    changes: dict[str, list[Op]] = field(default_factory=lambda: {s: [] for s in SIDES})
    links: list[LinkChange] = field(default_factory=list)
    #: a ids whose link goes (both deleted, unlink policy)
    unlink: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    #: resolved conflicts this batch carries out (closed after it)
    resolved: list[int] = field(default_factory=list)
    #: pairs with nothing to write (unchanged)
    unchanged: int = 0

    @property
    def empty(self) -> bool:
        return not (
            any(self.creates.values())
            or any(self.changes.values())
            or self.links
            or self.unlink
            or self.conflicts
            or self.resolved
        )

    def dumps(self) -> bytes:
        # by hand: dataclasses.asdict deep-copies every value, the most of a batch's cost
        data = {
            "creates": {s: [vars(op) for op in ops] for s, ops in self.creates.items()},
            "changes": {s: [vars(op) for op in ops] for s, ops in self.changes.items()},
            "links": [vars(link) for link in self.links],
            "unlink": self.unlink,
            "conflicts": self.conflicts,
            "resolved": self.resolved,
            "unchanged": self.unchanged,
        }
        return json.dumps(data, default=encode).encode()

    @classmethod
    def loads(cls, data: bytes) -> SyncBatch:
        raw = json.loads(data, object_hook=decode)
        batch = cls(
            links=[LinkChange(**item) for item in raw["links"]],
            unlink=raw["unlink"],
            conflicts=raw["conflicts"],
            resolved=raw["resolved"],
            unchanged=raw["unchanged"],
        )
        for side in SIDES:
            batch.creates[side] = [Op(**op) for op in raw["creates"][side]]
            batch.changes[side] = [Op(**op) for op in raw["changes"][side]]
        return batch


def encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    raise TypeError(f"cannot keep {type(value).__name__} in a sync plan")


def decode(item: dict[str, Any]) -> Any:
    if "$datetime" in item and len(item) == 1:
        return dt.datetime.fromisoformat(item["$datetime"])
    if "$date" in item and len(item) == 1:
        return dt.date.fromisoformat(item["$date"])
    if "$decimal" in item and len(item) == 1:
        return Decimal(item["$decimal"])
    return item


class SyncPlanner:
    """Turns merged pairs and new records into batches (one owner: what a sync writes)."""

    def __init__(
        self,
        profile: SyncProfile,
        rules: list[FieldRule],
        a: SideSetup,
        b: SideSetup,
        *,
        namespace: str,
    ) -> None:
        self.namespace = namespace
        self.profile = profile
        self.rules = rules
        self.sides = {"a": a, "b": b}

    # -- linked pairs ---------------------------------------------------------------------
    def pairs(self, rows: list[dict[str, Any]], batch: SyncBatch) -> None:
        """Plan merged pairs (rows of :func:`crmbridge.sync.merge.merge_sql`)."""
        for row in rows:
            kind = row["pair_kind"]
            if kind == "merge":
                self._merge(row, batch)
            elif kind in ("a_del", "b_del"):
                self._deleted(row, batch, "a" if kind == "a_del" else "b")
            elif kind == "forget":
                batch.unlink.append(row["a_id"])
            else:  # out (a record left its subset), gone (a delete left alone)
                batch.unchanged += 1

    def _merge(self, row: dict[str, Any], batch: SyncBatch) -> None:
        old = {r.a: [row[f"ba{r.i}"], row[f"bb{r.i}"]] for r in self.rules}
        link = LinkChange(row["a_id"], row["b_id"], row["new_base"], row["link_kind"], old=old)
        index = len(batch.links)
        writes: dict[str, Op] = {}
        for rule in self.rules:
            i, decision = rule.i, row[f"d{rule.i}"]
            still_open = row[f"take{i}"] == "open" and decision in HELD
            if row[f"res{i}"] is not None and not still_open:
                batch.resolved.append(int(row[f"res{i}"]))
            if decision in CONFLICTS:
                batch.conflicts.append(self._conflict(row, rule, decision))
            if decision == "value":
                for side in SIDES:
                    self._value_write(row, rule, side, writes, index)
                continue
            for side, decided in (("b", TO_B), ("a", TO_A)):
                if decision not in decided:
                    continue
                other = "a" if side == "b" else "b"
                op = writes.setdefault(side, self._update(row, side, index))
                target_field = getattr(rule, side)
                op.values[target_field] = row[f"{other}w{i}"]
                op.before[target_field] = row[f"{side}c{i}"]
                op.fields.append(rule.a)
                reason = row[f"{other}x{i}"]
                if reason and not rule.hold_long:
                    op.reason = reason
                op.why = op.why or self._why(row, rule, decision, other)
        for side in SIDES:
            self._keep_stored_id(row, side, writes, index)
        changed_base = row["new_base"] != row["base"] or row["link_kind"] != "old"
        if not writes and not changed_base:
            batch.unchanged += 1
            return
        batch.links.append(link)
        for side, op in writes.items():
            if op.reason:
                op.action = Action.REJECT.value
            batch.changes[side].append(op)
        if not writes:
            batch.unchanged += 1

    def _update(self, row: dict[str, Any], side: str, index: int) -> Op:
        other = "a" if side == "b" else "b"
        return Op(Action.UPDATE.value, row[f"{side}_id"], row[f"{other}_id"], {}, index)

    def _value_write(
        self, row: dict[str, Any], rule: FieldRule, side: str, writes: dict[str, Op], index: int
    ) -> None:
        """A conflict resolved with a value: both sides get it (as text, converted there)."""
        op = writes.setdefault(side, self._update(row, side, index))
        name = getattr(rule, side)
        op.values[name] = {"$text": row[f"value{rule.i}"]}
        op.before[name] = row[f"{side}c{rule.i}"]
        op.fields.append(rule.a)
        op.why = op.why or "conflict resolved by hand"

    def _keep_stored_id(
        self, row: dict[str, Any], side: str, writes: dict[str, Op], index: int
    ) -> None:
        """Keep ``link.store_in`` of ``side`` holding the other side's id."""
        setup = self.sides[side]
        if not setup.store_in:
            return
        other_id = row["b_id" if side == "a" else "a_id"]
        if row[f"{side}_si"] == other_id:
            return
        op = writes.setdefault(side, self._update(row, side, index))
        op.values[setup.store_in] = other_id
        op.before[setup.store_in] = row[f"{side}_si"]
        op.why = op.why or f"{setup.store_in} holds the linked record's id"

    def _why(self, row: dict[str, Any], rule: FieldRule, decision: str, other: str) -> str:
        if row[f"take{rule.i}"] not in (None, "open"):
            return f"conflict resolved by hand: {row[f'take{rule.i}']}'s value"
        if decision in ("to_a", "to_b"):
            return f"changed on {other}"
        return f"conflict: {rule.policy.value} wins"

    def _conflict(self, row: dict[str, Any], rule: FieldRule, decision: str) -> dict[str, Any]:
        i = rule.i
        decided = {"cf_b": "a", "cf_a": "b", "held": "held", "long": "held"}[decision]
        policy = "too_long" if decision == "long" else rule.policy.value
        base = None if row["base"] is None else [row[f"ba{i}"], row[f"bb{i}"]]
        return {
            "a_id": row["a_id"],
            "b_id": row["b_id"],
            "field": rule.a,
            "base": base,
            "a_value": row[f"ac{i}"],
            "b_value": row[f"bc{i}"],
            "policy": policy,
            "decision": decided,
            "status": "open" if decided == "held" else "closed",
            "note": row[f"ax{i}"] or row[f"bx{i}"] if decision == "long" else None,
        }

    # -- deletes --------------------------------------------------------------------------
    def _deleted(self, row: dict[str, Any], batch: SyncBatch, gone: str) -> None:
        """A linked record deleted on ``gone``; the other side's record is in its subset."""
        other = "b" if gone == "a" else "a"
        policy: DeletePolicy = getattr(self.profile.deletes, f"{gone}_to_{other}")
        changed = bool(row[f"{other}_changed"])
        take = row["record_take"]
        if policy is DeletePolicy.UNLINK:
            batch.unlink.append(row["a_id"])
            return
        if policy is DeletePolicy.IGNORE:
            base = json.loads(row["base"] or "{}")
            base["$gone"] = gone
            batch.links.append(LinkChange(row["a_id"], row["b_id"], _dumps(base), "old"))
            return
        wins = self.profile.conflicts.update_vs_delete
        if row["record_res"] is not None:
            batch.resolved.append(int(row["record_res"]))
        if take is not None:
            wins = "delete" if take == gone else "revive"
        if changed and take is None:  # logged also when the policy decides it
            decision = {"hold": "held", "delete": gone, "revive": other}[wins]
            batch.conflicts.append(
                {
                    "a_id": row["a_id"],
                    "b_id": row["b_id"],
                    "field": RECORD_FIELD,
                    "base": None,
                    "a_value": "(deleted)" if gone == "a" else "(changed)",
                    "b_value": "(deleted)" if gone == "b" else "(changed)",
                    "policy": "update_vs_delete",
                    "decision": decision,
                    "status": "open" if wins == "hold" else "closed",
                }
            )
        if changed and wins == "hold":
            batch.unchanged += 1
            return
        if changed and wins == "revive":
            self._revive(row, batch, gone)
            return
        setup = self.sides[other]
        op = Op(
            Action.DELETE.value,
            row[f"{other}_id"],
            row[f"{gone}_id"],
            {},
            None,
            why=f"deleted on {gone}",
            unlink=row["a_id"],
        )
        flag = setup.spec.deleted_flag
        if policy is DeletePolicy.SOFT and flag:
            op.action = Action.UPDATE.value
            op.values[flag] = True
        batch.changes[other].append(op)

    def _revive(self, row: dict[str, Any], batch: SyncBatch, gone: str) -> None:
        """Write the record deleted on ``gone`` back there, from the other side's values
        (``update_vs_delete: revive``). It gets a new id: the link is made anew."""
        other = "b" if gone == "a" else "a"
        op = Op(
            Action.CREATE.value,
            None,
            f"{row[f'{other}_id']}#revived:{row[f'{gone}_id']}",
            self._create_values(row, other, prefix=other),
            len(batch.links),
            why=f"changed on {other} after it was deleted on {gone}: written back",
        )
        self._new_id(op, gone)
        batch.creates[gone].append(op)
        link = LinkChange(
            None if gone == "a" else row["a_id"],
            None if gone == "b" else row["b_id"],
            self._revived_base(row, other),
            "created",
            replaces=row["a_id"] if gone == "a" else None,
        )
        at = len(batch.creates[gone]) - 1
        setattr(link, f"{gone}_create", at)
        batch.links.append(link)
        self._store_new_id(batch, other, row[f"{other}_id"], gone, at)

    def _revived_base(self, row: dict[str, Any], source: str) -> str:
        """The base of a record written back from ``source``'s record: its values, and what
        the other side got (null where the pair does not go that way), as for a create."""
        base = {}
        for rule in self.rules:
            i = rule.i
            goes = rule.to_b if source == "a" else rule.to_a
            theirs = row[f"{source}t{i}"] if goes else None
            mine = row[f"{source}c{i}"]
            base[rule.a] = [mine, theirs] if source == "a" else [theirs, mine]
        return _dumps(base)

    # -- new records ----------------------------------------------------------------------
    def creates(self, rows: list[dict[str, Any]], side: str, batch: SyncBatch) -> None:
        """Plan records new on ``side`` (rows of that side, with ``new_base``)."""
        other = "b" if side == "a" else "a"
        policy: InsertPolicy = getattr(self.profile.inserts, f"{side}_to_{other}")
        if policy is InsertPolicy.NEVER:
            return
        for row in rows:
            values = self._create_values(row, side, prefix="")
            reasons = [row[f"x{r.i}"] for r in self.rules if row.get(f"x{r.i}")]
            op = Op(
                Action.CREATE.value,
                None,
                row["id"],
                values,
                len(batch.links),
                why=f"new on {side}",
                reason=reasons[0] if reasons else None,
            )
            if op.reason:
                op.action = Action.REJECT.value
            self._new_id(op, other)
            batch.creates[other].append(op)
            at = len(batch.creates[other]) - 1
            link = LinkChange(
                row["id"] if side == "a" else op.id_given,
                row["id"] if side == "b" else op.id_given,
                row["new_base"],
                "created",
            )
            setattr(link, f"{other}_create", at)
            batch.links.append(link)
            self._store_new_id(batch, side, row["id"], other, at)

    def _store_new_id(
        self, batch: SyncBatch, side: str, record_id: str, created_on: str, at: int
    ) -> None:
        """The record ``record_id`` of ``side`` gets the id of the record created from it on
        the other side (``link.store_in``), once that create is carried out."""
        setup = self.sides[side]
        if not setup.store_in:
            return
        batch.changes[side].append(
            Op(
                Action.UPDATE.value,
                record_id,
                record_id,
                {setup.store_in: None},
                len(batch.links) - 1,
                why=f"{setup.store_in} holds the new record's id",
                created={setup.store_in: [created_on, at]},
            )
        )

    def _new_id(self, op: Op, side: str) -> None:
        """A record created on a side whose ids are text that the system does not choose (a
        SQL table keyed by text) gets an id derived from where it comes from: the same
        create planned again gets the same id, so it is recognised, never made twice."""
        setup = self.sides[side]
        id_field = setup.schema.field(setup.id_field)
        if setup.caps.create_identity is CreateIdentity.CLIENT_ID or id_field.read_only:
            return
        if not id_field.type.is_text or op.values.get(setup.id_field) is not None:
            return
        name = f"{self.namespace}:{side}\x1f{op.source}"
        op.values[setup.id_field] = op.id_given = str(uuid.uuid5(OP_NAMESPACE, name))

    def _create_values(self, row: dict[str, Any], side: str, *, prefix: str) -> dict[str, Any]:
        """The fields of a record created on the other side from ``side``'s row (``prefix``:
        the merge rows name the columns ``aw0``, creates rows ``w0``)."""
        other = "b" if side == "a" else "a"
        target = self.sides[other]
        values: dict[str, Any] = dict(target.spec.defaults)
        for rule in self.rules:
            goes = rule.to_b if side == "a" else rule.to_a
            if goes:
                values[getattr(rule, other)] = row[f"{prefix}w{rule.i}"]
        for j, name in enumerate(target.link_fields):
            key = f"{prefix}lw{j}"
            if key in row and name not in values:
                values[name] = row[key]
        if target.store_in:
            values[target.store_in] = row[f"{side}_id"] if prefix else row["id"]
        return values


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


__all__ = ["LinkChange", "Op", "SyncBatch", "SyncPlanner", "decode", "encode"]
