"""A sync's plan kept in a file and carried out later: ``--plan-out FILE`` and ``apply FILE``.

    crmbridge sync suppliers.sync.yaml --dry-run --plan-out suppliers.plan.jsonl
    crmbridge apply suppliers.plan.jsonl

The file is JSON Lines: the first line describes the plan (the profile, when it was made, the
change cursors the dry run reached, the counts), each further line is one batch exactly as
the run ledger keeps it (:class:`~crmbridge.sync.plan.SyncBatch`): the writes on each side with
the values they write and the values they found (``before``), the links made or moved, the
conflicts logged.

Before ``apply`` writes a batch it looks each record up again (:func:`stale`): an update or
delete whose record changed since the plan (one of the fields it writes no longer holds the
value the plan saw) or is gone, and a create whose record was linked meanwhile, is refused —
rejected ``stale`` with the reason — never written; the rest of its record's link keeps its
old base, so the next sync decides that record again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.core.outcomes import RejectCode
from crmbridge.core.plan import Action
from crmbridge.errors import ConfigError
from crmbridge.state.syncstate import SyncState
from crmbridge.sync.plan import SIDES, Op, SyncBatch, encode
from crmbridge.sync.sides import SideSetup

FORMAT = "crmbridge sync plan 1"


@dataclass
class SyncPlanHeader:
    """What a sync plan file says about itself (its first line)."""

    profile_path: str
    profile_key: str
    name: str
    params: dict[str, str]
    created_at: str
    #: the sync had no links yet (a first sync) and its links were accepted
    first: bool
    accept_links: bool
    #: the dry run that made the plan (a sync run after it makes the plan stale)
    made_by_run: int
    #: side -> the change cursor the dry run reached (stored once the plan is carried out)
    cursors: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0

    def dumps(self) -> str:
        return json.dumps({"format": FORMAT, **asdict(self)}, default=encode)


def is_sync_plan(path: Path) -> bool:
    """Whether ``path`` is a sync plan file (and not a transfer's Parquet plan)."""
    try:
        with path.open("rb") as handle:
            start = handle.read(64)
    except OSError:
        return False
    return start.startswith(b"{") and FORMAT.encode() in start


class SyncPlanWriter:
    """Writes a dry run's batches as they are planned, then the header (on close)."""

    def __init__(self, path: Path, header: SyncPlanHeader) -> None:
        self.path = path
        self.header = header
        self._partial = Path(f"{path}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: IO[bytes] | None = self._partial.open("wb")

    def add(self, batch: SyncBatch) -> None:
        assert self._out is not None
        self._out.write(batch.dumps() + b"\n")
        self.header.batches += 1

    def close(self, *, cursors: dict[str, Any], counts: dict[str, int]) -> None:
        """Finish the file (written under a temporary name, renamed into place)."""
        assert self._out is not None
        self._out.close()
        self._out = None
        self.header.cursors = cursors
        self.header.counts = counts
        final = Path(f"{self.path}.tmp")
        with final.open("wb") as out, self._partial.open("rb") as body:
            out.write(self.header.dumps().encode() + b"\n")
            while chunk := body.read(1 << 20):
                out.write(chunk)
        os.replace(final, self.path)
        self._partial.unlink()

    def abandon(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        self._partial.unlink(missing_ok=True)


def read_header(path: Path) -> SyncPlanHeader:
    from crmbridge.sync.plan import decode

    try:
        with path.open("rb") as handle:
            first = handle.readline()
        data = json.loads(first, object_hook=decode)
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read the sync plan {path}: {err}") from None
    if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
        raise ConfigError(f"{path} is not a crmbridge sync plan (crmbridge sync --plan-out)")
    try:
        return SyncPlanHeader(**data)
    except TypeError as err:
        raise ConfigError(f"{path} is not a crmbridge sync plan: {err}") from None


def batches(path: Path) -> Iterator[SyncBatch]:
    """The file's batches, in order."""
    with path.open("rb") as handle:
        handle.readline()
        for line in handle:
            if line.strip():
                yield SyncBatch.loads(line)


def stale(batch: SyncBatch, sides: dict[str, SideSetup], links: SyncState, key: str) -> int:
    """Refuse, in place, the operations of ``batch`` that the world overtook since the plan
    (see the module docstring); how many were refused."""
    refused = 0
    for side in SIDES:
        other = "b" if side == "a" else "a"
        creates = [op for op in batch.creates[side] if op.action == Action.CREATE.value]
        if creates:
            sources = [op.source for op in creates]
            if other == "a":
                linked = {k.a_id for k in links.links(key, a_ids=sources)}
            else:
                linked = {k.b_id for k in links.links(key, b_ids=sources)}
            for op in creates:
                if op.source in linked:
                    refused += _refuse(op, f"{op.source} was linked since the plan was made")
        changes = [
            op
            for op in batch.changes[side]
            if op.action in (Action.UPDATE.value, Action.DELETE.value) and op.id is not None
        ]
        if changes:
            now = _current(sides[side], [str(op.id) for op in changes])
            for op in changes:
                refused += _check(op, now.get(str(op.id)), op.action)
    return refused


def _current(setup: SideSetup, ids: list[str]) -> dict[str, dict[str, Any]]:
    """id -> the record's comparable values now (canonical text per field)."""
    fetched = setup.fetch(ids)
    if fetched is None:  # the side cannot look records up: read it whole
        wanted = pa.array(sorted(set(ids)), pa.string())
        parts = [
            raw.filter(pc.is_in(pc.cast(raw.column(setup.id_field), pa.string()), wanted))
            for raw in setup.read(since=None, include_deleted=False, batch_size=50_000)
            if raw.num_rows
        ]
        table = pa.Table.from_batches(parts) if parts else None
        if table is None or table.num_rows == 0:
            return {}
        fetched = table.combine_chunks().to_batches()[0]
    rows, _ = setup.rows(fetched, src="fetched", whole_condition=True)
    result: dict[str, dict[str, Any]] = {}
    names = {f"c{i}": name for i, name in enumerate(setup.fields)}
    for row in rows.to_pylist():
        values = {names[c]: row[c] for c in names}
        if setup.store_in:
            values[setup.store_in] = row["si"]
        values["$state"] = row["st"]
        result[row["id"]] = values
    return result


def _check(op: Op, now: dict[str, Any] | None, action: str) -> int:
    if now is None or now.get("$state") == "del":
        if action == Action.DELETE.value:
            return 0  # deleted already: carrying the delete out again does no harm
        return _refuse(op, f"the record {op.id} is gone since the plan was made")
    for name, was in op.before.items():
        if name in now and now[name] != was:
            return _refuse(
                op,
                f"the record {op.id} changed since the plan was made ({name} was "
                f"{was!r}, now {now[name]!r})",
            )
    return 0


def _refuse(op: Op, reason: str) -> int:
    op.action = Action.REJECT.value
    op.reason = reason
    op.code = RejectCode.STALE.value
    return 1


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


__all__ = [
    "SyncPlanHeader",
    "SyncPlanWriter",
    "batches",
    "is_sync_plan",
    "now_text",
    "read_header",
    "stale",
]
