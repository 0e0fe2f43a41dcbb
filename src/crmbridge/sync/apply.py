"""Carrying out a sync plan file: the library call behind ``crmbridge apply FILE``.

See :mod:`crmbridge.sync.planfile` for what the file holds and what ``apply`` refuses. The
plan is carried out only while it is the latest word on the sync: once the sync itself has
run after the plan was made, the plan is refused whole (make it again). An apply is a run in
the history (mode ``sync-apply``) under the sync's lock; each batch goes through the ledger as
in a sync, so a killed apply is continued by the next ``apply`` of the same file (or by the
next sync, which carries its batch in flight out).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from crmbridge.connections import ConnectionStore
from crmbridge.errors import ConfigError, CrmBridgeError
from crmbridge.profiles.loader import LoadedSync, load_sync
from crmbridge.runner.apply import earlier_applies
from crmbridge.runner.ledger import RunLock
from crmbridge.runner.run import side_text
from crmbridge.state import RunStatus, StateStore, home_dir
from crmbridge.sync.cursors import save_cursors, save_retry, saved_retry
from crmbridge.sync.execute import Executor
from crmbridge.sync.planfile import SyncPlanHeader, batches, read_header, stale
from crmbridge.sync.report import RunReport
from crmbridge.sync.run import SyncSummary, sync_key
from crmbridge.sync.sides import open_sides

APPLY_MODE = "sync-apply"


def apply_sync_plan(
    path: Path,
    *,
    connections: ConnectionStore | None,
    state: StateStore,
    output_dir: Path | None = None,
    wait: bool = False,
) -> SyncSummary:
    """Carry out the sync plan file ``path`` (see the module docstring)."""
    path = path.resolve()
    header = read_header(path)
    loaded = load_sync(header.profile_path, header.params)
    key = sync_key(loaded)
    if key != header.profile_key:
        raise ConfigError(
            f"the plan {path} was made for another sync than {header.profile_path} is now "
            "(its sides or links changed): make the plan again"
        )
    lock = RunLock.take(state, key, loaded.name, wait=wait)
    try:
        _check_current(header, state, key, str(path))
        return _apply(path, header, loaded, connections, state, output_dir, lock)
    finally:
        lock.release()


def _check_current(header: SyncPlanHeader, state: StateStore, key: str, plan: str) -> None:
    if header.first and not header.accept_links:
        raise ConfigError(
            "this plan is of a first sync made without --accept-links: make it again with "
            "`crmbridge sync PROFILE --dry-run --accept-links --plan-out FILE`"
        )
    for run in state.list_runs(limit=1000):
        if run.profile_key != key or run.dry_run or run.id <= header.made_by_run:
            continue
        if run.mode == APPLY_MODE and (run.read_state or {}).get("plan") == plan:
            continue
        raise ConfigError(
            f"the sync ran since this plan was made (run {run.id}, {run.mode}): make the plan "
            "again with --dry-run --plan-out"
        )


def _apply(
    path: Path,
    header: SyncPlanHeader,
    loaded: LoadedSync,
    connections: ConnectionStore | None,
    state: StateStore,
    output_dir: Path | None,
    lock: RunLock,
) -> SyncSummary:
    key = sync_key(loaded)
    profile = loaded.profile
    done_before, in_flight = earlier_applies(
        state, key, str(path), mode=APPLY_MODE, position="batch"
    )
    started = dt.datetime.now(dt.UTC)
    run_id = state.start_run(
        profile=loaded.name,
        profile_path=str(loaded.path),
        source=side_text(profile.a.connection, profile.a.object),
        target=side_text(profile.b.connection, profile.b.object),
        mode=APPLY_MODE,
        dry_run=False,
        profile_key=key,
        read_state={"plan": str(path)},
    )
    lock.assign(run_id)
    report = RunReport()
    retry: dict[str, set[str]] = {"a": set(), "b": set()}
    counts: Counter[str] = Counter()
    error: str | None = None
    a, b = open_sides(loaded, connections)
    try:
        executor = Executor({"a": a, "b": b}, sync_key=key, state=state.sync, run_id=run_id)
        for number, batch in enumerate(batches(path), start=1):
            if number in done_before:
                continue
            again = number in in_flight
            if not again:
                counts["stale"] += stale(batch, {"a": a, "b": b}, state.sync, key)
            state.ledger.plan(
                run_id,
                number,
                first_row=0,
                last_row=0,
                rows_read=0,
                position={"batch": number},
                plan=batch.dumps(),
            )
            done = executor.run(batch, attempt=2 if again else 1)
            for name, ids in done.retry.items():
                retry[name] |= ids
            counts.update(done.counts)
            counts["pairs.unchanged"] += batch.unchanged
            counts["links.saved"] += done.links_saved
            counts["links.removed"] += done.links_removed
            counts["conflicts"] += done.conflicts
            report.add(batch, done)
            state.ledger.confirm(
                run_id,
                number,
                counts=dict(done.counts),
                run_counts=dict(counts),
                success_bytes=0,
                error_bytes=0,
            )
        save_cursors(state, key, header.cursors)
        # the records to look at again next time: those the last sync kept, and the writes
        # refused here (looking again at a record in step writes nothing)
        saved = saved_retry(state, key)
        save_retry(state, key, {n: set(saved[n]) | retry[n] for n in ("a", "b")})
    except CrmBridgeError as err:
        error = str(err.with_context(profile=loaded.name))
    finally:
        a.connector.close()
        b.connector.close()
    if error:
        status = RunStatus.FAILED
    elif any(n for k, n in counts.items() if k.endswith(".rejected")):
        status = RunStatus.FINISHED_WITH_REJECTS
    else:
        status = RunStatus.SUCCEEDED
    folder = output_dir or home_dir() / "runs" / f"{run_id}-apply"
    files = report.write(folder)
    state.finish_run(
        run_id,
        status=status,
        counts=dict(counts),
        error=error,
        success_file=str(files[0]),
        error_file=str(files[1]),
    )
    return SyncSummary(
        run_id,
        loaded.name,
        status,
        dict(counts),
        report,
        started,
        dt.datetime.now(dt.UTC),
        error,
        reads={"a": f"plan {path.name}", "b": f"plan {path.name}"},
    )


__all__ = ["APPLY_MODE", "apply_sync_plan"]
