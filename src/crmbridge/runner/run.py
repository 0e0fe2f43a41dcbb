"""Running and previewing a profile: the library calls behind ``crmbridge run`` and ``preview``.

A real run holds its profile's lock for as long as it lasts (a second run waits or stops),
records every batch in the run ledger, and continues where an interrupted run of the profile
stood (``runner/ledger.py``). Every run that got as far as reading its profile is in the
history, also one that could not reach its systems, and ends ``succeeded``, ``finished with
rejections``, ``failed`` or ``interrupted``, with counts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from crmbridge.connections import ConnectionStore
from crmbridge.connectors.base import ROW_COLUMN, BadRecord
from crmbridge.core.outcomes import Outcome, WriteMode
from crmbridge.errors import ConfigError, CrmBridgeError, ProfileError
from crmbridge.profiles.loader import LoadedProfile
from crmbridge.runner.engine import FILTERED, Pipeline, Progress, Totals, execute
from crmbridge.runner.incremental import Cursor
from crmbridge.runner.ledger import Recovery, RunLedger, RunLock, recover
from crmbridge.runner.outputs import (
    CODE,
    OUTCOME,
    REASON,
    TARGET_ID,
    RunFiles,
    bad_record_reason,
)
from crmbridge.runner.planfile import PlanHeader, PlanWriter, now_text
from crmbridge.runner.prepare import Prepared, prepare
from crmbridge.runner.unchanged import SOURCE_VERSION, source_version, unchanged_since
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
    #: the interrupted run this one continued
    resumed_from: int | None = None
    #: what the skipped records were skipped for ("inserted by run 12": 3000)
    skipped: dict[str, int] = field(default_factory=dict)
    #: why the run read nothing, when it did not need to (an unchanged source file)
    note: str | None = None

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    @property
    def records(self) -> int:
        return sum(self.counts.get(n, 0) for n in COUNT_NAMES)

    @property
    def exit_code(self) -> int:
        """0 success, 1 finished with rejected records, 3 failed or interrupted (2 is for
        usage errors)."""
        if self.status in (RunStatus.FAILED, RunStatus.INTERRUPTED):
            return 3
        return 1 if rejected(self.counts) else 0


def rejected(counts: Mapping[str, int]) -> bool:
    """Were records rejected, parents or children (``lines.rejected``)?"""
    return any(n for name, n in counts.items() if name.split(".")[-1] == Outcome.REJECTED.value)


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
    wait: bool = False,
    restart: bool = False,
    again: bool = False,
    plan_out: Path | None = None,
) -> RunSummary:
    """Run ``loaded`` (or dry-run it) and record the run.

    ``wait``: wait for another run of the profile to end instead of stopping with
    AlreadyRunningError. ``restart``: do not continue an interrupted run; start over.
    ``again``: insert records an earlier run inserted once more. ``plan_out``: a dry run
    writes its plan to this file (``crmbridge apply`` carries it out). Profile problems raise
    ProfileError; failures during the run are in the summary (status failed)."""
    dry = loaded.profile.dry_run if dry_run is None else dry_run
    if plan_out is not None and not dry:
        raise ConfigError("--plan-out writes the plan of a dry run: add --dry-run")
    if plan_out is not None and loaded.profile.children:
        raise ConfigError(
            "--plan-out cannot keep the child records of `children:` in a plan file; "
            "use --dry-run without it"
        )
    lock = RunLock.take(state, loaded.key, loaded.name, wait=wait) if state and not dry else None
    try:
        return _run(
            loaded,
            connections,
            state,
            dry,
            output_dir,
            on_progress,
            restart,
            again,
            plan_out,
            lock,
        )
    finally:
        if lock is not None:
            lock.release()


def _run(
    loaded: LoadedProfile,
    connections: ConnectionStore | None,
    state: StateStore | None,
    dry: bool,
    output_dir: Path | None,
    on_progress: Callable[[Progress], None] | None,
    restart: bool,
    again: bool,
    plan_out: Path | None,
    lock: RunLock | None,
) -> RunSummary:
    profile = loaded.profile
    if state is not None:
        _adopt_legacy_state(state, loaded)
    incremental = profile.source.incremental
    cursor = (
        Cursor.load(incremental, loaded.key, state, legacy=loaded.name) if incremental else None
    )
    started = dt.datetime.now(dt.UTC)
    run_id = None
    if state is not None:
        run_id = state.start_run(
            profile=loaded.name,
            profile_path=str(loaded.path),
            source=side_text(profile.source.connection, profile.source.object),
            target=side_text(profile.target.connection, profile.target.object),
            mode=profile.target.mode.value,
            dry_run=dry,
            profile_key=loaded.key,
            read_state={"since": str(cursor.low)} if cursor and cursor.start is not None else None,
        )
        if lock is not None:
            lock.assign(run_id)
    summary = _Summary(loaded, run_id, started, state)
    # an upsert or update of an unchanged file would find every record as it left it
    # (child records are counted per child: such runs always read)
    repeatable = (
        profile.target.mode in (WriteMode.UPSERT, WriteMode.UPDATE) and not profile.children
    )
    skip_check = state is not None and repeatable and not (restart or again or plan_out)
    source, version = None, None
    if state is not None and run_id is not None and skip_check:
        source, version, previous = unchanged_since(loaded, connections, state, run_id)
        if previous is not None:
            return _unchanged_source(summary, state, previous, dry=dry, pushed=None)
    try:
        prepared = prepare(loaded, connections, create=not dry, cursor=cursor, source=source)
    except ProfileError:  # the profile is wrong: nothing ran, the history keeps no run
        if state is not None and run_id is not None:
            state.discard_run(run_id)
        raise
    except ConfigError as err:
        summary.finish(RunStatus.FAILED, {}, str(err.with_context(profile=loaded.name)), None)
        raise
    except CrmBridgeError as err:
        return summary.finish(
            RunStatus.FAILED, {}, str(err.with_context(profile=loaded.name)), None
        )
    recovery: Recovery | None = None
    try:
        if state is not None and repeatable and version is None:
            version = source_version(loaded, connections, prepared.source)
        if state is not None and run_id is not None and not dry:
            recovery = recover(state, prepared, restart=restart, new_run=run_id)
        if recovery is not None and cursor is not None:
            cursor.restore(recovery.cursor)
        stamp = started.strftime("%Y%m%dT%H%M%S")
        folder = output_dir or home_dir() / "runs" / f"{run_id or stamp}-{_slug(loaded.name)}"
        files = RunFiles(folder, prepared.source_schema.field_names)
        summary.files = files
        if state is not None and run_id is not None:
            state.set_files(
                run_id, success_file=str(files.success_path), error_file=str(files.error_path)
            )
    except BaseException:
        prepared.close()
        raise
    ledger = None
    if state is not None and run_id is not None and not dry:
        ledger = RunLedger(state, run_id, prepared, recovery)
    plans = PlanWriter(plan_out, plan_header(prepared)) if plan_out is not None else None
    counts: dict[str, int] = {}
    error: str | None = None
    status: RunStatus | None = None
    totals = Totals()
    try:
        totals = execute(
            prepared,
            files,
            dry_run=dry,
            on_progress=on_progress,
            state=state,
            run_id=run_id,
            cursor=cursor,
            ledger=ledger,
            recovery=recovery,
            again=again,
            plans=plans.add if plans is not None else None,
        )
        if plans is not None and not totals.stopped:
            plans.close()
        counts = dict(totals.counts)
        error = totals.stopped
    except CrmBridgeError as err:
        error = str(err.with_context(profile=loaded.name))
        counts = summary.confirmed_counts()
    except Exception as err:  # a bug: the run still ends with its counts and a message
        crash = folder / "traceback.txt"
        crash.write_text(traceback.format_exc(), encoding="utf-8")
        error = (
            f"internal error {type(err).__name__}: {err} (a bug in crmbridge; the traceback "
            f"is in {crash})"
        )
        counts = summary.confirmed_counts()
    except BaseException:  # Ctrl-C, SystemExit: the run did not finish
        files.close()
        prepared.close()
        summary.finish(RunStatus.INTERRUPTED, summary.confirmed_counts(), "interrupted", None)
        raise
    finally:
        pushed = prepared.pushed
    files.close()
    prepared.close()
    if error:
        status = RunStatus.FAILED
    elif dry:
        status = RunStatus.DRY_RUN
    elif rejected(counts):
        status = RunStatus.FINISHED_WITH_REJECTS
    else:
        status = RunStatus.SUCCEEDED
    if cursor is not None and status in (RunStatus.SUCCEEDED, RunStatus.FINISHED_WITH_REJECTS):
        cursor.save(state)  # a failed run or a dry run leaves the cursor where it was
    if state is not None and not dry:  # only a complete success lets the next run skip
        done = {"version": version, "run": run_id} if status is RunStatus.SUCCEEDED else None
        state.set_value(loaded.key, SOURCE_VERSION, done if version is not None else None)
    result = summary.finish(status, counts, error, pushed)
    result.resumed_from = recovery.run_id if recovery is not None else None
    result.skipped = dict(totals.skip_reasons)
    return result


@dataclass
class _Summary:
    """Ends a run's record in the history and builds its summary."""

    loaded: LoadedProfile
    run_id: int | None
    started: dt.datetime
    state: StateStore | None
    files: RunFiles | None = None

    def confirmed_counts(self) -> dict[str, int]:
        if self.state is None or self.run_id is None:
            return {}
        return dict(self.state.get_run(self.run_id).counts)

    def finish(
        self, status: RunStatus, counts: dict[str, int], error: str | None, pushed: list[str] | None
    ) -> RunSummary:
        children = {n: int(c) for n, c in sorted(counts.items()) if "." in n}  # lines.created
        counts = {n: int(counts.get(n, 0)) for n in COUNT_NAMES} | children
        files = self.files
        if self.state is not None and self.run_id is not None:
            self.state.finish_run(
                self.run_id,
                status=status,
                counts=counts,
                error=error,
                success_file=str(files.success_path) if files else None,
                error_file=str(files.error_path) if files else None,
            )
        return RunSummary(
            run_id=self.run_id,
            profile=self.loaded.name,
            status=status,
            counts=counts,
            started_at=self.started,
            ended_at=dt.datetime.now(dt.UTC),
            success_file=files.success_path if files else None,
            error_file=files.error_path if files else None,
            error=error,
            pushed_filter=pushed or [],
        )


