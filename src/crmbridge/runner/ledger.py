"""A real run's use of the run ledger: one run per profile, every batch recorded, resumable.

* **Exclusive**: a run holds its profile's lock (``state/locks.py``) from before it reads
  anything until it ends, and keeps it fresh with a heartbeat thread. A second run waits or
  stops with "profile X is already running (run 41, ...)".
* **Recorded**: per batch the intent (its plan) is stored before the target is written, and
  the confirmation (counts, files' sizes, keys sent) after the files have the batch
  (``state/ledger.py`` says why in that order).
* **Resumable**: a run that finds an earlier run of its profile still marked ``running`` (its
  process is gone: it holds no lock) marks it ``interrupted`` with the counts it confirmed,
  cuts its files back to its last confirmed batch, and continues where it stood: after the
  last confirmed record, and with the in-flight batch's recorded operations carried out again
  (the target confirms what was already applied). ``--restart`` starts from the beginning.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.core.plan import ACTION_COLUMN, SOURCE_KEY_COLUMN, Plan
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError
from crmbridge.runner.outputs import CHILDREN_PREFIX, RunFiles, truncate
from crmbridge.state import (
    Acquired,
    BatchRecord,
    BatchStatus,
    Holder,
    RunRecord,
    RunStatus,
    StateStore,
    lock_name,
)

if TYPE_CHECKING:
    from crmbridge.runner.engine import Mapped, Pipeline, StepResult, Totals
    from crmbridge.runner.prepare import Prepared

#: in a batch's recorded position: the children files' sizes when it was planned
CHILDREN_BYTES = "children_bytes"
#: seconds between two heartbeats of a running run's lock
HEARTBEAT_SECONDS = 10.0
#: seconds between two tries of a run that waits for the lock (``--wait``)
WAIT_SECONDS = 1.0


class AlreadyRunningError(ConfigError):
    """Another run of the profile holds its lock (exit code 2)."""


@dataclass(frozen=True)
class Recovery:
    """Where an interrupted run stood, for the run that continues it."""

    run_id: int
    #: source records the interrupted run consumed up to its last confirmed batch
    rows_read: int
    #: the read order's values of the last record consumed (None: resume by counting)
    after: tuple[Any, ...] | None
    #: the incremental cursor's progress at that point
    cursor: dict[str, Any] | None
    #: the operations of the batch in flight when it ended, if any
    in_flight: pa.Table | None


class RunLock:
    """The lock of one profile, held by this process while its run lasts."""

    def __init__(self, state: StateStore, lock: Acquired) -> None:
        self.state = state
        self.lock = lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="crmbridge-heartbeat", daemon=True)
        self._thread.start()

    @classmethod
    def take(cls, state: StateStore, prepared_key: str, name: str, *, wait: bool) -> RunLock:
        """The profile's lock; waits for it (``wait``) or raises AlreadyRunningError."""
        while True:
            found = state.locks.acquire(lock_name(prepared_key))
            if isinstance(found, Acquired):
                return cls(state, found)
            if not wait:
                raise AlreadyRunningError(_busy(name, found))
            threading.Event().wait(WAIT_SECONDS)

    def assign(self, run_id: int) -> None:
        self.state.locks.assign(self.lock, run_id)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.state.locks.heartbeat(self.lock)
            except Exception:
                continue

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        self.state.locks.release(self.lock)


def _busy(name: str, holder: Holder) -> str:
    run = f"run {holder.run_id}, " if holder.run_id is not None else ""
    started = holder.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"profile {name!r} is already running ({run}started {started}, pid {holder.pid} on "
        f"{holder.host}); wait for it with --wait"
    )


def recover(
    state: StateStore, prepared: Prepared, *, restart: bool, new_run: int
) -> Recovery | None:
    """Mark the profile's unfinished runs ``interrupted`` (the caller holds the lock, so their
    processes are gone) and say where the run to continue stood (None: start over).

    The run continued is the profile's last real run when it did not finish: interrupted
    (marked here or earlier, by ``history``), or failed with a batch in flight. The new run is
    linked to it (``resumed_from``) in the transaction that marks it."""
    previous = _to_continue(state, prepared.profile_key, new_run)
    resume = previous is not None and not restart
    if prepared.target_caps.atomic:  # the target was written anew: nothing to continue
        resume = False
    for run in state.unfinished_runs(prepared.profile_key):
        if run.id == new_run or run.mode == "apply":  # an apply continues itself
            continue
        counts, last = _confirmed(state, run)
        _cut_files(run, last.success_bytes if last else None, last.error_bytes if last else None)
        _cut_children(state, run)
        at = f"after record {last.rows_read}" if last else "before its first batch"
        linked = resume and previous is not None and run.id == previous.id
        state.mark_interrupted(
            run.id,
            counts=counts,
            error=f"interrupted {at}; " + (f"resumed by run {new_run}" if linked else "closed"),
            resumed_by=new_run if linked else None,
        )
    if not resume or previous is None:
        return None
    if previous.status is not RunStatus.RUNNING:  # closed before: link it now
        state.set_resumed_from(new_run, previous.id)
    return _stood(state, previous, prepared, previous.id)


