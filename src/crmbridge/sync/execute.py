"""Carrying out one batch of a sync plan: creates on both sides, then changes, then the links.

Each side's operations become a plan of the ordinary form (:func:`crmbridge.core.plan.
decided_plan`) applied by the engine's one write path (:class:`crmbridge.runner.writing.
TargetWriter`: chunks, retries, refused records isolated). Then, in one transaction each, the
links are saved (a failed write leaves its fields' base as it was), links of deleted pairs
removed, conflicts logged and resolved conflicts closed.

Carried out again (a resumed run, ``attempt > 1``), the same operations get the same operation
keys, and the targets confirm what they find done: nothing is created twice.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from crmbridge.connectors.base import CreateIdentity
from crmbridge.core.outcomes import Outcome, WriteMode
from crmbridge.core.plan import Action, PlanSpec, decided_plan
from crmbridge.errors import ErrorContext
from crmbridge.runner.outputs import OUTCOME, REASON, TARGET_ID
from crmbridge.runner.writing import TargetWriter
from crmbridge.state.syncstate import Link, SyncState
from crmbridge.sync.canon import wall_clock
from crmbridge.sync.plan import SIDES, LinkChange, Op, SyncBatch
from crmbridge.sync.sides import SideSetup


@dataclass
class Done:
    """What happened to each operation of a batch, and the counts."""

    #: (side, phase, index) -> (outcome, id, reason)
    outcomes: dict[tuple[str, str, int], tuple[str, str | None, str | None]] = field(
        default_factory=dict
    )
    counts: Counter[str] = field(default_factory=Counter)
    links_saved: int = 0
    links_removed: int = 0
    conflicts: int = 0
    #: side -> ids of records whose write failed: the next sync looks at them again (its
    #: read of changes may not return them)
    retry: dict[str, set[str]] = field(default_factory=lambda: {s: set() for s in SIDES})


def direction(side: str) -> str:
    """The direction of a write to ``side``: a_to_b for writes to b."""
    return "b_to_a" if side == "a" else "a_to_b"


class Executor:
    """Carries out batches for one sync run."""

    def __init__(
        self,
        sides: dict[str, SideSetup],
        *,
        sync_key: str,
        state: SyncState | None,
        run_id: int | None,
    ) -> None:
        self.sides = sides
        self.sync_key = sync_key
        self.state = state
        self.run_id = run_id

    def run(self, batch: SyncBatch, *, attempt: int = 1) -> Done:
        done = Done()
        created: dict[str, list[str | None]] = {}
        for side in SIDES:
            created[side] = self._apply(side, "create", batch.creates[side], done, attempt)
        for side in SIDES:
            ops = batch.changes[side]
            for op in ops:
                self._fill_created(op, created)
            self._apply(side, "change", ops, done, attempt)
        self._links(batch, created, done)
        return done

    # -- writes ---------------------------------------------------------------------------
    def _fill_created(self, op: Op, created: dict[str, list[str | None]]) -> None:
        for name, (side, index) in op.created.items():
            new_id = created[side][index] if index < len(created[side]) else None
            if new_id is None:
                op.action = Action.REJECT.value
                op.reason = f"the {side} record it names was not created"
            op.values[name] = new_id

    def _apply(
        self, side: str, phase: str, ops: list[Op], done: Done, attempt: int
    ) -> list[str | None]:
        """Apply ``ops`` to ``side``; the id of each operation's record (None: failed)."""
        if not ops:
            return []
        setup = self.sides[side]
        writer, plan = self._plan(setup, ops, creates=phase == "create")
        outcomes = writer.apply(plan, attempt=attempt)
        ids: list[str | None] = []
        names = outcomes.column(OUTCOME).to_pylist()
        target_ids = outcomes.column(TARGET_ID).to_pylist()
        reasons = outcomes.column(REASON).to_pylist()
        for i, op in enumerate(ops):
            outcome, record_id, reason = names[i], target_ids[i], reasons[i]
            if outcome == Outcome.REJECTED.value and reason is None:
                reason = op.reason
            done.outcomes[(side, phase, i)] = (outcome, record_id, reason)
            done.counts[f"{direction(side)}.{outcome}"] += 1
            ok = outcome in (
                Outcome.CREATED.value,
                Outcome.UPDATED.value,
                Outcome.DELETED.value,
                Outcome.UNCHANGED.value,
            )
            ids.append((record_id or op.id or op.id_given) if ok else None)
        return ids

    def _plan(self, setup: SideSetup, ops: list[Op], *, creates: bool) -> tuple[TargetWriter, Any]:
        schema = setup.schema
        names = sorted({name for op in ops for name in op.values})
        types = {n: schema.field(n).arrow_type for n in names}
        columns = {}
        for name in names:
            raw = [_value(op.values.get(name)) for op in ops]
            columns[name] = _typed(raw, types[name], setup.spec.timezone)
        values = (
            pa.table(columns)
            if columns
            else pa.table({"_": pa.nulls(len(ops))}).drop_columns(["_"])
        )
        # what recognises a create carried out before (an update writes the key fields too)
        keys = _keys(setup, names) if creates else ()
        caps = setup.caps
        spec = PlanSpec(
            setup.spec.object,
            WriteMode.UPSERT if keys else WriteMode.INSERT,
            tuple(names),
            keys=keys,
            client_ids=caps.create_identity is CreateIdentity.CLIENT_ID,
            namespace=f"sync:{self.sync_key}:{setup.name}",
        )
        plan = decided_plan(
            spec,
            actions=[Action(op.action) for op in ops],
            ids=[op.id for op in ops],
            source_keys=[op.source for op in ops],
            values=values,
            sets={
                n: [n in op.values and op.action == Action.UPDATE.value for op in ops]
                for n in names
            },
            reasons=[op.reason for op in ops],
            codes=[op.code or ("invalid_value" if op.reason else None) for op in ops],
        )
        writer = TargetWriter(
            setup.connector,
            spec,
            ErrorContext(object=setup.spec.object),
            max_batch_size=caps.max_batch_size,
        )
        return writer, plan

    def _retry(self, side: str, phase: str, op: Op, done: Done) -> None:
        found = _retry_of(side, phase, op)
        if found is not None:
            done.retry[found[0]].add(found[1])

    # -- links ----------------------------------------------------------------------------
    def _links(self, batch: SyncBatch, created: dict[str, list[str | None]], done: Done) -> None:
        failed: dict[int, set[str]] = {}
        removed = list(batch.unlink)
        for side in SIDES:
            for phase, ops in (("create", batch.creates[side]), ("change", batch.changes[side])):
                for i, op in enumerate(ops):
                    outcome = done.outcomes.get((side, phase, i), ("rejected", None, None))[0]
                    good = outcome not in (Outcome.REJECTED.value, Outcome.SKIPPED.value)
                    if not good:
                        self._retry(side, phase, op, done)
                    if not good and op.link is not None:
                        failed.setdefault(op.link, set()).update(op.fields)
                        if phase == "create":
                            failed[op.link].add("$create")
                    if good and op.unlink:
                        removed.append(op.unlink)
        keep: list[Link] = []
        for index, change in enumerate(batch.links):
            link = _resolved(change, created)
            if link is None or "$create" in failed.get(index, set()):
                continue
            if change.replaces:
                removed.append(change.replaces)
            base = change.base
            if failed.get(index):
                base = _revert(base, change, failed[index])
            keep.append(Link(link[0], link[1], base))
        if self.state is None:
            return
        if removed:
            self.state.remove_links(self.sync_key, removed)
            done.links_removed = len(removed)
        if keep:
            self.state.save_links(self.sync_key, keep, run_id=self.run_id)
            done.links_saved = len(keep)
        if batch.conflicts:
            self.state.log_conflicts(self.sync_key, batch.conflicts, run_id=self.run_id)
            done.conflicts = len(batch.conflicts)
        if batch.resolved:
            self.state.close(sorted(set(batch.resolved)))