def _unchanged_source(
    summary: _Summary,
    state: StateStore,
    previous: dict[str, Any],
    *,
    dry: bool,
    pushed: list[str] | None,
) -> RunSummary:
    """The run of a source that did not change since the last run, which succeeded: nothing
    is read; that run's records are all ``unchanged`` (its filtered and skipped ones stay so)."""
    before: dict[str, int] = {}
    with contextlib.suppress(ConfigError, KeyError, TypeError):
        before = state.get_run(int(previous["run"])).counts
    written = (Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.DELETED)
    counts = {
        Outcome.UNCHANGED.value: sum(int(before.get(o.value, 0)) for o in written),
        Outcome.SKIPPED.value: int(before.get(Outcome.SKIPPED.value, 0)),
        FILTERED: int(before.get(FILTERED, 0)),
    }
    status = RunStatus.DRY_RUN if dry else RunStatus.SUCCEEDED
    result = summary.finish(status, counts, None, pushed)
    result.note = (
        f"the source is unchanged since run {previous.get('run')}, which succeeded: nothing "
        "was read, every record is as that run left it (--restart reads it again)"
    )
    return result


def plan_header(prepared: Prepared) -> PlanHeader:
    """What a plan file of this run says about itself."""
    loaded, spec = prepared.loaded, prepared.plan_spec
    target = prepared.profile.target
    return PlanHeader(
        profile_path=str(loaded.path.resolve()),
        profile_key=loaded.key,
        profile_name=loaded.name,
        params=dict(loaded.params),
        target=side_text(target.connection, target.object),
        object=target.object,
        mode=spec.mode,
        keys=spec.keys,
        rules=dict(spec.rules),
        fields=spec.fields,
        update_fields=spec.update_fields,
        client_ids=spec.client_ids,
        namespace=spec.namespace,
        created_at=now_text(),
    )