def _to_continue(state: StateStore, profile_key: str, new_run: int) -> RunRecord | None:
    """The run whose work the new run continues, if any: the last run that wrote a batch,
    when it was interrupted (or is still marked running), or failed with a batch in flight.
    Runs after it that wrote nothing (failed to connect, killed at once) are looked past."""
    for run in state.runs_before(profile_key, new_run):
        batches = state.ledger.batches(run.id)
        if not batches:
            if run.status in (RunStatus.SUCCEEDED, RunStatus.FINISHED_WITH_REJECTS):
                return None  # finished (with nothing to do)
            if run.resumed_from is not None:  # it stood where the run it continued stood
                return run
            continue  # did nothing: look further back
        if run.status in (RunStatus.RUNNING, RunStatus.INTERRUPTED):
            return run
        if run.status is RunStatus.FAILED and any(
            b.status is not BatchStatus.CONFIRMED for b in batches
        ):
            return run  # a batch may be half done: carry it out again
        return None
    return None


def _confirmed(state: StateStore, run: RunRecord) -> tuple[dict[str, int], BatchRecord | None]:
    batches = state.ledger.batches(run.id)
    confirmed = [b for b in batches if b.status is BatchStatus.CONFIRMED]
    counts: dict[str, int] = {}
    for b in confirmed:
        for name, n in b.counts.items():
            counts[name] = counts.get(name, 0) + n
    return counts, confirmed[-1] if confirmed else None


def _stood(state: StateStore, run: RunRecord, prepared: Prepared, as_run: int) -> Recovery:
    """Where ``run`` stood: after its last confirmed batch, with its batch in flight. A run
    that wrote no batch at all stood where the run it continued stood."""
    batches = state.ledger.batches(run.id)
    if not batches and run.resumed_from is not None:
        return _stood(state, state.get_run(run.resumed_from), prepared, as_run)
    confirmed = [b for b in batches if b.status is BatchStatus.CONFIRMED]
    last = confirmed[-1] if confirmed else None
    flying = [_ops(b.plan) for b in batches if b.status is not BatchStatus.CONFIRMED and b.plan]
    ops = pa.concat_tables(flying, promote_options="permissive") if flying else None
    order = prepared.read_order
    if order is None:  # no stable order: read everything again (writes repeat safely)
        return Recovery(as_run, 0, None, None, ops)
    position = last.position if last and last.position else {}
    after = position.get("after")
    return Recovery(
        as_run,
        last.rows_read if last else 0,
        tuple(decode(v) for v in after) if after is not None and order else None,
        position.get("cursor"),
        ops,
    )


def close_dead_runs(state: StateStore) -> list[int]:
    """Mark ``interrupted`` every run still marked running whose process is gone (it holds
    no lock; its heartbeat stopped), with the counts it confirmed; their ids. Called by
    ``crmbridge history`` and ``show``, so a killed run does not look as if it still ran."""
    closed = []
    for run in state.list_runs(limit=1000):
        if run.status is not RunStatus.RUNNING or run.dry_run or run.profile_key is None:
            continue
        if state.lock_holder_alive(run):
            continue
        batches = state.ledger.batches(run.id)
        confirmed = [b for b in batches if b.status is BatchStatus.CONFIRMED]
        counts: dict[str, int] = {}
        for b in confirmed:
            for name, n in b.counts.items():
                counts[name] = counts.get(name, 0) + n
        last = confirmed[-1] if confirmed else None
        _cut_files(run, last.success_bytes if last else None, last.error_bytes if last else None)
        _cut_children(state, run)
        at = f"after record {last.rows_read}" if last else "before its first batch"
        state.mark_interrupted(
            run.id,
            counts=counts,
            error=f"interrupted {at}: the process ended; run the profile again to continue it",
        )
        closed.append(run.id)
    return closed


