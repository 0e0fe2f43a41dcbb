"""Running and previewing a profile: the library calls behind ``crmbridge run`` and ``preview``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.base import ROW_COLUMN, BadRecord
from crmbridge.core.outcomes import Outcome
from crmbridge.errors import CrmBridgeError
from crmbridge.profiles.loader import LoadedProfile
from crmbridge.runner.engine import FILTERED, Pipeline, Progress, execute
from crmbridge.runner.incremental import Cursor
from crmbridge.runner.outputs import OUTCOME, REASON, TARGET_ID, RunFiles, bad_record_reason
from crmbridge.runner.prepare import Prepared, prepare
from crmbridge.state import RunStatus, StateStore, home_dir

COUNT_NAMES = [o.value for o in Outcome] + [FILTERED]


@dataclass
class RunSummary:
    run_id: int | None
    profile: str
    status: RunStatus
    counts: dict[str, int]
    started_at: dt.datetime
    ended_at: dt.datetime
    success_file: Path | None
    error_file: Path | None
    error: str | None = None
    pushed_filter: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def records(self) -> int:
        return sum(self.counts.get(n, 0) for n in COUNT_NAMES)

    @property
    def exit_code(self) -> int:
        """0 success, 1 finished with rejected records, 3 failed (2 is for usage errors)."""
        if self.status is RunStatus.FAILED:
            return 3
        return 1 if self.counts.get(Outcome.REJECTED.value) else 0


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"


def run_profile(
    loaded: LoadedProfile,
    *,
    connections: ConnectionStore | None,
    state: StateStore | None,
    dry_run: bool | None = None,
    output_dir: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Run ``loaded`` (or dry-run it) and record the run. Profile problems raise ProfileError
    before anything is written; failures during the run are in the summary (status failed)."""
    dry = loaded.profile.dry_run if dry_run is None else dry_run
    incremental = loaded.profile.source.incremental
    cursor = Cursor.load(incremental, loaded.name, state) if incremental else None
    since = cursor.predicate() if cursor else None
    prepared = prepare(loaded, connections, create=not dry, since=since)
    started = dt.datetime.now(dt.UTC)
    target = loaded.profile.target
    run_id = None
    if state is not None:
        run_id = state.start_run(
            profile=loaded.name,
            profile_path=str(loaded.path),
            source=f"{prepared.source.name}:{loaded.profile.source.object}",
            target=f"{prepared.target.name}:{target.object}",
            mode=target.mode.value,
            dry_run=dry,
        )
    stamp = started.strftime("%Y%m%dT%H%M%S")
    folder = output_dir or home_dir() / "runs" / f"{run_id or stamp}-{_slug(loaded.name)}"
    files = RunFiles(folder, prepared.source_schema.field_names)
    error: str | None = None
    counts: dict[str, int] = {}
    try:
        totals = execute(
            prepared,
            files,
            dry_run=dry,
            on_progress=on_progress,
            state=state,
            run_id=run_id,
            cursor=cursor,
        )
        counts = dict(totals.counts)
        error = totals.stopped
    except CrmBridgeError as err:
        error = str(err.with_context(profile=loaded.name))
    finally:
        files.close()
        prepared.close()
    if error:
        status = RunStatus.FAILED
    elif dry:
        status = RunStatus.DRY_RUN
    elif counts.get(Outcome.REJECTED.value):
        status = RunStatus.FINISHED_WITH_REJECTS
    else:
        status = RunStatus.SUCCEEDED
    counts = {n: counts.get(n, 0) for n in COUNT_NAMES}
    if cursor is not None and status in (RunStatus.SUCCEEDED, RunStatus.FINISHED_WITH_REJECTS):
        cursor.save(state)  # a failed run or a dry run leaves the cursor where it was
    summary = RunSummary(
        run_id=run_id,
        profile=loaded.name,
        status=status,
        counts=counts,
        started_at=started,
        ended_at=dt.datetime.now(dt.UTC),
        success_file=files.success_path,
        error_file=files.error_path,
        error=error,
        pushed_filter=prepared.pushed,
    )
    if state is not None and run_id is not None:
        state.finish_run(
            run_id,
            status=status,
            counts=counts,
            error=error,
            success_file=str(files.success_path),
            error_file=str(files.error_path),
        )
    return summary


@dataclass
class Preview:
    """The first records after filter and mapping, and what the run would do with each."""

    records: pa.Table  # ROW_COLUMN, the target fields, then action / target id / reason
    pushed_filter: list[str]
    local_filter: str | None
    source_fields: list[str]


def preview_profile(
    loaded: LoadedProfile, *, connections: ConnectionStore | None, limit: int = 10
) -> Preview:
    """Up to ``limit`` records as the run would write them, with the planned outcome of each."""
    prepared = prepare(loaded, connections)
    try:
        return _preview(prepared, limit)
    finally:
        prepared.close()


def _preview(prepared: Prepared, limit: int) -> Preview:
    batch_size = max(limit, min(prepared.profile.batch_size, 1000))
    bad: list[BadRecord] = []
    request = replace(prepared.read, batch_size=batch_size, on_bad_record=bad.append)
    fields = prepared.written_fields
    parts: list[pa.Table] = []
    found = 0
    with Pipeline(prepared, dry_run=True) as pipeline:
        for raw in prepared.source.read(request):
            result = pipeline.step(pipeline.number(raw), stop_at_reject=False)
            table = result.outcomes
            if result.mapped is not None:
                mapped = pa.Table.from_batches([result.mapped])
                table = table.join(mapped, ROW_COLUMN, join_type="left outer")
            parts.append(table)
            found += table.num_rows
            if found + len(bad) >= limit:
                break
    columns = [ROW_COLUMN, *fields, OUTCOME, TARGET_ID, REASON]
    unreadable = pa.Table.from_pylist(
        [{OUTCOME: Outcome.REJECTED.value, REASON: bad_record_reason(b)} for b in bad],
        schema=pa.schema([pa.field(OUTCOME, pa.string()), pa.field(REASON, pa.string())]),
    )
    records = pa.concat_tables(
        [*(p.select(columns) for p in parts), unreadable], promote_options="permissive"
    )
    records = records.select(columns).sort_by(ROW_COLUMN).slice(0, limit)
    records = records.rename_columns(["record", *fields, "action", "target_id", "reason"])
    records = records.set_column(
        records.column_names.index("action"), "action", _actions(records.column("action"))
    )
    return Preview(
        records, prepared.pushed, _local_text(prepared), prepared.source_schema.field_names
    )


def _actions(outcomes: pa.ChunkedArray) -> pa.Array:
    words = {
        "created": "create",
        "updated": "update",
        "unchanged": "unchanged",
        "deleted": "delete",
        "rejected": "reject",
    }
    return pa.array([words.get(v, v) for v in outcomes.to_pylist()], pa.string())


def _local_text(prepared: Prepared) -> str | None:
    tree = prepared.local_filter
    return tree.sql(dialect="duckdb") if tree is not None else None


__all__ = ["Preview", "RunSummary", "preview_profile", "run_profile"]
