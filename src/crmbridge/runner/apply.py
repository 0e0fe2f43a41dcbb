"""Carrying out a plan file: the library call behind ``crmbridge apply FILE``.

See :mod:`crmbridge.runner.planfile` for what the file holds and what ``apply`` refuses. An
apply is a run in the history (mode ``apply``): it holds the profile's lock, records each batch
(one row group of the file) in the ledger, and, killed, is continued by the next ``apply`` of the
same file: confirmed batches are not carried out again, the batch in flight is carried out
again and the target confirms what was already done.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from crmbridge.connections import ConnectionStore
from crmbridge.core.outcomes import Outcome
from crmbridge.core.plan import ACTION_COLUMN, WRITES, Plan
from crmbridge.core.schema import ROW_COLUMN
from crmbridge.errors import ConfigError, CrmBridgeError, ErrorContext
from crmbridge.profiles.loader import LoadedProfile, load_profile
from crmbridge.runner.ledger import RunLock
from crmbridge.runner.outputs import OUTCOME, RunFiles
from crmbridge.runner.planfile import PlanHeader, read_header, refuse, row_groups, split, stale
from crmbridge.runner.prepare import resolve
from crmbridge.runner.run import COUNT_NAMES, RunSummary
from crmbridge.runner.writing import TargetWriter
from crmbridge.state import BatchStatus, RunStatus, StateStore, home_dir

APPLY_MODE = "apply"


def apply_plan(
    path: Path,
    *,
    connections: ConnectionStore | None,
    state: StateStore,
    output_dir: Path | None = None,
    wait: bool = False,
) -> RunSummary:
    """Carry out the operations of the plan file ``path`` (see the module docstring)."""
    path = path.resolve()
    header = read_header(path)
    loaded = load_profile(header.profile_path, header.params)
    if loaded.key != header.profile_key:
        raise ConfigError(
            f"the plan {path} was made for another profile than {header.profile_path} is now "
            "(its source or target changed): make the plan again"
        )
    lock = RunLock.take(state, loaded.key, loaded.name, wait=wait)
    try:
        return _apply(path, header, loaded, connections, state, output_dir, lock)
    finally:
        lock.release()


def _apply(
    path: Path,
    header: PlanHeader,
    loaded: LoadedProfile,
    connections: ConnectionStore | None,
    state: StateStore,
    output_dir: Path | None,
    lock: RunLock,
) -> RunSummary:
    done, in_flight = earlier_applies(state, loaded.key, str(path))
    started = dt.datetime.now(dt.UTC)
    run_id = state.start_run(
        profile=loaded.name,
        profile_path=str(loaded.path),
        source=f"plan:{path.name}",
        target=header.target,
        mode=APPLY_MODE,
        dry_run=False,
        profile_key=loaded.key,
        read_state={"plan": str(path)},
    )
    lock.assign(run_id)
    folder = output_dir or home_dir() / "runs" / f"{run_id}-apply-{loaded.name}"
    counts: Counter[str] = Counter()
    error: str | None = None
    files: RunFiles | None = None
    target = None
    try:
        connection = resolve(loaded, "target", connections)
        target = connection.connector(base_dir=loaded.base_dir)
        target.open()
        writer = TargetWriter(
            target,
            header.spec(),
            ErrorContext(profile=loaded.name, object=header.object),
            max_batch_size=target.capabilities().max_batch_size,
        )
        groups, handle = row_groups(path)
        first = handle.read_row_group(0) if groups else None
        fields = (
            [n[len("source.") :] for n in first.column_names if n.startswith("source.")]
            if first is not None
            else []
        )
        files = RunFiles(folder, fields)
        state.set_files(
            run_id, success_file=str(files.success_path), error_file=str(files.error_path)
        )
        for seq, group in enumerate(range(groups), start=1):
            if group in done:
                continue
            plan, sources = split(handle.read_row_group(group), header)
            again = group in in_flight
            if not again:
                plan = refuse(plan, stale(plan, _current(writer, plan), header))
            rows = plan.ops.column(ROW_COLUMN)
            state.ledger.plan(
                run_id,
                seq,
                first_row=int(pc.min(rows).as_py() or 0),
                last_row=int(pc.max(rows).as_py() or 0),
                rows_read=int(pc.max(rows).as_py() or 0),
                position={"row_group": group},
                plan=None,
            )
            outcomes = writer.apply(plan, attempt=2 if again else 1)
            state.ledger.applied(run_id, seq)
            files.add(sources.to_batches()[0] if sources.num_rows else _empty(sources), outcomes)
            batch_counts = Counter(outcomes.column(OUTCOME).to_pylist())
            counts.update(batch_counts)
            success, errors = files.sizes
            state.ledger.confirm(
                run_id,
                seq,
                counts=dict(batch_counts),
                run_counts=dict(counts),
                success_bytes=success,
                error_bytes=errors,
            )
    except CrmBridgeError as err:
        error = str(err.with_context(profile=loaded.name))
    finally:
        if files is not None:
            files.close()
        if target is not None:
            target.close()
    if error:
        status = RunStatus.FAILED
    elif counts.get(Outcome.REJECTED.value):
        status = RunStatus.FINISHED_WITH_REJECTS
    else:
        status = RunStatus.SUCCEEDED
    totals = {n: int(counts.get(n, 0)) for n in COUNT_NAMES}
    state.finish_run(
        run_id,
        status=status,
        counts=totals,
        error=error,
        success_file=str(files.success_path) if files else None,
        error_file=str(files.error_path) if files else None,
    )
    return RunSummary(
        run_id=run_id,
        profile=loaded.name,
        status=status,
        counts=totals,
        started_at=started,
        ended_at=dt.datetime.now(dt.UTC),
        success_file=files.success_path if files else None,
        error_file=files.error_path if files else None,
        error=error,
    )


def _current(writer: TargetWriter, plan: Plan) -> pa.RecordBatch | None:
    """The target's records for the plan's keys now (None: nothing to check)."""
    spec = writer.spec
    ops = plan.ops
    writes = pc.is_in(ops.column(ACTION_COLUMN), pa.array([a.value for a in WRITES]))
    if not spec.keys or not pc.any(writes).as_py():
        return None
    fields = list(spec.fields)
    proposed = ops.select(fields).to_batches()
    if not proposed:
        return None
    shown = writer.target.stored_form(spec.object, proposed[0])
    return writer.match_candidates(shown)


def earlier_applies(
    state: StateStore, key: str, plan: str, *, mode: str = APPLY_MODE, position: str = "row_group"
) -> tuple[set[int], set[int]]:
    """The parts (``position`` in the ledger's batch position) that earlier applies (runs of
    ``mode``) of the plan file ``plan`` confirmed, and those they left in flight; their
    unfinished runs are marked interrupted."""
    done: set[int] = set()
    pending: set[int] = set()
    for run in reversed(state.list_runs(limit=1000)):
        if run.mode != mode or run.profile_key != key:
            continue
        if (run.read_state or {}).get("plan") != plan:
            continue
        for batch in state.ledger.batches(run.id):
            part = int((batch.position or {}).get(position, -1))
            if batch.status is BatchStatus.CONFIRMED:
                done.add(part)
                pending.discard(part)
            elif part not in done:
                pending.add(part)
        if run.status is RunStatus.RUNNING:
            state.mark_interrupted(run.id, counts=run.counts, error="interrupted; applied again")
    return done, pending


def _empty(table: pa.Table) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array([], f.type) for f in table.schema], schema=table.schema
    )


__all__ = ["APPLY_MODE", "apply_plan", "earlier_applies"]