def _cut_children(state: StateStore, run: RunRecord) -> None:
    """Cut the children files (runner/children.py) back to their sizes when the first batch
    not confirmed was planned: the sizes after the last confirmed one, since a batch's files
    are written between its intent and its confirmation."""
    if not run.success_file:
        return
    open_batches = [
        b for b in state.ledger.batches(run.id) if b.status is not BatchStatus.CONFIRMED
    ]
    if not open_batches or not open_batches[0].position:
        return
    sizes = open_batches[0].position.get(CHILDREN_BYTES) or {}
    for path in Path(run.success_file).parent.glob(f"{CHILDREN_PREFIX}*.csv"):
        if path.exists():
            os.truncate(path, min(int(sizes.get(path.name, 0)), path.stat().st_size))


def _cut_files(run: RunRecord, success: int | None, error: int | None) -> None:
    if run.success_file:
        truncate(Path(run.success_file), success)
    if run.error_file:
        truncate(Path(run.error_file), error)


@dataclass
class Pending:
    """A batch whose intent is recorded and whose writes are under way."""

    mapped: Mapped
    plan: Plan
    outcomes: Future[pa.Table]
    seq: int  #: its number in the ledger


@dataclass
class RunLedger:
    """Records a real run's batches; carries an interrupted run's in-flight batch out."""

    state: StateStore
    run_id: int
    prepared: Prepared
    recovery: Recovery | None = None
    _seq: int = 0
    #: the last source row of the batches so far
    _last: int = 0

    def __post_init__(self) -> None:
        if self.recovery is not None:
            self._last = self.recovery.rows_read

    # -- one batch ------------------------------------------------------------------------
    def step(
        self, pipeline: Pipeline, mapped: Mapped, children: Mapping[str, int] | None = None
    ) -> StepResult:
        """Plan, record the intent, apply, and finish one batch (links, keys to remember).

        ``children``: the sizes of the children files now (cut back to after a crash)."""
        return self.end(pipeline, self.begin(pipeline, mapped, children))

    def plan_ahead(self, pipeline: Pipeline, mapped: Mapped) -> Plan | None:
        """The plan of ``mapped``, made while the batch before is still being written; None
        while operations of the interrupted run are still to be found (planned in order)."""
        if self.recovery is not None and self.recovery.in_flight is not None:
            return None
        return pipeline.plan(mapped)

    def begin(
        self,
        pipeline: Pipeline,
        mapped: Mapped,
        children: Mapping[str, int] | None = None,
        *,
        plan: Plan | None = None,
        writer: Executor | None = None,
    ) -> Pending:
        """Record the batch's intent and start applying it (on ``writer``'s thread, if
        given). ``plan``: made by :meth:`plan_ahead`, still true."""
        recorded, todo = self._recorded_for(mapped)
        if plan is None or recorded is not None:
            plan = pipeline.plan(todo)
        self._seq += 1
        rows = mapped.source.column(ROW_COLUMN)
        first = rows[0].as_py() if len(rows) else self._last
        last = rows[-1].as_py() if len(rows) else self._last
        self._last = last
        raw = mapped.raw if mapped.raw is not None else mapped.source
        position: dict[str, Any] = {"after": self._after(raw), "cursor": mapped.cursor}
        if children:
            position[CHILDREN_BYTES] = dict(children)
        ops = plan.ops if recorded is None else pa.concat_tables([recorded, plan.ops])
        self.state.ledger.plan(
            self.run_id,
            self._seq,
            first_row=first,
            last_row=last,
            rows_read=last,
            position=position,
            plan=_ipc(ops) if _writes(ops) else None,
        )
        planned = plan

        def write() -> pa.Table:
            outcomes = pipeline.apply(planned)
            if recorded is not None:
                again = pipeline.apply(Plan(recorded, planned.before.slice(0, 0)), attempt=2)
                outcomes = pa.concat_tables([again, outcomes])
            return outcomes

        outcomes: Future[pa.Table]
        if writer is not None:
            outcomes = writer.submit(write)
        else:
            outcomes = Future()
            try:
                outcomes.set_result(write())
            except BaseException as err:  # raised by end(), as from the writer's thread
                outcomes.set_exception(err)
        return Pending(mapped, plan, outcomes, self._seq)

    def end(self, pipeline: Pipeline, pending: Pending) -> StepResult:
        """Wait for the batch's writes, record them applied, and finish the batch."""
        outcomes = pending.outcomes.result()
        self.state.ledger.applied(self.run_id, pending.seq)
        return pipeline.finish(pending.mapped, pending.plan, outcomes)

    def confirm(
        self, result: StepResult, totals: Totals, files: RunFiles, *, seq: int | None = None
    ) -> None:
        """Record batch ``seq`` (default: the last begun) confirmed: it is in the files."""
        success, error = files.sizes
        counts = result.counts()
        self.state.ledger.confirm(
            self.run_id,
            self._seq if seq is None else seq,
            counts=counts,
            run_counts=dict(totals.counts),
            success_bytes=success,
            error_bytes=error,
            sent=result.sent,
        )

    def leftovers(self, pipeline: Pipeline) -> pa.Table | None:
        """The in-flight operations whose records were not read again (the source changed
        or ended): carried out anyway, their outcomes without the source record."""
        recovery = self.recovery
        if recovery is None or recovery.in_flight is None or recovery.in_flight.num_rows == 0:
            return None
        ops = recovery.in_flight
        self.recovery = Recovery(
            recovery.run_id, recovery.rows_read, recovery.after, recovery.cursor, None
        )
        self._seq += 1
        self.state.ledger.plan(
            self.run_id,
            self._seq,
            first_row=0,
            last_row=0,
            rows_read=self._last,
            position=None,
            plan=_ipc(ops),
        )
        plan = Plan(ops, pa.table({}))
        outcomes = pipeline.apply(plan, attempt=2)
        self.state.ledger.applied(self.run_id, self._seq)
        return outcomes

    def _recorded_for(self, mapped: Mapped) -> tuple[pa.Table | None, Mapped]:
        """The in-flight operations of this batch's records (same row and source key), and
        the batch without those records (they are not planned again)."""
        recovery = self.recovery
        if recovery is None or recovery.in_flight is None or mapped.source.num_rows == 0:
            return None, mapped
        ops = recovery.in_flight
        last = mapped.source.column(ROW_COLUMN)[-1].as_py()
        proposed = mapped.proposed
        mine = pc.less_equal(ops.column(ROW_COLUMN), last)
        here = ops.filter(mine)
        rest = ops.filter(pc.invert(mine))
        self.recovery = Recovery(
            recovery.run_id,
            recovery.rows_read,
            recovery.after,
            recovery.cursor,
            rest if rest.num_rows else None,
        )
        if here.num_rows == 0:
            return None, mapped
        same = _same_records(here, proposed)
        known = here.filter(same)
        stray = here.filter(pc.invert(same))
        if stray.num_rows:  # records that changed since: carried out, reported alone
            extra = self.recovery.in_flight
            self.recovery = Recovery(
                recovery.run_id,
                recovery.rows_read,
                recovery.after,
                recovery.cursor,
                stray if extra is None else pa.concat_tables([stray, extra]),
            )
        if known.num_rows == 0:
            return None, mapped
        taken = pc.is_in(proposed.column(ROW_COLUMN), value_set=known.column(ROW_COLUMN))
        keep = pc.invert(taken)
        skip = mapped.skip.filter(keep) if mapped.skip is not None else None
        return known, replace(mapped, proposed=proposed.filter(keep), skip=skip)

    def _after(self, raw: pa.RecordBatch) -> list[Any] | None:
        order = self.prepared.read_order
        if not order or raw.num_rows == 0:
            return None
        return [encode(raw.column(name)[-1].as_py()) for name in order]


