"""What a sync run did or, in a dry run, will do: line by line and counted, and its files.

Per run folder: ``changes.csv`` (every write, with its outcome), ``rejected.csv`` (the writes
a side refused, and records that could not be prepared, with the reason), ``conflicts.csv``
and ``held.csv`` (records neither linked nor created, and why).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from crmbridge.sync.execute import Done, direction
from crmbridge.sync.plan import SIDES, SyncBatch
from crmbridge.sync.workspace import Workspace

#: lines kept per run for the report and its files (the counts are always complete)
MAX_LINES = 200_000

_PLANNED = {"create": "created", "update": "updated", "delete": "deleted", "reject": "rejected"}


@dataclass
class Line:
    """One write (planned or done)."""

    side: str  # the side written
    action: str
    id: str | None  # the record written (its new id for a create that was carried out)
    source: str  # the other side's record
    changes: str  # "phone: '1' -> '2'; name: ..." (update), values (create)
    why: str
    outcome: str | None = None
    reason: str | None = None


@dataclass
class RunReport:
    lines: list[Line] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[dict[str, Any]] = field(default_factory=list)
    unlinked: int = 0

    def add(self, batch: SyncBatch, done: Done | None) -> None:
        for side in SIDES:
            for phase, ops in (("create", batch.creates[side]), ("change", batch.changes[side])):
                for i, op in enumerate(ops):
                    if len(self.lines) >= MAX_LINES:
                        break
                    outcome = reason = None
                    record_id = op.id
                    if done is not None:
                        outcome, new_id, reason = done.outcomes.get(
                            (side, phase, i), (None, None, None)
                        )
                        record_id = new_id or op.id
                    else:
                        reason = op.reason
                    self.lines.append(
                        Line(
                            side,
                            op.action,
                            record_id,
                            op.source,
                            _changes(op.values, op.before, op.action),
                            op.why,
                            outcome,
                            reason,
                        )
                    )
        for change in batch.links:
            if change.kind in ("key", "stored", "fuzzy") and len(self.links) < MAX_LINES:
                self.links.append({"a_id": change.a_id, "b_id": change.b_id, "by": change.kind})
        self.conflicts.extend(batch.conflicts[: max(0, MAX_LINES - len(self.conflicts))])
        self.unlinked += len(batch.unlink)

    def planned_counts(self, batch: SyncBatch) -> Counter[str]:
        """What a dry run counts for ``batch``: the writes as planned."""
        counts: Counter[str] = Counter()
        for side in SIDES:
            for op in [*batch.creates[side], *batch.changes[side]]:
                counts[f"{direction(side)}.{_PLANNED[op.action]}"] += 1
        counts["links.saved"] += sum(1 for c in batch.links if c.kind != "old")
        counts["links.removed"] += len(batch.unlink)
        counts["conflicts"] += len(batch.conflicts)
        return counts

    def holds_from(self, ws: Workspace) -> None:
        table = ws.table("SELECT side, id, reason, partner, score FROM holds ORDER BY side, id")
        self.holds = table.slice(0, MAX_LINES).to_pylist()

    def problems(self, side: str, problems: list[tuple[str, str]]) -> None:
        for record_id, reason in problems[: max(0, MAX_LINES - len(self.unreadable))]:
            self.unreadable.append({"side": side, "id": record_id, "reason": reason})

    # -- files ----------------------------------------------------------------------------
    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        changes = folder / "changes.csv"
        rejected = folder / "rejected.csv"
        rows = [vars(line) for line in self.lines]
        _csv(changes, rows, list(Line.__dataclass_fields__))
        bad = [r for r in rows if r["outcome"] == "rejected"]
        bad += [
            {"side": u["side"], "id": u["id"], "reason": u["reason"], "outcome": "unreadable"}
            for u in self.unreadable
        ]
        _csv(rejected, bad, list(Line.__dataclass_fields__))
        _csv(
            folder / "conflicts.csv",
            self.conflicts,
            ["a_id", "b_id", "field", "base", "a_value", "b_value", "policy", "decision", "status"],
        )
        _csv(folder / "held.csv", self.holds, ["side", "id", "reason", "partner", "score"])
        return changes, rejected


def _csv(path: Path, rows: list[dict[str, Any]], names: list[str]) -> None:
    columns = {n: pa.array([_text(r.get(n)) for r in rows], pa.string()) for n in names}
    pacsv.write_csv(pa.table(columns), path)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _short(value: Any) -> str:
    if isinstance(value, dict) and "$text" in value:
        value = value["$text"]
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _changes(values: dict[str, Any], before: dict[str, Any], action: str) -> str:
    if action == "delete":
        return ""
    if action == "create" or not before:
        return ", ".join(f"{k}={_short(v)}" for k, v in values.items() if v is not None)
    return "; ".join(f"{k}: {_short(before.get(k))} -> {_short(v)}" for k, v in values.items())


__all__ = ["MAX_LINES", "Line", "RunReport"]