def _retry_of(side: str, phase: str, op: Op) -> tuple[str, str] | None:
    """The record (side, id) a failed operation on ``side`` comes from, to look at again."""
    if phase == "change" and op.id is not None:
        return side, str(op.id)  # the record written; its link brings its partner
    other = "b" if side == "a" else "a"
    if phase == "create" and "#revived:" not in op.source:
        return other, op.source  # the record that was to be created on ``side``
    return None


def _resolved(change: LinkChange, created: dict[str, list[str | None]]) -> tuple[str, str] | None:
    a_id = change.a_id
    b_id = change.b_id
    if change.a_create is not None:
        a_id = created["a"][change.a_create] if change.a_create < len(created["a"]) else None
    if change.b_create is not None:
        b_id = created["b"][change.b_create] if change.b_create < len(created["b"]) else None
    if a_id is None or b_id is None:
        return None
    return str(a_id), str(b_id)


def _revert(base: str, change: LinkChange, fields: set[str]) -> str:
    """``base`` with the fields of failed writes as they were before this run."""
    values = json.loads(base or "{}")
    for name in fields:
        if name.startswith("$"):
            continue
        values[name] = change.old.get(name, [None, None])
    return json.dumps(values, separators=(",", ":"), ensure_ascii=False)


def _keys(setup: SideSetup, names: list[str]) -> tuple[str, ...]:
    """What identifies a record this sync creates on ``setup``'s side (a create repeated
    after a crash is recognised by it): the field holding the other side's id, else the
    link fields."""
    if setup.id_field in names:
        return (setup.id_field,)
    if setup.store_in and setup.store_in in names:
        return (setup.store_in,)
    if setup.link_fields and all(n in names for n in setup.link_fields):
        return tuple(setup.link_fields)
    return ()


def _value(value: Any) -> Any:
    if isinstance(value, dict) and "$text" in value:
        return value["$text"]
    return value


def _typed(values: list[Any], dtype: pa.DataType, zone: str) -> pa.Array:
    """Plan values as ``dtype`` (text from a person's resolution converted; date-times as
    the side keeps them)."""
    try:
        array = pa.array(values, dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        array = pa.array([None if v is None else str(v) for v in values], pa.string()).cast(dtype)
    return wall_clock(array, zone)


__all__ = ["Done", "Executor", "direction"]