def _same_records(ops: pa.Table, proposed: pa.RecordBatch) -> pa.Array:
    """Per operation: is its record (row and source key) among ``proposed``?"""
    ours = pc.binary_join_element_wise(
        pc.cast(proposed.column(ROW_COLUMN), pa.string()),
        proposed.column(SOURCE_KEY_COLUMN),
        "\x1f",
    )
    theirs = pc.binary_join_element_wise(
        pc.cast(ops.column(ROW_COLUMN), pa.string()), ops.column(SOURCE_KEY_COLUMN), "\x1f"
    )
    return pc.fill_null(pc.is_in(theirs, value_set=ours), False)


def _writes(ops: pa.Table) -> bool:
    if ops.num_rows == 0:
        return False
    actions = pa.array(["create", "update", "delete"])
    return bool(pc.any(pc.is_in(ops.column(ACTION_COLUMN), value_set=actions)).as_py())


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _ops(data: bytes) -> pa.Table:
    with pa.ipc.open_stream(pa.py_buffer(data)) as reader:
        return reader.read_all()


# -- values in the ledger's JSON ----------------------------------------------------------
def encode(value: Any) -> Any:
    """A read-order or cursor value as JSON (datetimes, dates and decimals tagged)."""
    if isinstance(value, dt.datetime):
        return {"datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"date": value.isoformat()}
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "datetime" in value:
            return dt.datetime.fromisoformat(value["datetime"])
        if "date" in value:
            return dt.date.fromisoformat(value["date"])
        if "decimal" in value:
            return Decimal(value["decimal"])
    return value


__all__ = [
    "AlreadyRunningError",
    "Recovery",
    "RunLedger",
    "RunLock",
    "decode",
    "encode",
    "recover",
]
