"""Incremental reads: each run takes only the records changed since the previous run.

The profile names a cursor field (``date_modified``) and a key (``id``). After a run that did
not fail, the state store keeps the highest cursor value seen and the keys of the records
whose cursor lies within ``overlap_seconds`` of it. The next run reads ``cursor >= highest -
overlap`` (pushed down to the source when it can) and leaves out records whose key was seen
with the same cursor value. So records that share the last second, or that were committed
late within the window, are neither missed nor counted twice; a record changed again has a
new cursor value and is read again.

A failed run saves nothing: the next run starts from the same cursor (records already written
come out unchanged with upsert). Rejected records are counted as processed: the cursor moves
past them, and the error file keeps them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc
from sqlglot import exp

from crmbridge.connectors.base import Since
from crmbridge.profiles.model import Incremental
from crmbridge.state import StateStore

STATE_KEY = "incremental"


@dataclass
class Cursor:
    """Where the previous run stopped, and what this run has seen."""

    spec: Incremental
    scope: str
    start: Any = None  # highest cursor value of the previous run (None: first run)
    seen_before: dict[str, Any] = field(default_factory=dict)  # key -> cursor, in the window
    highest: Any = None
    seen: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls, spec: Incremental, profile_key: str, state: StateStore | None, *, legacy: str = ""
    ) -> Cursor:
        """The cursor kept for the profile (``legacy``: the name older versions kept it
        under, adopted when the profile has none yet)."""
        scope = f"profile:{profile_key}"
        saved = state.get_value(scope, STATE_KEY) if state is not None else None
        if saved is None and state is not None and legacy:
            saved = state.get_value(f"profile:{legacy}", STATE_KEY)
        cursor = cls(spec, scope)
        if isinstance(saved, dict) and saved.get("field") == spec.field:
            cursor.start = _decode(saved.get("highest"))
            cursor.seen_before = {k: _decode(v) for k, v in (saved.get("seen") or {}).items()}
            cursor.highest = cursor.start
            cursor.seen = dict(cursor.seen_before)
        return cursor

    @property
    def low(self) -> Any:
        """``start - overlap``: the lowest cursor value this run reads (None: everything)."""
        low = self.start
        if isinstance(low, dt.datetime):
            low = low - dt.timedelta(seconds=self.spec.overlap_seconds)
        return low

    def since(self) -> Since | None:
        """The read request's ``since``, for a source that reads incrementally itself."""
        if self.start is None:
            return None
        return Since(self.spec.field, self.low, self.spec.key)

    def predicate(self) -> exp.Expression | None:
        """``field >= start - overlap`` as a filter, for a source that cannot read
        incrementally (evaluated locally)."""
        if self.start is None:
            return None
        low = self.low
        if isinstance(low, dt.datetime):
            literal: exp.Expression = exp.cast(
                exp.Literal.string(low.isoformat()), exp.DataType.build("TIMESTAMPTZ")
            )
        else:
            literal = cast(exp.Expression, exp.convert(low))
        return exp.GTE(this=exp.column(self.spec.field, quoted=True), expression=literal)

    def progress(self) -> dict[str, Any]:
        """What this run has seen so far (kept per batch in the ledger, for resuming)."""
        return {
            "highest": _encode(self.highest),
            "seen": {k: _encode(v) for k, v in self.seen.items()},
        }

    def restore(self, progress: dict[str, Any] | None) -> None:
        """Continue from an interrupted run's ``progress``."""
        if not progress:
            return
        highest = _decode(progress.get("highest"))
        if highest is not None and (self.highest is None or highest > self.highest):
            self.highest = highest
        self.seen.update({k: _decode(v) for k, v in (progress.get("seen") or {}).items()})

    def drop_seen(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
        """Leave out records the previous run processed with the same cursor value."""
        if not self.seen_before or batch.num_rows == 0:
            return batch, 0
        keys = pc.cast(batch.column(self.spec.key), pa.string())
        known = list(self.seen_before)
        position = pc.index_in(keys, value_set=pa.array(known, pa.string()))
        if position.null_count == len(position):
            return batch, 0  # the usual case: nothing in the window was seen before
        column = batch.column(self.spec.field)
        seen_values = pa.array([self.seen_before[k] for k in known], column.type)
        same = pc.fill_null(pc.equal(column, seen_values.take(position)), False)
        kept = batch.filter(pc.invert(same))
        return kept, batch.num_rows - kept.num_rows

    def advance(self, batch: pa.RecordBatch) -> None:
        """Take note of the records of ``batch`` (all processed, whatever their outcome)."""
        if batch.num_rows == 0:
            return
        column = batch.column(self.spec.field)
        top = pc.max(column).as_py()
        if top is not None and (self.highest is None or top > self.highest):
            self.highest = top
        if self.highest is None:
            return
        floor = self.highest
        if isinstance(floor, dt.datetime):
            floor = floor - dt.timedelta(seconds=self.spec.overlap_seconds)
        recent = batch.filter(pc.fill_null(pc.greater_equal(column, pa.scalar(floor)), False))
        keys = pc.cast(recent.column(self.spec.key), pa.string()).to_pylist()
        self.seen.update(zip(keys, recent.column(self.spec.field).to_pylist(), strict=True))
        self.seen = {k: v for k, v in self.seen.items() if v is not None and v >= floor}

    def save(self, state: StateStore | None) -> None:
        if state is None or self.highest is None:
            return
        value = {
            "field": self.spec.field,
            "highest": _encode(self.highest),
            "seen": {k: _encode(v) for k, v in self.seen.items()},
        }
        state.set_value(self.scope, STATE_KEY, value)


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and "datetime" in value:
        return dt.datetime.fromisoformat(value["datetime"])
    if isinstance(value, dict) and "date" in value:
        return dt.date.fromisoformat(value["date"])
    return value