def side_text(connection: object, object_name: str) -> str:
    name = connection if isinstance(connection, str) else getattr(connection, "type", "inline")
    return f"{name}:{object_name}"


def _adopt_legacy_state(state: StateStore, loaded: LoadedProfile) -> None:
    """State that older versions kept under the profile's name moves to its identity."""
    state.adopt_scope(f"profile:{loaded.name}", f"dedupe:{loaded.key}")


@dataclass
class Preview:
    """The first records after filter and mapping, and what the run would do with each."""

    records: pa.Table  # ROW_COLUMN, the target fields, then action / target id / reason
    pushed_filter: list[str]
    local_filter: str | None
    source_fields: list[str]
    #: source records read (0: the source, or its pushed-down filter, gave none)
    read: int = 0


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
    columns = [ROW_COLUMN, *fields, OUTCOME, TARGET_ID, REASON]
    typed = {f.name: f.arrow_type for f in prepared.target_schema.fields if f.name in fields}
    empty = pa.schema(
        [
            pa.field(ROW_COLUMN, pa.int64()),
            *(pa.field(f, typed.get(f, pa.string())) for f in fields),
            pa.field(OUTCOME, pa.string()),
            pa.field(TARGET_ID, pa.string()),
            pa.field(REASON, pa.string()),
        ]
    ).empty_table()
    parts: list[pa.Table] = [empty]
    found = read = 0
    with Pipeline(prepared, dry_run=True) as pipeline:
        for raw in prepared.source.read(request):
            read += raw.num_rows
            result = pipeline.step(pipeline.number(raw))
            table = result.outcomes
            if result.mapped is not None:
                mapped = pa.Table.from_batches([result.mapped], schema=result.mapped.schema)
                table = table.join(mapped, ROW_COLUMN, join_type="left outer")
            parts.append(table.drop_columns([CODE]))
            found += table.num_rows
            if found + len(bad) >= limit:
                break
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
        records, prepared.pushed, _local_text(prepared), prepared.source_schema.field_names, read
    )


def _actions(outcomes: pa.ChunkedArray) -> pa.Array:
    words = {
        "created": "create",
        "updated": "update",
        "unchanged": "unchanged",
        "deleted": "delete",
        "rejected": "reject",
        "skipped": "skip",
    }
    return pa.array([words.get(v, v) for v in outcomes.to_pylist()], pa.string())


def _local_text(prepared: Prepared) -> str | None:
    tree = prepared.local_filter
    return tree.sql(dialect="duckdb") if tree is not None else None


__all__ = ["Preview", "RunSummary", "preview_profile", "run_profile"]
